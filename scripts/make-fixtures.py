#!/usr/bin/env python3
"""Generate the sample OpenClaw telemetry directory fixtures/home/.openclaw/telemetry/.

Run from the repository root:

    python3 scripts/make-fixtures.py

It DELETES fixtures/home/.openclaw/telemetry/ and writes it again: about 38 sessions
(~300 lines) of OpenClaw telemetry events in the three JSONL shapes of CONTRACT.md
("Local JSONL": A = digest script, B = telemetry plugin v1, C = telemetry plugin v2),
spread over the rotated files obsctl reads:

    events.2026-W45.jsonl.gz   ISO week 45 (gzip), outside both digest windows
    events.2026-W46.jsonl      ISO week 46, the previous week of 2026-W47
    events.2026-11-16.jsonl    one file per UTC day of 2026-W47 ...
    events.2026-11-17.jsonl.gz   (this day is gzip-compressed)
    events.2026-11-18.jsonl
    events.2026-11-19.jsonl
    events.2026-11-20.jsonl
    events.jsonl               the live file: 2026-11-21 .. 2026-11-24, last line truncated
    notes.txt                  not telemetry; must be ignored

plus deliberate bad lines, window-edge probes and sessions that cross window edges
(see fixtures/README.md). Python 3 standard library only; deterministic (fixed seed, no
clock reads, gzip headers with mtime 0), so re-running it rewrites identical bytes.

After writing, it reads the files back from disk and computes, with a deliberately simple
independent parser (the "oracle"), the facts a test can check for 2026-W47 and 2026-W46 in
UTC; it prints them as Markdown tables that are pasted into fixtures/README.md. Money is
summed in integer micro-dollars so there is no float noise.
"""

import calendar
import gzip
import io
import json
import os
import random
import re
import shutil
import time

OUT = os.path.join("fixtures", "home", ".openclaw", "telemetry")
SEED = 4747

# --------------------------------------------------------------------------------------
# time helpers (integer microseconds since the Unix epoch, UTC)

def ts(y, mo, d, h=0, mi=0, s=0, us=0):
    return (calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000) + us


def day(d, h=0, mi=0, s=0, us=0):
    """A time on 2026-11-<d>."""
    return ts(2026, 11, d, h, mi, s, us)


def _parts(t):
    secs, us = divmod(t, 1_000_000)
    y, mo, d, h, mi, s = time.gmtime(secs)[:6]  # a pure conversion, not a clock read
    return y, mo, d, h, mi, s, us


def iso_us(t):
    """Shape A style: 2026-11-19T15:55:56.111122Z (no fraction on a whole second)."""
    y, mo, d, h, mi, s, us = _parts(t)
    base = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    return base + (f".{us:06d}Z" if us else "Z")


def iso_ms(t):
    """Shape B style: 2026-11-17T09:15:04.417Z (always milliseconds)."""
    y, mo, d, h, mi, s, us = _parts(t)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{us // 1000:03d}Z"


W45 = (ts(2026, 11, 2), ts(2026, 11, 9))
W46 = (ts(2026, 11, 9), ts(2026, 11, 16))
W47 = (ts(2026, 11, 16), ts(2026, 11, 23))

# --------------------------------------------------------------------------------------
# prices: dollars per million tokens == micro-dollars per token; kept in quarters so every
# price is an integer. cost_micro = round((in*pin + out*pout) / 4).

PRICES = {  # model: (provider, input quarter-$/Mtok, output quarter-$/Mtok)
    "claude-sonnet-4-5": ("anthropic", 12, 60),   # $3 / $15
    "claude-opus-4-1": ("anthropic", 60, 300),    # $15 / $75
    "gpt-5": ("openai", 5, 40),                   # $1.25 / $10
    "gpt-5-mini": ("openai", 1, 8),               # $0.25 / $2
    "gemini-2.5-pro": ("google", 5, 40),          # $1.25 / $10
}


def cost_micro(model, i, o):
    _, pin, pout = PRICES[model.split("/")[-1]]
    c = (i * pin + o * pout + 2) // 4
    assert c >= 100, (model, i, o, c)  # keeps the float repr out of scientific notation
    return c


def usd(micro):
    """micro-dollars -> JSON float with at most 6 decimals (repr of a correctly rounded quotient)."""
    return micro / 1_000_000


def dump(obj):
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    assert not re.search(r"[:,\[]-?\d+(\.\d+)?[eE]", line), line  # no 1e-05 style numbers
    return line.encode("utf-8")


# --------------------------------------------------------------------------------------
# event store: (time_us, creation index, line bytes, pinned file or None)

EVENTS = []


def emit(t, line, pin=None):
    EVENTS.append((t, len(EVENTS), line, pin))


rng = random.Random(SEED)

AGENTS = ["main", "main", "researcher", "coder", "coder", "ops"]
EXPERIMENTS = [None, None, ("prompt-v7", "A"), ("prompt-v7", "B"),
               ("router-2026-11", "control"), ("router-2026-11", "cheap-first")]
MODELS = ["claude-sonnet-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "gpt-5", "gpt-5-mini",
          "gemini-2.5-pro"]
TOOLS = ["read", "bash", "web_search", "edit", "write"]

# ---------------------------------------------------------------------------- shape A

def a_common(t, agent, sid, exp):
    d = {"timestamp": iso_us(t), "agentId": agent, "sessionId": sid}
    if exp:
        d["experimentId"], d["variant"] = exp
    return d


def a_session(sid, agent, exp, t0, steps, success=True, with_start=True):
    """steps: ("m", model, in, out) | ("m-nocost", model, in, out) | ("t", tool, ok)
    | ("at", t): the next step happens exactly at t | ("bad", fn, file) where fn(t, common) -> bytes."""
    t = t0
    if with_start:
        emit(t, dump({"type": "session_start", **a_common(t, agent, sid, exp)}))
    first = t
    messages = 0
    at = None
    for st in steps:
        if st[0] == "at":
            at = st[1]
            continue
        if at is not None:
            t, at = at, None
        else:
            t += rng.randint(2_000_000, 75_000_000) + rng.randint(0, 999_999)
        if st[0] in ("m", "m-nocost"):
            _, model, i, o = st
            d = {"type": "model_usage", "model": model, "provider": PRICES[model][0],
                 "inputTokens": i, "outputTokens": o}
            if st[0] == "m":
                d["costUsd"] = usd(cost_micro(model, i, o))
            d["durationMs"] = rng.randint(1200, 9800)
            d.update(a_common(t, agent, sid, exp))
            emit(t, dump(d))
            messages += 2
        elif st[0] == "t":
            _, tool, ok = st
            d = {"type": "tool_call", "tool": tool, "success": ok,
                 "durationMs": rng.randint(40, 4000)}
            d.update(a_common(t, agent, sid, exp))
            emit(t, dump(d))
        elif st[0] == "bad":
            _, fn, pin = st
            emit(t, fn(t, a_common(t, agent, sid, exp)), pin)
    t += rng.randint(200_000, 900_000)
    emit(t, dump({"type": "agent_end", "success": success, **a_common(t, agent, sid, exp)}))
    t += rng.randint(100_000, 400_000)
    emit(t, dump({"type": "session_end", "durationMs": (t - first) // 1000,
                  "messageCount": messages, **a_common(t, agent, sid, exp)}))
    return t


def rand_steps(n_calls=None, n_tools=None, tool_ok=True):
    n_calls = n_calls or rng.randint(1, 3)
    n_tools = rng.randint(0 if tool_ok else 1, 2) if n_tools is None else n_tools
    model = rng.choice(MODELS)
    steps = []
    for k in range(max(n_calls, n_tools)):
        if k < n_calls:
            if rng.random() < 0.25:
                model = rng.choice(MODELS)
            steps.append(("m", model, rng.randint(30, 400) * 100, rng.randint(20, 400) * 10))
        if k < n_tools:
            steps.append(("t", rng.choice(TOOLS), tool_ok if k == 0 else True))
    return steps


def rand_sid():
    return "sess-%08x" % rng.getrandbits(32)


def rand_a(d, extra_steps=(), success=True, tool_ok=True, hours=(7, 21)):
    """A realistic shape A session on 2026-11-<d> (or a (y, mo, d) tuple)."""
    t0 = (ts(*d) if isinstance(d, tuple) else day(d)) + \
        rng.randint(hours[0] * 3600, hours[1] * 3600) * 1_000_000 + rng.randint(0, 999_999)
    steps = rand_steps(tool_ok=tool_ok)
    steps[1:1] = list(extra_steps)
    sid = rand_sid()
    a_session(sid, rng.choice(AGENTS), rng.choice(EXPERIMENTS), t0, steps, success)
    return sid


# ---------------------------------------------------------------------------- shape B

B_SEQ = [0]


def b_session(key, agent_id, kind, t0, channel, steps, task=None):
    """steps: ("m", model, provider, in, out, cacheRead, cacheWrite, costed) | ("end", status, err)."""
    suffix = key.rsplit(":", 1)[1]
    t = t0
    first = t0
    msgs = 0
    tools = 0

    def base(t, event_type):
        B_SEQ[0] += 1
        d = {"eventId": f"b{B_SEQ[0] - 1:03d}-{suffix}", "timestamp": iso_ms(t)}
        if agent_id:
            d["agentId"] = agent_id
        d.update({"sessionKey": key, "sessionKind": kind, "eventType": event_type})
        return d

    d = base(t, "session_start")
    d["channel"] = channel
    if task:
        d["taskLabel"] = task
    emit(t, dump(d))
    for st in steps:
        t += rng.randint(3_000, 60_000) * 1000
        if st[0] == "m":
            _, model, prov, i, o, cr, cw, costed = st
            d = base(t, "model_usage")
            d.update({"model": model, "provider": prov, "inputTokens": i, "outputTokens": o,
                      "cacheReadTokens": cr, "cacheWriteTokens": cw,
                      "totalTokens": i + o + cr + cw})
            if costed:
                d["estimatedCostUsd"] = usd(cost_micro(model, i, o))
            d["durationMs"] = rng.randint(1500, 6000)
            emit(t, dump(d))
            msgs += 2
            tools += 1
        elif st[0] == "end":
            _, status, err = st
            d = base(t, "agent_end")
            d["status"] = status
            if err:
                d["errorMessage"] = err
            d.update({"durationMs": (t - first) // 1000, "toolCallCount": tools})
            emit(t, dump(d))
    t += 1_000_000
    d = base(t, "session_end")
    d.update({"durationMs": (t - first) // 1000, "messageCount": msgs})
    emit(t, dump(d))


# ---------------------------------------------------------------------------- shape C

C_SEQ = [200]


class CSession:
    def __init__(self, sid, key, agent_id):
        self.sid, self.key, self.agent_id = sid, key, agent_id
        self.cum = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}
        self.run_usage = None
        self.run_cost = 0
        self.run_model = None

    def ev(self, t_ms, kind, data, run=None, error=None, source="hook"):
        C_SEQ[0] += 1
        d = {"id": "evt_%016x" % rng.getrandbits(64), "ts": t_ms, "seq": C_SEQ[0],
             "agentId": self.agent_id, "sessionKey": self.key, "sessionId": self.sid}
        if run:
            d["runId"] = run
        d["kind"] = kind
        d["data"] = data
        if error:
            d["error"] = error
        d["source"] = source
        emit(t_ms * 1000, dump(d))

    def run_start(self, t_ms, run, prompt):
        self.run_usage = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}
        self.run_cost = 0
        self.ev(t_ms, "run.start", {"prompt": prompt}, run)

    def llm(self, t_ms, run, model, i, o, cr, cw):
        delta = {"input": i, "output": o, "cacheRead": cr, "cacheWrite": cw,
                 "total": i + o + cr + cw}
        for k, v in delta.items():
            self.cum[k] += v
            self.run_usage[k] += v
        c = cost_micro(model, i, o)
        self.run_cost += c
        self.run_model = model
        self.ev(t_ms, "llm.call", {"model": model, "provider": model.split("/")[0],
                                   "costUsd": usd(c), "durationMs": rng.randint(900, 4000),
                                   "delta": delta, "cumulative": dict(self.cum)}, run)

    def tool(self, t_ms, run, name, call_id, dur_ms, ok, start=True):
        if start:
            self.ev(t_ms - dur_ms, "tool.start", {"toolName": name, "toolCallId": call_id}, run)
        data = {"toolName": name}
        if call_id:
            data["toolCallId"] = call_id
        data.update({"durationMs": dur_ms, "isError": not ok})
        err = None if ok else {"message": "command failed: exit status 2", "code": "TOOL_EXIT",
                               "source": "tool"}
        self.ev(t_ms, "tool.end", data, run, err)

    def run_end(self, t_ms, run, dur_ms, ok, err_msg=None):
        self.ev(t_ms - 1000, "usage.snapshot",
                {"model": self.run_model, "usage": dict(self.run_usage),
                 "costUsd": usd(self.run_cost)}, run, source="diagnostic_event")
        err = None if ok else {"message": err_msg, "code": "RUN_FAILED"}
        self.ev(t_ms, "run.end", {"success": ok, "durationMs": dur_ms}, run, err)


def ms(t_us):
    return t_us // 1000


# ======================================================================================
# the data

# ---- W45 (gzip weekly file; outside both windows; obsctl should skip it by its name)
for d in (3, 4, 6):
    rand_a((2026, 11, d))

# ---- W46 (previous week)
for d in (9, 10, 11, 12, 13, 14):
    rand_a((2026, 11, d), tool_ok=(d != 11))
# a failed run in W46
a_session("sess-w46-failed", "researcher", ("prompt-v7", "A"), day(13, 16, 2, 11, 504_113),
          [("m", "claude-opus-4-1", 18_400, 2_210), ("t", "web_search", True),
           ("m", "claude-opus-4-1", 22_900, 640)], success=False)
b_session("agent:ops:main:3c8e51", "ops", "main", day(12, 10, 4, 0, 0), "cli",
          [("m", "anthropic/claude-sonnet-4-5", "anthropic", 2_400, 520, 1_100, 0, True),
           ("m", "anthropic/claude-sonnet-4-5", "anthropic", 3_100, 300, 2_900, 200, True),
           ("end", "success", None)])

# ---- the session that crosses W46 -> W47 (its W47 cost is only its 2026-11-16 calls)
a_session("sess-cross-w46", "coder", ("prompt-v7", "B"), day(15, 23, 52, 10, 503_118),
          [("m", "claude-sonnet-4-5", 14_200, 1_830), ("t", "read", True),
           ("m", "claude-sonnet-4-5", 16_050, 920),
           ("at", day(16, 0, 2, 13, 88_421)), ("m", "claude-sonnet-4-5", 17_300, 2_480),
           ("t", "edit", True), ("m", "gpt-5-mini", 9_800, 610)])

# ---- 2026-11-16 (W47 day 1)
# the only event at exactly 2026-11-16T00:00:00Z: first line of a session whose start was not logged
a_session("sess-edge-start", "main", None, day(16, 0, 0, 0, 0),
          [("at", day(16, 0, 0, 0, 0)), ("m", "gpt-5", 6_000, 1_200),
           ("t", "read", True)], with_start=False)
rand_a(16)
rand_a(16, success=False)
rand_a(16)

# ---- 2026-11-17 (W47 day 2; gzip)
rand_a(17)
rand_a(17, extra_steps=[("bad", lambda t, c: (
    b'{"type":"model_usage","model":"claude-sonnet-4-5\xff\xfe","provider":"anthropic",'
    b'"inputTokens":7000,"outputTokens":700,"costUsd":0.0315,"durationMs":2300,'
    + json.dumps(c, separators=(",", ":"))[1:].encode()), "events.2026-11-17.jsonl.gz")])
rand_a(17, tool_ok=False)
b_session("agent:ops:main:a41d07", "ops", "main", day(17, 9, 15, 0, 0), "cli",
          [("m", "anthropic/claude-sonnet-4-5", "anthropic", 1_500, 300, 800, 0, True),
           ("m", "anthropic/claude-sonnet-4-5", "anthropic", 2_200, 410, 2_300, 120, True),
           ("m", "openai/gpt-5", "OpenAI", 4_000, 900, 0, 0, True),
           ("end", "success", None)])
# a session crossing midnight 17 -> 18 (gzip daily file -> plain daily file)
a_session("sess-midnight", "main", ("router-2026-11", "cheap-first"), day(17, 23, 55, 41, 270_004),
          [("m", "gpt-5-mini", 12_000, 1_450), ("t", "bash", True),
           ("at", day(18, 0, 1, 7, 5_313)), ("m", "gpt-5", 8_300, 2_050)])

# ---- 2026-11-18 (W47 day 3): shape C session with a failed run
rand_a(18)
rand_a(18, extra_steps=[("bad", lambda t, c: dump(
    {"type": "model_usage", "model": "gpt-5", "provider": "openai", "inputTokens": 5000,
     "outputTokens": 1000, "costUsd": "12", "durationMs": 3100, **c}),
    "events.2026-11-18.jsonl")])
c1 = CSession("c1a2b3c4-0001-4aa0-9d1e-3fd2e8000001", "agent:coder:main:3fd2e8", "coder")
T = ms(day(18, 14, 5, 0))
c1.ev(T, "session.start", {"channel": "cli"})
c1.run_start(T + 1000, "run-c1-1", "refactor the config loader")
c1.llm(T + 3120, "run-c1-1", "anthropic/claude-sonnet-4-5", 1_200, 310, 0, 900)
c1.tool(T + 4520, "run-c1-1", "read", "t0", 1000, True)
c1.llm(T + 9480, "run-c1-1", "anthropic/claude-sonnet-4-5", 300, 120, 900, 0)
c1.tool(T + 10880, "run-c1-1", "read", "t1", 1000, True)
c1.llm(T + 15010, "run-c1-1", "anthropic/claude-sonnet-4-5", 2_500, 700, 900, 0)
c1.run_end(T + 21000, "run-c1-1", 20000, True)
T2 = ms(day(18, 15, 35, 0))
c1.run_start(T2, "run-c1-2", "run the test suite and fix failures")
c1.llm(T2 + 2000, "run-c1-2", "openai/gpt-5", 5_000, 1_000, 1_800, 0)
c1.llm(T2 + 30000, "run-c1-2", "openai/gpt-5", 900, 400, 6_800, 0)
c1.tool(T2 + 52000, "run-c1-2", "bash", "t9", 12000, False)
c1.run_end(T2 + 61000, "run-c1-2", 61000, False, "run aborted after tool failure")
c1.ev(T2 + 65000, "session.end", {"durationMs": T2 + 65000 - T})

# ---- 2026-11-19 (W47 day 4): shapes A, B and C mixed in one file
rand_a(19)
rand_a(19, extra_steps=[("bad", lambda t, c: dump(
    {"type": "model_usage", "model": "claude-opus-4-1", "provider": "anthropic",
     "inputTokens": 9000, "outputTokens": 800, "costUsd": 0.195, "durationMs": 4100,
     **{**c, "timestamp": "yesterday"}}), "events.2026-11-19.jsonl")])
b_session("agent:ops:cron:7d21aa", None, "cron", day(19, 3, 0, 0, 0), "cron",
          [("m", "anthropic/claude-sonnet-4-5", "anthropic", 12_000, 1_500, 0, 4_000, True),
           ("m", "anthropic/claude-sonnet-4-5", "anthropic", 800, 60, 4_000, 0, False),
           ("end", "error", "tool bash exited 1")], task="nightly-report")
c2 = CSession("c1a2b3c4-0002-4bb0-8e2f-9b10ff000002", "agent:ops:cron:9b10ff", "unknown")
T = ms(day(19, 3, 30, 0))
c2.ev(T, "session.start", {"channel": "cron"})
c2.run_start(T + 1000, "run-c2-1", "nightly digest")
c2.llm(T + 3000, "run-c2-1", "google/gemini-2.5-pro", 8_000, 600, 0, 0)
c2.llm(T + 22000, "run-c2-1", "google/gemini-2.5-pro", 9_100, 900, 0, 0)
c2.llm(T + 62000, "run-c2-1", "google/gemini-2.5-pro", 400, 2_000, 0, 0)
c2.tool(T + 72000, "run-c2-1", "web_search", None, 3000, True, start=False)
c2.run_end(T + 93000, "run-c2-1", 92000, True)
c2.ev(T + 94000, "session.end", {"durationMs": 94000})

# ---- 2026-11-20 (W47 day 5)
a_session("sess-uncosted", "researcher", ("router-2026-11", "control"), day(20, 8, 12, 40, 118_640),
          [("m", "gemini-2.5-pro", 21_000, 1_900), ("t", "web_search", True),
           ("m-nocost", "gemini-2.5-pro", 26_500, 2_300)])
a_session("sess-w47-failed", "coder", ("prompt-v7", "A"), day(20, 13, 47, 2, 902_553),
          [("m", "claude-opus-4-1", 12_800, 1_650), ("t", "bash", False),
           ("m", "claude-opus-4-1", 15_200, 410)], success=False)
rand_a(20, extra_steps=[("bad", lambda t, c: dump(
    {"type": "model_usage", "model": "gpt-5-mini", "provider": "openai", "inputTokens": 4000,
     "outputTokens": 500, "costUsd": -0.5, "durationMs": 1800, **c}),
    "events.2026-11-20.jsonl")])

# ---- events.jsonl: 2026-11-21 .. 2026-11-24
rand_a(21)
rand_a(21)
b_session("agent:ops:main:c93e01", None, "main", day(21, 17, 42, 0, 0), "telegram",
          [("m", "google/gemini-2.5-pro", "google", 30_000, 2_000, 0, 0, True),
           ("m", "google/gemini-2.5-pro", "google", 31_000, 800, 28_000, 0, True),
           ("end", "timeout", "run timed out after 300s")])
rand_a(22)
# shape C session crossing the W47 end: only its calls before 2026-11-23T00:00Z count in W47
c3 = CSession("c1a2b3c4-0003-4cc0-8a4b-e05a17000003", "agent:researcher:main:e05a17", "researcher")
T = ms(day(22, 23, 56, 30))
c3.ev(T, "session.start", {"channel": "slack"})
c3.run_start(T + 1000, "run-c3-1", "compare the three vendor proposals")
c3.llm(T + 40_000, "run-c3-1", "anthropic/claude-opus-4-1", 9_400, 1_100, 0, 2_000)
c3.tool(T + 95_000, "run-c3-1", "web_search", "t0", 4_000, True)
c3.llm(T + 170_000, "run-c3-1", "anthropic/claude-opus-4-1", 3_100, 1_700, 2_000, 0)
c3.llm(T + 275_000, "run-c3-1", "anthropic/claude-opus-4-1", 2_600, 2_900, 5_100, 0)  # 00:01:05
c3.run_end(T + 301_000, "run-c3-1", 300_000, True)
c3.ev(T + 310_000, "session.end", {"durationMs": 310_000})
# the only event at exactly 2026-11-23T00:00:00Z (W48: must not count in W47)
a_session("sess-edge-end", "main", None, day(23, 0, 0, 0, 0),
          [("at", day(23, 0, 0, 0, 0)), ("m", "claude-opus-4-1", 20_000, 3_000)],
          with_start=False)
rand_a(23)
# 2026-11-24: a session still running; its model_usage line is cut mid-write
t_live = day(24, 9, 58, 12, 640_201)
emit(t_live, dump({"type": "session_start", **a_common(t_live, "main", "sess-live-0001",
                                                         ("prompt-v7", "B"))}))
t_live2 = day(24, 9, 59, 31, 7_719)
emit(t_live2, dump({"type": "model_usage", "model": "claude-sonnet-4-5", "provider": "anthropic",
                    "inputTokens": 8_800, "outputTokens": 950,
                    "costUsd": usd(cost_micro("claude-sonnet-4-5", 8_800, 950)),
                    "durationMs": 3_305,
                    **a_common(t_live2, "main", "sess-live-0001", ("prompt-v7", "B"))}))
TRUNCATED = b'{"type":"model_usage","model":"claude-sonnet-4-5","provider":"anthropic","inputTokens":9412,"outputTokens":1208,"costUsd":0.046356,"durationMs":2950,"timestamp":"2026-11-24T10:00:0'
emit(day(24, 10, 0, 0, 0), TRUNCATED, "events.jsonl")

# the one non-JSON line, in a W47 daily file
emit(day(16, 9, 0, 0, 0), b"gateway restarted (SIGHUP): reopening telemetry file",
     "events.2026-11-16.jsonl")

# ======================================================================================
# write the files

def file_for(t):
    if W45[0] <= t < W45[1]:
        return "events.2026-W45.jsonl.gz"
    if W46[0] <= t < W46[1]:
        return "events.2026-W46.jsonl"
    if day(16) <= t < day(21):
        name = "events.2026-11-%02d.jsonl" % _parts(t)[2]
        return name + ".gz" if name.endswith("11-17.jsonl") else name
    if day(21) <= t < day(25):
        return "events.jsonl"
    raise AssertionError(iso_us(t))


files = {}
for t, idx, line, pin in sorted(EVENTS, key=lambda e: (e[0], e[1])):
    name = file_for(t)
    assert pin is None or pin == name, (pin, name)
    files.setdefault(name, []).append(line)

assert files["events.jsonl"][-1] == TRUNCATED

NOTES = """\
Notes for this host (NOT telemetry: obsctl must ignore this file; nothing here may be counted)

- 2026-11-16: gateway restarted after the config change; one junk line landed in that day's file.
- 2026-11-17: rotation now gzips the previous day (events.2026-11-17.jsonl.gz).
- 2026-11-20: the line below was pasted here from events.jsonl while debugging a cost spike:
{"type":"model_usage","model":"claude-opus-4-1","provider":"anthropic","inputTokens":99000,"outputTokens":9900,"costUsd":9.999999,"durationMs":9999,"timestamp":"2026-11-18T12:00:00.000000Z","agentId":"main","sessionId":"sess-from-notes"}
"""


def gz_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


if os.path.isdir(OUT):
    shutil.rmtree(OUT)
os.makedirs(OUT)
for name, lines in sorted(files.items()):
    data = b"\n".join(lines)
    if name != "events.jsonl":
        data += b"\n"  # only the live file ends in a line still being written
    if name.endswith(".gz"):
        data = gz_bytes(data)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
with open(os.path.join(OUT, "notes.txt"), "wb") as f:
    f.write(NOTES.encode())

# ======================================================================================
# the oracle: read the files back from disk and compute the facts, independently and simply

NAME_RE = re.compile(r"^events(\.\d{4}-\d{2}-\d{2}|\.\d{4}-W\d{2})?\.jsonl(\.gz)?$")
ISO_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def parse_iso(s):
    m = ISO_RE.match(s) if isinstance(s, str) else None
    if not m:
        return None
    frac = (m.group(7) or "0")[:6].ljust(6, "0")
    return ts(*(int(g) for g in m.groups()[:6])) + int(frac)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


class Skip(Exception):
    pass


def money(v, what):
    if v is None:
        return None
    if not is_num(v):
        raise Skip(f"{what} is a {type(v).__name__}, not a number")
    if v < 0:
        raise Skip(f"negative {what}")
    return round(v * 1_000_000)


def agent_of(d):
    a = d.get("agentId")
    if isinstance(a, str) and a and a != "unknown":
        return a
    key = d.get("sessionKey")
    if isinstance(key, str) and key.startswith("agent:"):
        return key.split(":")[1]
    return "unknown"


def norm_model(model, provider):
    if "/" in model:
        p, model = model.split("/", 1)
        provider = provider or p
    return model, (provider or "unknown").lower()


def classify(raw, is_last_unterminated):
    """-> event dict, or raises Skip(reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Skip("invalid UTF-8")
    try:
        d = json.loads(text)
    except ValueError:
        raise Skip("truncated last line (no newline)" if is_last_unterminated else "not JSON")
    if not isinstance(d, dict):
        raise Skip("not a JSON object")
    exp = d.get("experimentId")
    ev = {"session": d.get("sessionId") or d.get("sessionKey"), "agent": agent_of(d),
          "variant": (exp, d.get("variant")) if exp else None,
          "model_call": False, "cost": None, "in": 0, "out": 0, "model": None,
          "run_failed": False, "tool_call": False, "tool_failed": False}
    if "type" in d:  # shape A
        t = parse_iso(d.get("timestamp"))
        if t is None:
            raise Skip("unparseable timestamp")
        ty = d["type"]
        if ty == "model_usage":
            ev.update(model_call=True, cost=money(d.get("costUsd"), "costUsd"))
            ev["in"], ev["out"] = d.get("inputTokens", 0), d.get("outputTokens", 0)
            ev["model"] = norm_model(d.get("model", "unknown"), d.get("provider"))
        elif ty == "agent_end":
            ev["run_failed"] = d.get("success") is False
        elif ty == "tool_call":
            ev.update(tool_call=True, tool_failed=d.get("success") is False)
    elif "eventType" in d:  # shape B
        t = parse_iso(d.get("timestamp"))
        if t is None:
            raise Skip("unparseable timestamp")
        ty = d["eventType"]
        if ty == "model_usage":
            ev.update(model_call=True, cost=money(d.get("estimatedCostUsd"), "estimatedCostUsd"))
            ev["in"], ev["out"] = d.get("inputTokens", 0), d.get("outputTokens", 0)
            ev["model"] = norm_model(d.get("model", "unknown"), d.get("provider"))
        elif ty == "agent_end":
            ev["run_failed"] = d.get("status") != "success"
    elif "kind" in d:  # shape C
        t = d.get("ts")
        if not is_count(t):
            raise Skip("bad ts")
        t *= 1000
        data = d.get("data") or {}
        if d["kind"] == "llm.call":
            delta = data.get("delta") or {}
            ev.update(model_call=True, cost=money(data.get("costUsd"), "data.costUsd"))
            ev["in"], ev["out"] = delta.get("input", 0), delta.get("output", 0)
            ev["model"] = norm_model(data.get("model", "unknown"), data.get("provider"))
        elif d["kind"] == "run.end":
            ev["run_failed"] = data.get("success") is False
        elif d["kind"] == "tool.end":
            ev.update(tool_call=True, tool_failed=data.get("isError") is True)
    else:
        raise Skip("unknown shape")
    if not (is_count(ev["in"]) and is_count(ev["out"])):
        raise Skip("bad token count")
    if not ev["session"]:
        raise Skip("no session")
    ev["t"] = t
    return ev


def read_dir(path):
    events, skipped, names, lines_per = [], [], [], {}
    for name in sorted(os.listdir(path)):
        if not NAME_RE.match(name):
            continue
        names.append(name)
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        lines = data.split(b"\n")
        unterminated = lines[-1] != b""
        if not unterminated:
            lines.pop()
        lines_per[name] = len(lines)
        for no, raw in enumerate(lines, 1):
            try:
                ev = classify(raw, unterminated and no == len(lines))
            except Skip as e:
                skipped.append((name, no, str(e)))
                continue
            ev["file"] = name
            events.append(ev)
    return names, lines_per, events, skipped


def facts(events, window):
    lo, hi = window
    inw = [e for e in events if lo <= e["t"] < hi]
    calls = [e for e in inw if e["model_call"]]
    f = {
        "cost": sum(e["cost"] or 0 for e in calls),
        "in": sum(e["in"] for e in calls),
        "out": sum(e["out"] for e in calls),
        "sessions": len({e["session"] for e in inw}),
        "calls": len(calls),
        "uncosted": sum(1 for e in calls if e["cost"] is None),
        "failed": sum(1 for e in inw if e["run_failed"]),
        "tools": sum(1 for e in inw if e["tool_call"]),
        "tool_failures": sum(1 for e in inw if e["tool_failed"]),
    }
    by_agent, by_model, daily, by_variant = {}, {}, {}, {}
    for e in inw:
        v = by_variant.setdefault(e["variant"], {"cost": 0, "sessions": set(), "failed": 0})
        v["cost"] += e["cost"] or 0
        v["sessions"].add(e["session"])
        v["failed"] += e["run_failed"]
        a = by_agent.setdefault(e["agent"], {"cost": 0, "sessions": set(), "failed": 0})
        a["cost"] += e["cost"] or 0
        a["sessions"].add(e["session"])
        a["failed"] += e["run_failed"]
        if e["model_call"]:
            m = by_model.setdefault(e["model"], {"cost": 0, "in": 0, "out": 0, "calls": 0})
            m["cost"] += e["cost"] or 0
            m["in"] += e["in"]
            m["out"] += e["out"]
            m["calls"] += 1
            dd = "%04d-%02d-%02d" % _parts(e["t"])[:3]
            daily[dd] = daily.get(dd, 0) + (e["cost"] or 0)
    return f, by_agent, by_model, daily, by_variant


def fmt_usd(micro):
    return "%d.%06d" % divmod(micro, 1_000_000)


names, lines_per, events, skipped = read_dir(OUT)

# self-checks on the built-in probes
assert sum(1 for e in events if e["t"] == W47[0]) == 1, "exactly one event at the W47 start"
assert sum(1 for e in events if e["t"] == W47[1]) == 1, "exactly one event at the W47 end"
assert len(skipped) == 6, skipped
cross = [e for e in events if e["session"] == "sess-cross-w46"]
assert any(e["t"] < W47[0] for e in cross) and any(e["t"] >= W47[0] for e in cross)

f47, agents47, models47, daily47, variants47 = facts(events, W47)
f46, _, _, _, _ = facts(events, W46)
all_sessions = {e["session"] for e in events}

out = []
p = out.append
p(f"wrote {OUT}/ ({len(all_sessions)} sessions, {sum(lines_per.values())} event-file lines)")
p("")
p("| file | lines | skipped |")
p("|---|---:|---:|")
for n in names:
    p(f"| `{n}` | {lines_per[n]} | {sum(1 for s in skipped if s[0] == n)} |")
p("| `notes.txt` | (not an events file) | — |")
p("")
p("| file | line | reason |")
p("|---|---:|---|")
for n, no, why in skipped:
    p(f"| `{n}` | {no} | {why} |")
p("")
p("| fact | 2026-W47 | 2026-W46 (previous) |")
p("|---|---:|---:|")
rows = [("total cost (USD)", "cost"), ("input tokens", "in"), ("output tokens", "out"),
        ("sessions", "sessions"), ("model calls", "calls"), ("uncosted model calls", "uncosted"),
        ("failed runs", "failed"), ("tool calls", "tools"), ("tool failures", "tool_failures")]
for label, k in rows:
    a, b = f47[k], f46[k]
    if k == "cost":
        a, b = fmt_usd(a), fmt_usd(b)
    p(f"| {label} | {a} | {b} |")
p("| skipped lines (files a W47 digest reads) | %d | |" % sum(
    1 for s in skipped if s[0] != "events.2026-W45.jsonl.gz"))
p("")
p("W47 by day (UTC):")
p("")
p("| date | cost (USD) |")
p("|---|---:|")
for dd in sorted(daily47):
    p(f"| {dd} | {fmt_usd(daily47[dd])} |")
p("")
p("W47 by agent:")
p("")
p("| agent | cost (USD) | sessions | failed runs |")
p("|---|---:|---:|---:|")
for a, v in sorted(agents47.items(), key=lambda kv: (-kv[1]["cost"], kv[0])):
    p(f"| {a} | {fmt_usd(v['cost'])} | {len(v['sessions'])} | {v['failed']} |")
p("")
p("W47 by model (prefix stripped, provider lower-cased):")
p("")
p("| model | provider | cost (USD) | input | output | calls |")
p("|---|---|---:|---:|---:|---:|")
for (m, pr), v in sorted(models47.items(), key=lambda kv: (-kv[1]["cost"], kv[0])):
    p(f"| {m} | {pr} | {fmt_usd(v['cost'])} | {v['in']} | {v['out']} | {v['calls']} |")
p("")
p("W47 by variant (no experiment = `null`):")
p("")
p("| experiment | variant | cost (USD) | sessions | failed runs |")
p("|---|---|---:|---:|---:|")
for k, v in sorted(variants47.items(), key=lambda kv: (-kv[1]["cost"], kv[0] or ("", ""))):
    ex, va = k or ("null", "null")
    p(f"| {ex} | {va} | {fmt_usd(v['cost'])} | {len(v['sessions'])} | {v['failed']} |")
print("\n".join(out))
