#!/usr/bin/env python3
"""Writes a synthetic shape-A telemetry corpus for the Loki benchmarks: N sessions in each
of two ISO weeks (2026-W46 and 2026-W47, UTC), like fixtures/loki/ (same agents, models,
experiments; about 11.5 lines per session), and the exact figures the digest of W47 must
report.

    python3 scripts/loki-corpus.py --sessions 20000 --out target/bench/loki-20000

writes OUT/events.jsonl (the lines, in time order; what the JSONL source reads and what is
pushed to Loki, one stream per agent, with each event's own time as the entry time) and
OUT/expected.json (totals, sessions, cost per model/agent/variant and the top 10 sessions,
summed in integer micro-dollars). Only the standard library; deterministic for a seed.
"""
import argparse
import datetime as dt
import json
import os
import random

WEEK_START = dt.datetime(2026, 11, 9, tzinfo=dt.timezone.utc)  # Monday of 2026-W46
WEEK = dt.timedelta(days=7)
AGENTS = ["main", "researcher", "coder", "reviewer"]
# name, provider, micro-USD per 1000 input / output tokens
MODELS = [
    ("claude-sonnet-4-5", "anthropic", 3000, 15000),
    ("claude-opus-4-1", "anthropic", 15000, 75000),
    ("gpt-5", "openai", 1250, 10000),
    ("gpt-5-mini", "openai", 250, 2000),
    ("gemini-2.5-pro", "google", 1250, 10000),
]
EXPERIMENTS = [("prompt-v7", ["A", "B"]), ("router-2026-11", ["control", "cheap-first"]), (None, [None])]
TOOLS = ["bash", "read", "write", "search"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def session(rng, sid, start):
    agent = rng.choice(AGENTS)
    experiment, variants = rng.choice(EXPERIMENTS)
    variant = rng.choice(variants)
    common = {"agentId": agent, "sessionId": sid}
    if experiment:
        common.update({"experimentId": experiment, "variant": variant})
    t = start
    lines = [dict(type="session_start", timestamp=iso(t), **common)]
    calls = []
    for _ in range(rng.randint(2, 7)):
        t += dt.timedelta(microseconds=rng.randint(500_000, 30_000_000))
        name, provider, pin, pout = rng.choice(MODELS)
        tin, tout = rng.randint(200, 20000), rng.randint(50, 4000)
        cost = (tin * pin + tout * pout) // 1000  # micro-USD
        calls.append((name, provider, tin, tout, cost))
        lines.append(dict(type="model_usage", model=name, provider=provider, inputTokens=tin, outputTokens=tout,
                          costUsd=cost / 1e6, durationMs=rng.randint(300, 9000), timestamp=iso(t), **common))
        if rng.random() < 0.85:
            t += dt.timedelta(microseconds=rng.randint(100_000, 5_000_000))
            ok = rng.random() > 0.08
            lines.append(dict(type="tool_call", tool=rng.choice(TOOLS), success=ok, durationMs=rng.randint(10, 5000),
                              timestamp=iso(t), **common))
    ok = rng.random() > 0.1
    lines.append(dict(type="agent_end", success=ok, timestamp=iso(t), **common))
    lines.append(dict(type="session_end", durationMs=int((t - start).total_seconds() * 1000), timestamp=iso(t),
                      **common))
    return lines, agent, experiment, variant, calls, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, required=True, help="sessions per week")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    events = []
    expected = {}
    for week in (0, 1):
        base = WEEK_START + week * WEEK
        totals = dict(cost_micro=0, input_tokens=0, output_tokens=0, sessions=0, model_calls=0, errors=0,
                      runs=0, tool_calls=0, tool_failures=0)
        by_model, by_agent, by_variant, by_session = {}, {}, {}, {}
        for i in range(args.sessions):
            sid = f"sess-{week}-{rng.getrandbits(48):012x}"
            # Sessions last at most ~4 minutes and never cross the week's end.
            start = base + dt.timedelta(seconds=rng.uniform(0, 7 * 86400 - 600))
            lines, agent, experiment, variant, calls, ok = session(rng, sid, start)
            for line in lines:
                events.append((line["timestamp"], agent, json.dumps(line, separators=(",", ":"))))
                if line["type"] == "tool_call":
                    totals["tool_calls"] += 1
                    totals["tool_failures"] += not line["success"]
            cost = sum(c[4] for c in calls)
            totals["cost_micro"] += cost
            totals["input_tokens"] += sum(c[2] for c in calls)
            totals["output_tokens"] += sum(c[3] for c in calls)
            totals["sessions"] += 1
            totals["model_calls"] += len(calls)
            totals["runs"] += 1
            totals["errors"] += not ok
            for name, provider, _, _, c in calls:
                by_model[f"{provider}/{name}"] = by_model.get(f"{provider}/{name}", 0) + c
            by_agent[agent] = by_agent.get(agent, 0) + cost
            key = f"{experiment}/{variant}"
            n, s = by_variant.get(key, (0, 0))
            by_variant[key] = (n + 1, s + cost)
            by_session[sid] = (cost, agent)
        top = sorted(by_session.items(), key=lambda kv: (-kv[1][0], kv[0]))[:10]
        expected["W47" if week else "W46"] = {
            "totals": dict(totals, cost_usd=totals.pop("cost_micro") / 1e6),
            "by_model": {k: v / 1e6 for k, v in sorted(by_model.items())},
            "by_agent": {k: v / 1e6 for k, v in sorted(by_agent.items())},
            "by_variant": {k: {"sessions": n, "cost_usd": s / 1e6} for k, (n, s) in sorted(by_variant.items())},
            "top_sessions": [{"session": s, "cost_usd": c / 1e6, "agent": a} for s, (c, a) in top],
        }
    events.sort()
    with open(os.path.join(args.out, "events.jsonl"), "w") as f:
        for _, _, line in events:
            f.write(line + "\n")
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"{len(events)} lines, {args.sessions} sessions per week -> {args.out}")


if __name__ == "__main__":
    main()
