#!/usr/bin/env bash
# Server-path benchmark: the digest's wall time against a real Prometheus holding the
# integration tests' week, next to the server time of each request it sends, measured alone.
# Usage: scripts/bench-prometheus.sh [OBSCTL]   (needs prometheus, promtool, python3; hyperfine
# is installed with apt-get when missing and root, else a plain timing loop is used; loopback only). OBSCTL: a binary to measure instead of this tree's (e.g. an older build);
# the tree is built into $CARGO_TARGET_DIR (default target/) for the week's data either way.
# PROFILE=SECONDS: then profile Prometheus' CPU (its /debug/pprof) for that long while digests
# run back to back, save it as $CARGO_TARGET_DIR/bench/prometheus-cpu.pprof and, where `go` is
# installed, print where the time goes (`go tool pprof -top`).
# WINDOW="--since … --until …": the window to digest instead of the week 2026-W47.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bins --examples
obsctl=${1:-$target/release/obsctl}
work=$(mktemp -d)
trap 'kill $prom_pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$target/release/examples/promweek" "$work"
promtool tsdb create-blocks-from openmetrics --max-block-duration=360h "$work/week.om" "$work/tsdb" >/dev/null
printf 'global:\n  scrape_interval: 60s\nscrape_configs: []\n' > "$work/prometheus.yml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$port" 2>"$work/prom.log" &
prom_pid=$!
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.2; done
digest=("$obsctl" digest --source prometheus --prometheus-url "http://127.0.0.1:$port" ${WINDOW:---week 2026-W47} --tz UTC --format json --logs "$work")
"${digest[@]}" >/dev/null   # warm the server's caches
"${digest[@]}" --verbose 2>"$work/requests.log" >/dev/null
echo "== each request of one digest alone, one after another (best of 5, ms), slowest first"
# --verbose logs `prometheus URL  T ms  KIND PARAMS  EXPR` (KIND: instant, range or series).
python3 - "http://127.0.0.1:$port" "$work/requests.log" <<'PY' || true
import sys, time, urllib.parse, urllib.request
base, log = sys.argv[1], sys.argv[2]
rows = []
for line in open(log):
    rest = line.split(" ms  ", 1)[1].rstrip("\n")
    kind, _, tail = rest.partition(" ")
    if kind not in ("instant", "range", "series"):
        sys.exit("this build's --verbose does not say when each query is evaluated: no per-request times")
    params, _, expr = tail.partition("  ")
    args = dict(p.split("=", 1) for p in params.split())
    path = {"instant": "query", "range": "query_range", "series": "series"}[kind]
    args["match[]" if kind == "series" else "query"] = expr
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(args)}"
    best = float("inf")
    for _ in range(6):  # the first run warms up
        started = time.perf_counter()
        urllib.request.urlopen(url).read()
        best = min(best, time.perf_counter() - started)
    rows.append((best * 1e3, kind, expr))
rows.sort(reverse=True)
for ms, kind, expr in rows:
    print(f"{ms:7.1f}  {kind:<7} {expr[:100]}")
print(f"{sum(r[0] for r in rows):7.1f}  in all, {len(rows)} requests; slowest {rows[0][0]:.1f}")
PY
echo "== whole digest"
# Prometheus' CPU time (user + system, from /proc, in clock ticks) over the timed runs below.
prom_cpu() { awk '{print $14 + $15}' "/proc/$prom_pid/stat"; }
cpu_before=$(prom_cpu)
if ! command -v hyperfine >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1; } || true
fi
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --runs 20 -N "${digest[*]}" 2>/dev/null | grep -E 'Time|Range'
else
    echo "(hyperfine unavailable: a plain loop, 2 warm-up runs and 20 timed)"
    python3 - "${digest[@]}" <<'PY'
import statistics, subprocess, sys, time
cmd = sys.argv[1:]
for _ in range(2):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
times = []
for _ in range(20):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1e3)
print(f"  Time (mean ± σ): {statistics.mean(times):7.1f} ms ± {statistics.stdev(times):5.1f} ms")
print(f"  Range (min … max): {min(times):7.1f} ms … {max(times):7.1f} ms    20 runs")
PY
fi
cpu_after=$(prom_cpu)
# 2 warm-up runs and 20 timed ones either way.
python3 -c "import os,sys; t=os.sysconf('SC_CLK_TCK'); print(f'  Prometheus CPU per digest: {(int(sys.argv[2]) - int(sys.argv[1])) / t / 22 * 1e3:.0f} ms (user + system, {os.cpu_count()} cores)')" "$cpu_before" "$cpu_after"

if [ -n "${PROFILE:-}" ]; then
    echo "== Prometheus CPU profile over ${PROFILE} s of digests back to back"
    mkdir -p "$target/bench"
    profile="$target/bench/prometheus-cpu.pprof"
    curl -sf -o "$profile" "http://127.0.0.1:$port/debug/pprof/profile?seconds=$PROFILE" &
    curl_pid=$!
    runs=0
    while kill -0 "$curl_pid" 2>/dev/null; do "${digest[@]}" >/dev/null; runs=$((runs + 1)); done
    wait "$curl_pid"
    echo "  $runs digests; profile saved as $profile"
    go=$(command -v go || ls /usr/lib/go-*/bin/go 2>/dev/null | tail -1 || true)
    if [ -n "$go" ]; then
        # Flat time by function, then cumulative time of the engine's steps.
        "$go" tool pprof -top -nodecount=25 "$profile" 2>/dev/null | sed -n '1,35p'
        "$go" tool pprof -top -cum -nodecount=40 "$profile" 2>/dev/null | sed -n '6,50p'
    else
        echo "  (no go: read it with 'go tool pprof -top $profile')"
    fi
fi
