#!/usr/bin/env python3
"""Measures `obsctl digest --source loki` against a real Loki on 127.0.0.1.

    LOKI_BIN=/path/to/loki python3 scripts/bench-loki.py --sessions 20000 --split 1h \
        [--obsctl target/release/obsctl] [--before OLD_OBSCTL] [--runs 3] [--before-runs 1] [--profile]

Generates (or reuses) a corpus with scripts/loki-corpus.py (N sessions in each of the weeks
2026-W46 and 2026-W47), starts Loki with its documented defaults but for what a benchmark
on one machine needs (loopback, filesystem storage, old samples accepted, ingestion rate
limits raised to push history quickly, `split_queries_by_interval` and
`split_instant_metric_queries_by_interval` = --split; query limits such as
`max_query_series` 500 stay at their defaults), pushes the lines (one stream per agent,
each line at its event's time), flushes the ingester and waits until every line is
queryable. Then, each --runs times:

  - one bare scan of the week, `sum(count_over_time({job="openclaw-telemetry"}[7d]))`;
  - `obsctl digest --source loki --week 2026-W47 --tz UTC --format json` (with the previous
    week), through a counting proxy on 127.0.0.1 (requests and refusals by status), under
    /usr/bin/time -v (peak RSS).

It prints medians (with the CPU time Loki spent on each digest and on the bare scan, from
/proc) and checks obsctl's figures against the generator's expected.json (and
against `obsctl digest --source jsonl` on the same lines): totals, sessions, by model,
agent and variant, the top 10. Exit status 1 on a mismatch. With --profile it then replays each request of the last digest alone and prints Loki's CPU
time for each, costliest first. Loki is built by the user (it
has no Debian package); nothing here builds or downloads it.
"""
import argparse
import http.client
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W47_END_NS = 1795392000 * 10**9  # 2026-11-23T00:00:00Z


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loki_config(data, http_port, grpc_port, split):
    return f"""auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http_port}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc_port}
  log_level: warn
  http_server_read_timeout: 5m
  http_server_write_timeout: 5m
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
  ingestion_rate_mb: 1024
  ingestion_burst_size_mb: 1024
  per_stream_rate_limit: 1024MB
  per_stream_rate_limit_burst: 1024MB
  split_queries_by_interval: {split}
  split_instant_metric_queries_by_interval: {split}
ingester:
  query_store_max_look_back_period: -1
query_range:
  cache_results: false
analytics:
  reporting_enabled: false
"""


def get(url, timeout=300):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def instant(base, query, time_ns):
    q = urllib.parse.urlencode({"query": query, "time": str(time_ns)})
    _, body = get(f"{base}/loki/api/v1/query?{q}")
    return json.loads(body)["data"]["result"]


def push(base, events_path):
    streams = {}
    with open(events_path) as f:
        for line in f:
            line = line.rstrip("\n")
            d = json.loads(line)
            ts = d["timestamp"]
            # RFC 3339 with microseconds and Z -> integer nanoseconds, exactly.
            secs = int(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))) - time.timezone
            ns = secs * 10**9 + int(ts[20:26]) * 1000
            streams.setdefault(d["agentId"], []).append((ns, line))
    for agent, values in streams.items():
        values.sort(key=lambda v: v[0])
        for i in range(0, len(values), 5000):
            batch = [[str(t), l] for t, l in values[i:i + 5000]]
            body = json.dumps({"streams": [{"stream": {"job": "openclaw-telemetry", "agent": agent},
                                            "values": batch}]}).encode()
            req = urllib.request.Request(f"{base}/loki/api/v1/push", data=body,
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=120).read()


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = {}
        self.paths = []

    def add(self, status, path):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.paths.append(path)

    def take(self):
        with self.lock:
            s, self.statuses = self.statuses, {}
        return s

    def take_paths(self):
        with self.lock:
            p, self.paths = self.paths, []
        return p


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(base, pid, paths):
    """Replays each request alone and prints Loki's CPU time and wall time for it: where
    the digest's work is."""
    rows = []
    for path in paths:
        before, t0 = cpu_seconds(pid), time.monotonic()
        try:
            status = get(base + path, timeout=600)[0]
        except urllib.error.HTTPError as e:
            status = e.code
        wall = time.monotonic() - t0
        time.sleep(0.3)  # let Loki's workers finish their accounting
        rows.append((cpu_seconds(pid) - before, wall, status, urllib.parse.parse_qs(
            urllib.parse.urlparse(path).query).get("query", [""])[0]))
    print(f"\n  profile: each of the {len(rows)} requests alone (Loki CPU s, wall s, status, query):")
    for cpu, wall, status, query in sorted(rows, key=lambda r: -r[0]):
        print(f"    {cpu:6.2f} {wall:6.2f}  {status}  {query[:110]}")
    print(f"    {sum(r[0] for r in rows):6.2f} {sum(r[1] for r in rows):6.2f}  in all")


def start_proxy(upstream_port, counter):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=600)
            conn.request("GET", self.path, headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
            resp = conn.getresponse()
            body = resp.read()
            counter.add(resp.status, self.path)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            conn.close()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # obsctl closing its pooled connections when it exits

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def peak_rss_mb(time_v_stderr):
    for line in time_v_stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split(":")[1]) / 1024
    return float("nan")


def run_obsctl(obsctl, url, extra, timeout=None):
    cmd = ["/usr/bin/time", "-v", obsctl, "digest", "--source", "loki", "--loki-url", url, "--week", "2026-W47",
           "--tz", "UTC", "--format", "json", "-q"] + extra
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - t0, float("nan"), "", f"gave up after {timeout} s"
    wall = time.monotonic() - t0
    # /usr/bin/time -v appends its report to obsctl's own standard error (after a line
    # "Command exited with non-zero status N" when obsctl failed).
    own = p.stderr.split("\tCommand being timed:")[0]
    own = "\n".join(l for l in own.splitlines() if not l.startswith("Command exited with non-zero status"))
    return p.returncode, wall, peak_rss_mb(p.stderr), p.stdout, own


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def check(digest, expected):
    problems = []
    w = expected["W47"]
    t = digest["totals"]
    for k in ("input_tokens", "output_tokens", "sessions", "model_calls", "errors", "tool_calls", "tool_failures"):
        if t.get(k) != w["totals"][k]:
            problems.append(f"totals.{k} {t.get(k)} != {w['totals'][k]}")
    if not close(t["cost_usd"], w["totals"]["cost_usd"]):
        problems.append(f"totals.cost_usd {t['cost_usd']} != {w['totals']['cost_usd']}")
    prev = digest.get("previous") or {}
    if prev.get("sessions") != expected["W46"]["totals"]["sessions"] or not close(
            prev.get("cost_usd", -1), expected["W46"]["totals"]["cost_usd"]):
        problems.append(f"previous {prev.get('sessions')} / {prev.get('cost_usd')}")
    models = {f"{m['provider']}/{m['model']}": m["cost_usd"] for m in digest["by_model"]}
    if set(models) != set(w["by_model"]) or not all(close(models[k], v) for k, v in w["by_model"].items()):
        problems.append("by_model differs")
    agents = {a["agent"]: a["cost_usd"] for a in digest["by_agent"]}
    if set(agents) != set(w["by_agent"]) or not all(close(agents[k], v) for k, v in w["by_agent"].items()):
        problems.append("by_agent differs")
    variants = {f"{v['experiment']}/{v['variant']}": v for v in digest["by_variant"]}
    for k, v in w["by_variant"].items():
        got = variants.get(k.replace("None", "None"))
        if got is None or got["sessions"] != v["sessions"] or not close(got["cost_usd"], v["cost_usd"]):
            problems.append(f"by_variant {k}: {got} != {v}")
    top = [(s["session"], s["agent"]) for s in digest["by_session"][:10]]
    want = [(s["session"], s["agent"]) for s in w["top_sessions"]]
    if top != want:
        problems.append(f"top sessions {top} != {want}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--split", default="1h")
    ap.add_argument("--obsctl", default=os.path.join(ROOT, "target/release/obsctl"))
    ap.add_argument("--before", help="an older obsctl binary, measured alongside")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before-runs", type=int, default=1, help="runs of --before (it may take minutes)")
    ap.add_argument("--before-timeout", type=float, default=900, help="seconds before a --before run is given up")
    ap.add_argument("--keep", action="store_true", help="leave Loki running (prints its URL) and wait")
    ap.add_argument("--profile", action="store_true",
                    help="then replay each request of the last digest alone and print Loki's CPU time for each")
    args = ap.parse_args()
    loki_bin = os.environ.get("LOKI_BIN")
    if not loki_bin:
        sys.exit("bench-loki: set LOKI_BIN to a Loki 3.4.6 binary (built from grafana/loki v3.4.6)")
    corpus = os.path.join(ROOT, f"target/bench/loki-{args.sessions}")
    if not os.path.exists(os.path.join(corpus, "expected.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/loki-corpus.py"), "--sessions",
                        str(args.sessions), "--out", corpus], check=True)
    events = os.path.join(corpus, "events.jsonl")
    with open(events) as f:
        lines = sum(1 for _ in f)
    expected = json.load(open(os.path.join(corpus, "expected.json")))

    with tempfile.TemporaryDirectory() as data:
        http_port, grpc_port = free_port(), free_port()
        cfg = os.path.join(data, "loki.yaml")
        open(cfg, "w").write(loki_config(data, http_port, grpc_port, args.split))
        log = open(os.path.join(data, "loki.log"), "w")
        loki = subprocess.Popen([loki_bin, f"-config.file={cfg}"], stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{http_port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if get(f"{base}/ready", timeout=2)[1].strip() == b"ready":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("Loki not ready in 120 s: " + open(os.path.join(data, "loki.log")).read()[-2000:])
                time.sleep(0.5)
            t0 = time.monotonic()
            push(base, events)
            print(f"pushed {lines} lines in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            req = urllib.request.Request(f"{base}/flush", data=b"", method="POST")
            urllib.request.urlopen(req, timeout=300).read()
            all_q = 'sum(count_over_time({job="openclaw-telemetry"}[14d]))'
            deadline = time.monotonic() + 300
            while True:
                r = instant(base, all_q, W47_END_NS - 1)
                n = int(float(r[0]["value"][1])) if r else 0
                if n == lines:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"Loki holds {n} lines, not {lines}")
                time.sleep(1)
            counter = Counter()
            proxy = start_proxy(http_port, counter)
            url = f"http://127.0.0.1:{proxy}"
            if args.keep:
                print(f"Loki at {base}, counting proxy at {url}; Ctrl-C to stop", file=sys.stderr)
                while True:
                    time.sleep(3600)
            bare_q = 'sum(count_over_time({job="openclaw-telemetry"}[7d]))'
            rows = []
            binaries = [("after", args.obsctl)] + ([("before", args.before)] if args.before else [])
            results = {name: [] for name, _ in binaries}
            bare, bare_cpu = [], []
            for _ in range(args.runs):
                cpu0, t0 = cpu_seconds(loki.pid), time.monotonic()
                instant(base, bare_q, W47_END_NS - 1)
                bare.append(time.monotonic() - t0)
                time.sleep(0.3)
                bare_cpu.append(cpu_seconds(loki.pid) - cpu0)
                for name, binary in binaries:
                    if name == "before" and len(results["before"]) >= args.before_runs:
                        continue
                    limit = args.before_timeout if name == "before" else None
                    counter.take_paths()
                    cpu0 = cpu_seconds(loki.pid)
                    code, wall, rss, out, err = run_obsctl(binary, url, [], limit)
                    time.sleep(0.3)
                    loki_cpu = cpu_seconds(loki.pid) - cpu0
                    statuses = counter.take()
                    results[name].append((code, wall, rss, statuses, out, err, loki_cpu, counter.take_paths()))
            bare_s = statistics.median(bare)
            print(f"\n{args.sessions} sessions/week, {lines} lines (2 weeks), split {args.split}: "
                  f"bare week scan median {bare_s:.2f} s ({', '.join(f'{b:.2f}' for b in bare)})")
            failed = False
            for name, rs in results.items():
                walls = [r[1] for r in rs]
                code, _, rss, statuses, out, err, _, paths = rs[-1]
                total = sum(statuses.values())
                refused = sum(v for k, v in statuses.items() if k != 200)
                wall = statistics.median(walls)
                print(f"  {name:6}: exit {code}, {total} requests ({refused} refused: {statuses}), "
                      f"wall median {wall:.2f} s ({', '.join(f'{w:.2f}' for w in walls)}) = {wall / bare_s:.1f}x bare, "
                      f"peak RSS {max(r[2] for r in rs):.0f} MB, Loki CPU median "
                      f"{statistics.median(r[6] for r in rs):.1f} s (bare scan {statistics.median(bare_cpu):.1f} s)")
                if code != 0:
                    print("    " + err.strip().splitlines()[-1][:600] if err.strip() else "    (no stderr)")
                    failed |= name == "after"
                    continue
                problems = check(json.loads(out), expected)
                print("    figures equal to the generator's" if not problems else "    MISMATCH: " + "; ".join(problems))
                failed |= bool(problems) and name == "after"
                if args.profile and name == "after":
                    profile(base, loki.pid, paths)
            sys.exit(1 if failed else 0)
        finally:
            loki.terminate()
            try:
                loki.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still busy with a query a failed run left behind
                loki.kill()
                loki.wait()


if __name__ == "__main__":
    main()
