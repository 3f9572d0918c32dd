#!/usr/bin/env python3
"""Records the answers of a real Loki 3.4.6 to every request `obsctl digest --source loki`
sends for the recorded week, into fixtures/loki/cases/15-*.json (a Loki that splits queries
by 24 h, as the other cases) and 16-*.json (the same Loki with splitting off, where the
queries over sessions are asked in classes), with expected values computed here from the
pushed data, independently of obsctl. With `--filtered`, instead: 17-*.json and 18-*.json, the
same 24 h Loki asked with `--agent no-such-agent` (a filter that selects nothing: an empty
report) for the week and for two days without a line the files skip (where one unfiltered
count of the stream's lines tells an empty selection from a stream that holds nothing), and
19-*.json, `--agent ops:main` (an agent with a colon, never a session key's). With `--agents`,
instead: 22-*.json, the same 24 h Loki holding the lines with their agentId spread over 60
agents by session (as tests/loki.rs `spread_agents`), more combinations of type, model, agent
and variant than `max_query_series`: the queries grouped by all of them are refused and asked
one dimension at a time.

    LOKI_BIN=/path/to/loki python3 scripts/record-loki-cases.py [--obsctl target/release/obsctl] [--filtered | --agents]

Loki is built by the user (no Debian package); nothing here builds or downloads it. Only
the standard library. Rewrites fixtures/loki/cases/15-* and 16-*; check `git diff` after.
"""
import argparse
import datetime as dt
import gzip
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "fixtures/loki/cases")
W_START = 1794787200 * 10**9
W_END = 1795392000 * 10**9
WEEK = 7 * 86400 * 10**9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(data, http_port, grpc_port, split):
    return f"""auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http_port}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc_port}
  log_level: warn
common:
  instance_addr: 127.0.0.1
  path_prefix: {data}
  storage:
    filesystem:
      chunks_directory: {data}/chunks
      rules_directory: {data}/rules
  replication_factor: 1
  ring:
    kvstore:
      store: inmemory
schema_config:
  configs:
    - from: 2020-10-24
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
limits_config:
  reject_old_samples: false
  split_queries_by_interval: {split}
  split_instant_metric_queries_by_interval: {split}
ingester:
  query_store_max_look_back_period: -1
query_range:
  cache_results: false
analytics:
  reporting_enabled: false
"""


def pushed():
    with gzip.open(os.path.join(ROOT, "fixtures/loki/pushed.jsonl.gz"), "rt") as f:
        return [json.loads(l) for l in f]


def push(base, entries):
    streams = {}
    for e in entries:
        streams.setdefault(json.dumps(e["stream"], sort_keys=True), []).append((int(e["ts_ns"]), e["line"]))
    for key, values in streams.items():
        values.sort(key=lambda v: v[0])
        for i in range(0, len(values), 1000):
            body = json.dumps({"streams": [{"stream": json.loads(key),
                                            "values": [[str(t), l] for t, l in values[i:i + 1000]]}]}).encode()
            req = urllib.request.Request(f"{base}/loki/api/v1/push", data=body,
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()


def start(loki_bin, split, data):
    http_port, grpc_port = free_port(), free_port()
    path = os.path.join(data, f"loki-{split}.yaml")
    open(path, "w").write(config(os.path.join(data, split), http_port, grpc_port, split))
    proc = subprocess.Popen([loki_bin, f"-config.file={path}"], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(data, f"loki-{split}.log"), "w"))
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{base}/ready", timeout=2).read().strip() == b"ready":
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"Loki ({split}) not ready")
        time.sleep(0.5)
    return proc, base, http_port


# Loki's answer to a query over its series limit (case 02), given by the recording proxy with
# --fallback to the distinct counts asked whole, in place of a Loki whose limit they exceed.
SERIES_LIMIT = "maximum of series (500) reached for a single query\n"


def recorder(upstream_port, log, refuse_whole_distinct=False):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
            query = dict(params).get("query", "")
            if refuse_whole_distinct and "stdvar_over_time(" in query:
                status, content_type, body = 400, "text/plain; charset=utf-8", SERIES_LIMIT.encode()
            else:
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
                conn.request("GET", self.path)
                resp = conn.getresponse()
                status, content_type, body = resp.status, resp.getheader("Content-Type", ""), resp.read()
            log.append({
                "request": {"method": "GET", "path": url.path, "params": params, "headers": {}},
                "response": {"status": status, "content_type": content_type, "body": body.decode()},
            })
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, *a):
            pass

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def spread_agents(entries, agents=60):
    """tests/loki.rs `spread_agents`: every agentId replaced by `agent-NN`, NN a hash of the
    line's session (`sessionId`, else `sessionKey`) modulo `agents`; the line written as
    serde_json writes it (keys sorted, no spaces)."""
    out = []
    for e in entries:
        try:
            d = json.loads(e["line"])
        except ValueError:
            d = None
        if not isinstance(d, dict) or "agentId" not in d:
            out.append(e)
            continue
        session = next((d[k] for k in ("sessionId", "sessionKey") if isinstance(d.get(k), str)), "")
        h = 0
        for b in session.encode():
            h = (h * 31 + b) % 2**32
        d["agentId"] = "agent-%02d" % (h % agents)
        out.append(dict(e, line=json.dumps(d, ensure_ascii=False, separators=(",", ":"), sort_keys=True)))
    return out


# ---- The JSONL source's rules, restated here for the expected values ----

def events(entries):
    """(ts_ns, event) for every line the JSONL source accepts (costs as strings of a
    number, negative costs and lines without a type are skipped)."""
    out = []
    for e in entries:
        try:
            d = json.loads(e["line"])
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        bad = False
        for k in ("costUsd", "estimatedCostUsd", "inputTokens", "outputTokens"):
            v = d.get(k)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                bad = True
        if bad:
            continue
        if "type" in d:
            shape, t = "A", d["type"]
        elif "eventType" in d:
            shape, t = "B", d["eventType"]
        elif "kind" in d:
            shape, t = "C", d["kind"]
        else:
            continue
        session = d.get("sessionId") or d.get("sessionKey")
        agent = d.get("agentId")
        if not agent or agent == "unknown":
            key = d.get("sessionKey") or ""
            m = re.match(r"agent:([^:]+)", key)
            agent = m.group(1) if m else "unknown"
        exp = d.get("experimentId") or d.get("experiment.id")
        var = d.get("variant") or d.get("experiment.variant")
        if isinstance(d.get("experiment"), dict):
            exp = exp or d["experiment"].get("id")
            var = var or d["experiment"].get("variant")
        elif isinstance(d.get("experiment"), str):
            exp = exp or d["experiment"]
        cost = None
        if shape == "A" and t == "model_usage":
            cost = d.get("costUsd")
        elif shape == "B" and t == "model_usage":
            cost = d.get("estimatedCostUsd", d.get("costUsd"))
        elif shape == "C" and t == "llm.call":
            cost = (d.get("data") or {}).get("costUsd")
        out.append((int(e["ts_ns"]), dict(session=session, agent=agent, exp=exp, var=var, cost=cost)))
    return out


def number_ok(v, integer):
    """A value the JSONL source accepts for a cost (`integer`: a token count): absent, or a
    non-negative JSON number (an integer for a count)."""
    if v is None:
        return True
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        return False
    return not integer or isinstance(v, int)


def checked_ok(d):
    """Whether a line passes the queries' number checks (tokens are counts, costs numbers)."""
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
    return (all(number_ok(d.get(k), False) for k in ("costUsd", "estimatedCostUsd"))
            and all(number_ok(d.get(k), True) for k in ("inputTokens", "outputTokens"))
            and number_ok(data.get("costUsd"), False)
            and all(number_ok(delta.get(k), True) for k in ("input", "output")))


# The cost legs in the order obsctl asks them (logql.rs `Shape::legs`), for shapes A, B, C:
# (shape, type field, model labels, cost field, a field that must be absent).
LEGS = [("A", "type", ("model", "provider"), "costUsd", None),
        ("B", "eventType", ("model", "provider"), "estimatedCostUsd", None),
        ("B", "eventType", ("model", "provider"), "costUsd", "estimatedCostUsd"),
        ("C", "kind", ("data_model", "data_provider"), "data.costUsd", None)]


def expected_apart(query, time_ns, entries):
    """Expected values of two parts asked one dimension at a time (logql.rs `Expr::apart`),
    from the pushed lines: the events by `agentId`, and each cost leg's sum by `agentId`.
    Shapes A, B and C must all be in the window (the legs are numbered over the shapes
    present)."""
    m = re.fullmatch(r'label_replace\(bottomk\(1000000, (.*)\), "obsctl_by", "agent", "", ""\)', query, re.S)
    if not m or "sum by (agentId) (" not in query:
        return None
    rng = int(re.search(r"\[(\d+)s\]", query).group(1)) * 10**9
    checks = '!~ `"(costUsd' in query
    cost = "sum_over_time(" in query
    sums = {}
    for e in entries:
        if not time_ns - rng < int(e["ts_ns"]) <= time_ns:
            continue
        try:
            d = json.loads(e["line"])
        except ValueError:
            continue
        if not isinstance(d, dict) or (checks and not checked_ok(d)):
            continue
        a = d.get("agentId")
        labels = {"agentId": a} if isinstance(a, str) and a else {}
        shape = next((s for s, f in (("A", "type"), ("B", "eventType"), ("C", "kind")) if d.get(f)), None)
        if shape is None:
            continue
        if not cost:
            key = json.dumps(labels, sort_keys=True)
            sums[key] = sums.get(key, 0) + 1
            continue
        call = {"A": "model_usage", "B": "model_usage", "C": "llm.call"}[shape]
        for i, (leg_shape, field_of_type, _, field, unless) in enumerate(LEGS):
            if leg_shape != shape or d.get(field_of_type) != call or (unless and d.get(unless) is not None):
                continue
            v = (d.get("data") or {}).get("costUsd") if field == "data.costUsd" else d.get(field)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                key = json.dumps(dict(labels, obsctl_part=f"l{i}"), sort_keys=True)
                sums[key] = sums.get(key, 0) + v
    series = [{"metric": dict(json.loads(k), obsctl_by="agent"), "value": v} for k, v in sorted(sums.items())]
    return {"kind": "vector", "series": series}


def expected_for(query, time_ns, evs, entries, agent=None):
    """Expected values for the queries whose meaning is simple to restate: the lines of the
    stream, the number of sessions, the sessions per agent and variant, and the top sessions
    by cost."""
    apart = expected_apart(query, time_ns, entries)
    if apart is not None:
        return apart
    m = re.search(r"\[(\d+)(s|ms)\]", query)
    if not m:
        return None
    rng = int(m.group(1)) * (10**9 if m.group(2) == "s" else 10**6)
    lines = r'sum\(count_over_time\(\{job="openclaw-telemetry"\} ?\[\d+m?s\]\)\)'
    if re.fullmatch(lines, query) or re.fullmatch(r"bottomk\(1000000, " + lines + r"\)", query):
        n = sum(1 for e in entries if time_ns - rng < int(e["ts_ns"]) <= time_ns)
        return {"kind": "vector", "series": [{"metric": {}, "value": n}] if n else []}
    inside = [e for t, e in evs if time_ns - rng < t <= time_ns and e["session"]
              and (agent is None or e["agent"] == agent)]
    cls = re.search(r"sessionId=~`([^`]*)`", query)
    if cls and "(?s)" in cls.group(1):
        pattern = re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: "\\U%08x" % int(m.group(1), 16), cls.group(1))
        rx = re.compile("^(?:" + pattern.replace("(?s)", "") + ")$", re.S)
        inside = [e for e in inside if rx.match(e["session"])]
    if query.startswith("count(sum by (obsctl_session)"):
        n = len({e["session"] for e in inside})
        return {"kind": "vector", "series": [{"metric": {}, "value": n}] if n else []}
    if query.startswith("count by (obsctl_agent, obsctl_experiment, obsctl_variant)"):
        tuples = {}
        for e in inside:
            tuples.setdefault((e["agent"], e["exp"], e["var"]), set()).add(e["session"])
        series = []
        for (a, x, v), s in sorted(tuples.items(), key=str):
            metric = {"obsctl_agent": a}
            if x:
                metric["obsctl_experiment"] = x
            if v:
                metric["obsctl_variant"] = v
            series.append({"metric": metric, "value": len(s)})
        return {"kind": "vector", "series": series}
    if query.startswith("topk("):
        k = int(query[5:query.index(",")])
        costs = {}
        for e in inside:
            if e["cost"] is not None:
                costs[e["session"]] = costs.get(e["session"], 0) + e["cost"]
        top = sorted(costs.items(), key=lambda kv: -kv[1])[:k]
        return {"kind": "vector", "series": [{"metric": {"obsctl_session": s}, "value": c} for s, c in top],
                "note": "topk: the same values; Loki may break a tie at the k-th place either way"}
    return None


def record(loki_bin, obsctl, split, prefix, entries, data, extra=(), window=("--week", "2026-W47"), fallback=False):
    proc, base, port = start(loki_bin, split, data)
    try:
        push(base, entries)
        q = urllib.parse.urlencode({"query": 'sum(count_over_time({job="openclaw-telemetry"}[16d]))',
                                    "time": str(W_END + 86400 * 10**9)})
        for _ in range(120):
            r = json.loads(urllib.request.urlopen(f"{base}/loki/api/v1/query?{q}").read())["data"]["result"]
            if r and int(float(r[0]["value"][1])) == len(entries):
                break
            time.sleep(0.5)
        log = []
        rport = recorder(port, log, fallback)
        out = subprocess.run([obsctl, "digest", "--source", "loki", "--loki-url", f"http://127.0.0.1:{rport}",
                              *window, "--tz", "UTC", "--format", "json", "-q", *extra],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"obsctl failed on the {split} Loki: {out.stderr}")
        return log, json.loads(out.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--obsctl", default=os.path.join(ROOT, "target/release/obsctl"))
    ap.add_argument("--filtered", action="store_true", help="record 17-* (a filter selecting nothing) only")
    ap.add_argument("--agents", action="store_true", help="record 22-* (the lines over 60 agents) only")
    ap.add_argument("--fallback", action="store_true",
                    help="record 23-* (the distinct counts refused whole by the proxy, asked per class) only")
    args = ap.parse_args()
    loki_bin = os.environ.get("LOKI_BIN") or sys.exit("set LOKI_BIN to a Loki 3.4.6 binary")
    entries = pushed()
    evs = events(entries)
    week = ("--week", "2026-W47")
    runs = [("24h", "15", "splitting by 24 h", (), week), ("0", "16", "splitting off", (), week)]
    if args.filtered:
        # 18: two days whose span (with the two days before) holds no line the files would
        # skip, so only an unfiltered count of the lines tells "nothing selected" from
        # "nothing shipped".
        nothing = ("--agent", "no-such-agent")
        runs = [("24h", "17", "splitting by 24 h and --agent no-such-agent", nothing, week),
                ("24h", "18", "splitting by 24 h and --agent no-such-agent over two days", nothing,
                 ("--since", "2026-11-21T00:00:00Z", "--until", "2026-11-23T00:00:00Z")),
                # 19: an agent with a colon, which no session key can name (its filter has no
                # session-key alternative); agent `ops` has sessions named by key only.
                ("24h", "19", "splitting by 24 h and --agent ops:main", ("--agent", "ops:main"), week)]
    if args.agents:
        entries = spread_agents(entries)
        evs = events(entries)
        runs = [("24h", "22", "splitting by 24 h, the lines' agents spread over 60", (), week)]
    if args.fallback:
        runs = [("24h", "23", "splitting by 24 h, the distinct counts asked whole refused by the recording proxy "
                 "(HTTP 400, Loki's series-limit answer of case 02, not Loki's own)", (), week)]
    prefixes = tuple(f"{run[1]}-" for run in runs)
    for f in os.listdir(CASES):
        if f.startswith(prefixes):
            os.remove(os.path.join(CASES, f))
    with tempfile.TemporaryDirectory() as data:
        for split, prefix, what, extra, window in runs:
            # A Loki of its own per run: pushing the same lines again into one is refused.
            own = os.path.join(data, prefix)
            os.makedirs(own)
            log, digest = record(loki_bin, args.obsctl, split, prefix, entries, own, extra, window,
                                 fallback=args.fallback)
            checked = 0
            for i, case in enumerate(log):
                params = dict(case["request"]["params"])
                query, t = params.get("query", ""), int(params.get("time", "0") or 0)
                expected = expected_for(query, t, evs, entries, dict(zip(extra[::2], extra[1::2])).get("--agent")) if case["response"]["status"] == 200 else None
                note = (f"Recorded from `obsctl digest --source loki {' '.join(window)} --tz UTC{''.join(' ' + a for a in extra)}` against Loki "
                        f"3.4.6 with {what}, request {i + 1} of {len(log)}. ")
                if expected is not None:
                    got = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1])
                           for s in json.loads(case["response"]["body"])["data"]["result"]}
                    want = {json.dumps(s["metric"], sort_keys=True): float(s["value"]) for s in expected["series"]}
                    ok = got.keys() == want.keys() and all(abs(got[k] - want[k]) <= 1e-9 * max(1, abs(want[k]))
                                                           for k in want)
                    note += "Checked against expected: " + ("equal." if ok else "MISMATCH.")
                    checked += 1
                else:
                    note += ("No expected values: checked end to end (tests/loki.rs replays every request of the "
                             "run and the digest must equal the JSONL source).")
                case.update(description=query[:120], expected=expected, notes=note)
                slug = re.sub(r"[^a-z0-9]+", "-", (query or case["request"]["path"])[:40].lower()).strip("-") or "request"
                name = f"{prefix}-{i + 1:02d}-{slug}.json"
                json.dump({"description": case["description"], "request": case["request"],
                           "response": case["response"], "expected": expected, "notes": note},
                          open(os.path.join(CASES, name), "w"), indent=1)
            print(f"{prefix}: {len(log)} requests recorded ({what}), {checked} with expected values; "
                  f"digest totals {digest['totals']['cost_usd']} USD, {digest['totals']['sessions']} sessions")


if __name__ == "__main__":
    main()
