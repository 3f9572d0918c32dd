#!/usr/bin/env python3
"""Recorded answers of a real Loki to the expressions of `obsctl rules --target loki`
(fixtures/loki/cases/20*-rule-*.json), with expected values computed here, independently of
Loki and of obsctl's LogQL, from the data Loki held (fixtures/loki/pushed.jsonl.gz).

Record (needs a running Loki 3.4.6 holding exactly pushed.jsonl.gz, e.g. the one
`LOKI_BIN=... cargo test --test loki real_loki` starts, or /work-style manual runs):

    cargo run -q -- rules --target loki <FLAGS below> > /tmp/obsctl-loki.yml
    python3 scripts/loki-rule-cases.py record http://127.0.0.1:3100 /tmp/obsctl-loki.yml

Check the committed cases (every recorded body against the expected values; no Loki needed):

    python3 scripts/loki-rule-cases.py check

The rule file must be generated with FLAGS (tests/loki.rs uses the same ones, and fails
when an expression no longer matches its recording):

    --target loki --session-budget 0.03 --session-lookback 24h
    --failed-run-rate 5%/1d --tool-failure-rate 4%/1d --min-runs 10

How the expected values are computed: the JSONL source's rules (CONTRACT.md, section 1),
written out again here. A line counts when it is a JSON object whose cost and token fields,
if present, are non-negative numbers (not strings); its shape is decided by `type`, then
`eventType`, then `kind`. A model call's cost: shape A `costUsd`, B `estimatedCostUsd` (else
`costUsd`), C `data.costUsd`. A run end: A/B `agent_end`, C `run.end`; a tool call: A
`tool_call`, B `tool_call`/`tool_result`, C `tool.end`. Failed: A `success` false; B `success`
false or a `status` other than success/ok; C `data.success` false, `data.isError` true or an
`error` object. Series are labelled as Loki's `| json` would label them (nested keys joined
with `_`, empty values absent). Deterministic, standard library only.
"""

import gzip
import json
import math
import re
import sys
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "loki" / "cases"
PUSHED = ROOT / "fixtures" / "loki" / "pushed.jsonl.gz"
NS = 10**9
W_START = 1_794_787_200  # 2026-11-16T00:00:00Z

SESSION_BY = ["agent", "sessionId", "sessionKey"]
VARIANT_BY = ["experimentId", "experiment_id", "experiment", "variant", "experiment_variant"]
FLAGS = ("--target loki --session-budget 0.03 --session-lookback 24h "
         "--failed-run-rate 5%/1d --tool-failure-rate 4%/1d --min-runs 10")

# name, which rule (alert name, the value of a distinguishing label), evaluation time (s),
# what it shows.
CASE_LIST = [
    ("20a-rule-session-budget-since-start", ("AgentSessionOverBudget", "scope", "session"),
     W_START + 3 * 86400 + 6 * 3600,
     "Sessions over $0.03 in the 24 h before 2026-11-19T06:00Z: shape A sessions, the shape B cron "
     "session (sessionKey only) and the shape C session (sessionId and sessionKey)."),
    ("20b-rule-session-budget-last-hour", ("AgentSessionOverBudget", "scope", "last 1h"),
     W_START + 2 * 86400 + 9 * 3600 + 35 * 60,
     "Sessions over $0.03 in the hour before 2026-11-18T09:35Z, the shape C session's second run among them."),
    ("20c-rule-failed-run-rate", ("VariantFailedRunRateHigh", "window", "1d"),
     W_START + 7 * 86400,
     "Variants whose failed runs are over 5 % of at least 10 runs in the day before 2026-11-23T00:00Z."),
    ("20d-rule-tool-failure-rate", ("VariantToolFailureRateHigh", "window", "1d"),
     W_START + 7 * 86400,
     "Variants whose failed tool calls are over 4 % of at least 10 tool calls in the day before 2026-11-23T00:00Z."),
]

NUMBER = re.compile(r"^((0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?)?$")
COUNT = re.compile(r"^(0|[1-9][0-9]*)?$")


def flatten(obj, prefix=""):
    """Loki's `| json` labels: nested keys joined by `_`, values as strings."""
    out = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "_"))
        elif isinstance(v, bool):
            out[key] = "true" if v else "false"
        elif v is None:
            continue
        elif isinstance(v, (int, float)):
            out[key] = json.dumps(v)
        elif isinstance(v, str):
            out[key] = v
        else:
            out[key] = json.dumps(v, separators=(",", ":"))
    return out


def events():
    """(ts_ns, stream labels, the line's object) for every line the JSONL source accepts."""
    for raw in gzip.open(PUSHED, "rt"):
        e = json.loads(raw)
        try:
            d = json.loads(e["line"])
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        numbers = [("costUsd", d.get("costUsd"), NUMBER), ("estimatedCostUsd", d.get("estimatedCostUsd"), NUMBER),
                   ("inputTokens", d.get("inputTokens"), COUNT), ("outputTokens", d.get("outputTokens"), COUNT)]
        data = d.get("data") if isinstance(d.get("data"), dict) else {}
        delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
        numbers += [("data.costUsd", data.get("costUsd"), NUMBER), ("data.delta.input", delta.get("input"), COUNT),
                    ("data.delta.output", delta.get("output"), COUNT)]
        if any(v is not None and (isinstance(v, str) or isinstance(v, bool) or not re.match(p, json.dumps(v)))
               for _, v, p in numbers):
            continue
        yield int(e["ts_ns"]), e["stream"], d


def shape(d):
    for s, field in (("A", "type"), ("B", "eventType"), ("C", "kind")):
        if d.get(field):
            return s, d[field]
    return None, None


def cost(d):
    s, t = shape(d)
    if s == "A" and t == "model_usage":
        return d.get("costUsd")
    if s == "B" and t == "model_usage":
        return d.get("estimatedCostUsd", d.get("costUsd"))
    if s == "C" and t == "llm.call":
        return (d.get("data") or {}).get("costUsd")
    return None


def failed(d):
    s, _ = shape(d)
    if s == "A":
        return d.get("success") is False
    if s == "B":
        status = d.get("status")
        return d.get("success") is False or (status is not None and str(status).lower() not in ("success", "ok", ""))
    data = d.get("data") or {}
    return data.get("success") is False or data.get("isError") is True or bool(d.get("error"))


def is_run(d):
    s, t = shape(d)
    return (s in ("A", "B") and t == "agent_end") or (s == "C" and t == "run.end")


def is_tool_call(d):
    s, t = shape(d)
    return (s == "A" and t == "tool_call") or (s == "B" and t in ("tool_call", "tool_result")) or (s == "C" and t == "tool.end")


def group(stream, d, by):
    labels = dict(stream)
    labels.update(flatten(d))
    return tuple((k, labels[k]) for k in by if labels.get(k))


def in_range(ts, t, seconds):
    return t * NS - seconds * NS < ts <= t * NS


def session_costs(t, seconds):
    sums = defaultdict(list)
    for ts, stream, d in events():
        c = cost(d)
        if c is not None and in_range(ts, t, seconds):
            sums[group(stream, d, SESSION_BY)].append(float(c))
    return {k: math.fsum(v) for k, v in sums.items()}


def rates(t, seconds, what):
    all_, bad = defaultdict(int), defaultdict(int)
    for ts, stream, d in events():
        if what(d) and in_range(ts, t, seconds):
            g = group(stream, d, VARIANT_BY)
            all_[g] += 1
            bad[g] += failed(d)
    return all_, bad


def expected(name, t):
    if name.startswith("20a") or name.startswith("20b"):
        seconds = 86400 if name.startswith("20a") else 3600
        series = [(dict(k), v) for k, v in session_costs(t, seconds).items() if v > 0.03]
        inputs = {"sessions_with_cost": len(session_costs(t, seconds))}
    else:
        all_, bad = rates(t, 86400, is_run if name.startswith("20c") else is_tool_call)
        limit = 0.05 if name.startswith("20c") else 0.04
        series = [(dict(g), bad[g] / n) for g, n in all_.items() if bad[g] > 0 and bad[g] / n > limit and n >= 10]
        inputs = {"groups": [{"metric": dict(g), "all": n, "failed": bad[g]} for g, n in sorted(all_.items())]}
    series.sort(key=lambda s: (-s[1], sorted(s[0].items())))
    return {"kind": "vector", "time": float(t),
            "series": [{"metric": m, "value": v} for m, v in series], "inputs": inputs}


def rule_expr(rules_text, which):
    import yaml  # PyYAML, only to read the generated rule file when recording

    alert, label, value = which
    for g in yaml.safe_load(rules_text)["groups"]:
        for r in g["rules"]:
            if r.get("alert") == alert and r.get("labels", {}).get(label) == value:
                return r["expr"]
    raise SystemExit(f"no rule {which} in the rule file: was it generated with {FLAGS}?")


def compare(body, exp):
    """The recorded answer against the expected values: same label sets, values within 1e-9."""
    got = {}
    for s in json.loads(body)["data"]["result"]:
        got[tuple(sorted(s["metric"].items()))] = float(s["value"][1])
    want = {tuple(sorted(s["metric"].items())): s["value"] for s in exp["series"]}
    if got.keys() != want.keys():
        return f"label sets differ: got {sorted(got)} want {sorted(want)}"
    worst = max([abs(got[k] - want[k]) / max(abs(want[k]), 1e-300) for k in want] or [0.0])
    if worst > 1e-9:
        return f"values differ (max relative difference {worst:.1e})"
    return f"{len(want)} series equal (max relative difference {worst:.1e})"


def record(url, rules_path):
    text = Path(rules_path).read_text()
    for name, which, t, description in CASE_LIST:
        expr = rule_expr(text, which)
        params = [["query", expr], ["time", str(t * NS)]]
        q = urllib.parse.urlencode([tuple(p) for p in params])
        with urllib.request.urlopen(f"{url}/loki/api/v1/query?{q}") as resp:
            status, ctype, body = resp.status, resp.headers["Content-Type"], resp.read().decode()
        exp = expected(name, t)
        check = compare(body, exp)
        case = {
            "description": description,
            "request": {"method": "GET", "path": "/loki/api/v1/query", "params": params, "headers": {}},
            "response": {"status": status, "content_type": ctype, "body": body},
            "expected": exp,
            "notes": f"The rule {which[0]} ({which[1]}={which[2]}) of `obsctl rules {FLAGS}`, evaluated as the ruler "
                     f"would at {t} (a range [R] holds (t - R, t]). Expected values from "
                     f"scripts/loki-rule-cases.py. Checked against expected: {check}.",
        }
        (CASES / f"{name}.json").write_text(json.dumps(case, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {check}")


def check():
    bad = 0
    for name, _, t, _ in CASE_LIST:
        case = json.loads((CASES / f"{name}.json").read_text())
        exp = expected(name, t)
        if exp != case["expected"]:
            print(f"{name}: the committed expected values are not what this script computes")
            bad += 1
        result = compare(case["response"]["body"], exp)
        print(f"{name}: {result}")
        bad += not result.endswith(")") or "differ" in result
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3])
    elif sys.argv[1:] == ["check"]:
        check()
    elif sys.argv[1:] == ["explore"]:
        for name, _, t, _ in CASE_LIST:
            print(name, json.dumps(expected(name, t))[:1500])
    else:
        raise SystemExit(__doc__)
