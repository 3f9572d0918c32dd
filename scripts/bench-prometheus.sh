#!/usr/bin/env bash
# Server-path benchmark: the digest's wall time against a real Prometheus holding the
# integration tests' week, next to the time of the slowest single query it sends.
# Usage: scripts/bench-prometheus.sh   (needs prometheus, promtool, hyperfine; loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins --examples
work=$(mktemp -d)
trap 'kill $prom_pid 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/promweek "$work"
promtool tsdb create-blocks-from openmetrics --max-block-duration=360h "$work/week.om" "$work/tsdb" >/dev/null
printf 'global:\n  scrape_interval: 60s\nscrape_configs: []\n' > "$work/prometheus.yml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$port" 2>"$work/prom.log" &
prom_pid=$!
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.2; done
digest=(target/release/obsctl digest --source prometheus --prometheus-url "http://127.0.0.1:$port" --week 2026-W47 --tz UTC --format json --logs "$work")
"${digest[@]}" >/dev/null   # warm the server's caches
echo "== queries of one digest (ms), slowest first"
"${digest[@]}" --verbose 2>&1 >/dev/null | awk '{print $3, substr($0, index($0,$5), 90)}' | sort -rn | head -5
echo "== whole digest"
hyperfine --warmup 2 --runs 10 -N "${digest[*]}" 2>/dev/null | grep -E 'Time|Range'
