#!/usr/bin/env bash
# Benchmark `obsctl digest` on a synthetic shape-A corpus against cat and jq.
#
#   scripts/bench.sh [SIZE]        # SIZE as for gencorpus: 100M, 1G (decimal), 1Gi; default 1G
#
# Builds the release binaries and the gencorpus example, generates (or reuses)
# target/bench/corpus-SIZE.jsonl, its .gz and the generator's expected figures
# (target/bench/corpus-SIZE.expected.json), then measures:
#   cat FILE > /dev/null        (I/O floor)
#   gzip -dc FILE.gz > /dev/null (decompression floor of the .gz rows, GNU gzip)
#   jq -f scripts/jq-totals.jq  (the baseline the issue compares with; run once)
#   obsctl digest --source jsonl on FILE (mapped, then read: see bench_obsctl) and on
#   FILE.gz, with --threads 1 and 2 (THREADS)
#   (--source jsonl: `auto` would first ask a Prometheus or Loki that happens to be running)
#   the same with $OBSCTL_BEFORE, an older obsctl binary, when set (before/after figures)
# Wall time comes from hyperfine (--warmup 1 --runs 5; installed with apt-get when missing,
# otherwise a plain loop is used), peak RSS from `/usr/bin/time -v`. Throughput is
# uncompressed corpus MB (1e6 bytes) per second of wall time, also for the .gz row.
# Correctness: obsctl's `.totals` and `.previous.{cost_usd,sessions}` (and jq's) must equal
# the generator's expected figures (integers exactly, cost within 1e-9 relative).
#
# Environment: RUNS (default 5), WARMUP (default 1), THREADS (default "1 2": the --threads
# values measured), KINDS (default "mapped read gz": the obsctl rows), OBSCTL_BEFORE (path
# of an older obsctl to measure too), OBSCTL_EXTRA_ARGS
# (appended to the obsctl command line, e.g. "--source jsonl"), SKIP_JQ=1 to skip the slow jq
# baseline, SKIP_GZ=1 to skip the .gz rows, SKIP_BUILD=1 to use the binaries already in
# target/release.
# Exit status: 0 when every check is OK, 1 on a mismatch or a failing command.
set -euo pipefail

SIZE=${1:-1G}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '%s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() { # package
    command -v apt-get >/dev/null || return 1
    log "bench: installing $1 with apt-get"
    as_root apt-get install -y "$1" >/dev/null 2>&1 ||
        { as_root apt-get update >/dev/null 2>&1 && as_root apt-get install -y "$1" >/dev/null 2>&1; }
}

command -v jq >/dev/null || apt_install jq || { log "bench: jq is required"; exit 2; }
[ -x /usr/bin/time ] || apt_install time || { log "bench: /usr/bin/time is required (package time)"; exit 2; }
HAVE_HYPERFINE=1
command -v hyperfine >/dev/null || apt_install hyperfine || {
    HAVE_HYPERFINE=0
    log "bench: hyperfine unavailable, timing with a plain loop"
}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "bench: cargo build --release --examples --bins"
    cargo build --release --examples --bins >&2
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GEN=$TARGET_DIR/release/examples/gencorpus
OBSCTL=$TARGET_DIR/release/obsctl
BENCH=$TARGET_DIR/bench
mkdir -p "$BENCH"
CORPUS=$BENCH/corpus-$SIZE.jsonl
EXPECTED=$BENCH/corpus-$SIZE.expected.json
GZ=$CORPUS.gz

# (Re)generate when missing or older than the generator's source. The stamp, not the
# corpus, holds the generation time: the corpus's own mtime is set below to pick how
# obsctl reads it.
STAMP=$BENCH/corpus-$SIZE.stamp
if [ ! -s "$CORPUS" ] || [ ! -s "$EXPECTED" ] || [ ! -e "$STAMP" ] || [ "$ROOT/examples/gencorpus.rs" -nt "$STAMP" ]; then
    log "bench: generating $CORPUS"
    rm -f "$GZ"
    "$GEN" --size "$SIZE" --out "$CORPUS.tmp" >"$EXPECTED.tmp"
    mv "$CORPUS.tmp" "$CORPUS"
    mv "$EXPECTED.tmp" "$EXPECTED"
    touch "$STAMP"
fi
if [ ! -s "$GZ" ] || [ "$STAMP" -nt "$GZ" ]; then
    log "bench: compressing $GZ"
    if command -v pigz >/dev/null; then pigz -1 -c "$CORPUS" >"$GZ.tmp"; else gzip -1 -c "$CORPUS" >"$GZ.tmp"; fi
    mv "$GZ.tmp" "$GZ"
fi

BYTES=$(stat -c %s "$CORPUS")
GZBYTES=$(stat -c %s "$GZ")
W_START=$(jq -r '.window.start' "$EXPECTED")
W_END=$(jq -r '.window.end' "$EXPECTED")

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

q() { printf '%q' "$1"; }

# wall_time NAME RUNS WARMUP CMD -> sets WALL (mean s), WALL_TXT
wall_time() {
    local name=$1 runs=$2 warmup=$3 cmd=$4
    if [ "$HAVE_HYPERFINE" = 1 ]; then
        hyperfine --style basic --warmup "$warmup" --runs "$runs" \
            --export-json "$TMP/$name.hf.json" "$cmd" >&2
        WALL=$(jq '.results[0].mean' "$TMP/$name.hf.json")
        WALL_TXT=$(jq -r '.results[0] | "\(.mean*1000|round/1000) s ± \(.stddev*1000|round/1000) (min \(.min*1000|round/1000))"' "$TMP/$name.hf.json")
    else
        local i t s=0
        for ((i = 0; i < warmup; i++)); do bash -c "$cmd" || return 1; done
        for ((i = 0; i < runs; i++)); do
            /usr/bin/time -f %e -o "$TMP/$name.t" bash -c "$cmd" || return 1
            t=$(tail -n1 "$TMP/$name.t")
            s=$(awk -v a="$s" -v b="$t" 'BEGIN{print a+b}')
        done
        WALL=$(awk -v s="$s" -v n="$runs" 'BEGIN{printf "%.3f", s/n}')
        WALL_TXT="$WALL s (mean of $runs)"
    fi
}

# peak_rss NAME CMD -> runs CMD once under /usr/bin/time -v; sets RSS_MB, ELAPSED (s)
peak_rss() {
    local name=$1 cmd=$2
    eval "/usr/bin/time -v -o $(q "$TMP/$name.time") $cmd" || { log "bench: $name failed"; return 1; }
    RSS_MB=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$TMP/$name.time")
    ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\) time/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$TMP/$name.time")
}

# check GOT_JSON -> prints OK or MISMATCH (details on stderr); GOT uses obsctl's shape
# (.totals, .previous); the expected file uses .window.totals.
check() {
    local got=$1 out
    out=$(jq -r -n --slurpfile g "$got" --slurpfile x "$EXPECTED" '
        def abs: if . < 0 then -. else . end;
        ($g[0]) as $g | ($x[0]) as $x
        | [ ($x.window.totals | to_entries[] | {k: "totals.\(.key)", want: .value, got: $g.totals[.key]}),
            {k: "previous.cost_usd", want: $x.previous.cost_usd, got: $g.previous.cost_usd},
            {k: "previous.sessions", want: $x.previous.sessions, got: $g.previous.sessions},
            (if $g.window.start then {k: "window.start", want: $x.window.start, got: $g.window.start} else empty end),
            (if $g.window.end then {k: "window.end", want: $x.window.end, got: $g.window.end} else empty end) ]
        | map(select(
            if (.k | endswith("cost_usd")) then
              (.got | type) != "number" or ((.got - .want) | abs) > 1e-9 * (.want | abs)
            else .got != .want end))
        | if length == 0 then "OK" else "MISMATCH \(map("\(.k): want \(.want) got \(.got)") | join(", "))" end
    ' 2>&1) || out="MISMATCH (unreadable output: $out)"
    [ "${out%% *}" = OK ] || log "bench: $out"
    printf '%s' "${out%% *}"
}

mbps() { awk -v b="$BYTES" -v t="$1" 'BEGIN{ if (t > 0) printf "%.0f", b/1e6/t; else print "-" }'; }

ROWS=()
STATUS=0
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); }

# 1. cat
CMD_CAT="cat $(q "$CORPUS") > /dev/null"
wall_time cat "$RUNS" "$WARMUP" "$CMD_CAT"
peak_rss cat "$CMD_CAT"
row "\`cat\`" "$WALL_TXT" "$(mbps "$WALL")" "$RSS_MB" "-"

# 2. jq baseline (once)
if [ "${SKIP_JQ:-0}" != 1 ]; then
    log "bench: running the jq baseline once (slow: about 1.5 min per GB)"
    CMD_JQ="jq -n -c -f $(q "$ROOT/scripts/jq-totals.jq") --arg start $W_START --arg end $W_END < $(q "$CORPUS")"
    if peak_rss jq "$CMD_JQ > $(q "$TMP/jq.json")"; then
        # jq prints the generator's shape; lift .window.totals to .totals for the check.
        jq '{window: {start: .window.start, end: .window.end}, totals: .window.totals, previous}' \
            "$TMP/jq.json" >"$TMP/jq.obsctl.json"
        CHK=$(check "$TMP/jq.obsctl.json")
        [ "$CHK" = OK ] || STATUS=1
        row "\`jq -f scripts/jq-totals.jq\` (1 run)" "$ELAPSED s" "$(mbps "$ELAPSED")" "$RSS_MB" "$CHK"
    else
        STATUS=1
        row "\`jq -f scripts/jq-totals.jq\`" "failed" "-" "-" "FAILED"
    fi
fi

# 3. gzip -dc: how fast the .gz can be inflated at all (GNU gzip; obsctl uses zlib-rs)
if [ "${SKIP_GZ:-0}" != 1 ]; then
    CMD_GZ="gzip -dc $(q "$GZ") > /dev/null"
    wall_time gunzip "$RUNS" "$WARMUP" "$CMD_GZ"
    peak_rss gunzip "$CMD_GZ"
    row "\`gzip -dc\` (.gz)" "$WALL_TXT" "$(mbps "$WALL")" "$RSS_MB" "-"
fi

# 4. obsctl (and the older binary, if given) on the plain file and on the .gz.
# obsctl maps a plain file into memory only when it was not modified for an hour (rotated
# files; a live file may be truncated under a mapping), and reads it otherwise: the
# corpus's mtime picks the path, "mapped" (2 hours old) or "read" (just touched).
# bench_obsctl LABEL BINARY KIND THREADS
bench_obsctl() {
    local label=$1 bin=$2 kind=$3 threads=$4 file=$CORPUS name
    case $kind in
    gz) file=$GZ ;;
    mapped) touch -d '-2 hours' "$CORPUS" ;;
    read) touch "$CORPUS" ;;
    esac
    name="$(printf %s "$label" | tr -c "a-zA-Z0-9" -)-$kind-t$threads"
    label="\`$label\` ($kind, --threads $threads)"
    if [ ! -x "$bin" ]; then
        STATUS=1
        row "$label" "missing $bin" "-" "-" "FAILED"
        return
    fi
    local cmd
    cmd="$(q "$bin") digest --source jsonl --logs $(q "$file") --week 2026-W47 --tz UTC --format json --threads $threads ${OBSCTL_EXTRA_ARGS:-}"
    if ! peak_rss "$name" "$cmd > $(q "$TMP/$name.json")"; then
        STATUS=1
        row "$label" "exit status != 0" "-" "-" "FAILED"
        return
    fi
    CHK=$(check "$TMP/$name.json")
    [ "$CHK" = OK ] || STATUS=1
    wall_time "$name" "$RUNS" "$WARMUP" "$cmd > /dev/null" || { STATUS=1; WALL=0; WALL_TXT=failed; }
    row "$label" "$WALL_TXT" "$(mbps "$WALL")" "$RSS_MB" "$CHK"
}

KINDS=${KINDS:-mapped read gz}
[ "${SKIP_GZ:-0}" = 1 ] && KINDS=${KINDS/gz/}
for kind in $KINDS; do
    for threads in ${THREADS:-1 2}; do
        [ -n "${OBSCTL_BEFORE:-}" ] && bench_obsctl "obsctl digest (before)" "$OBSCTL_BEFORE" "$kind" "$threads"
        bench_obsctl "obsctl digest" "$OBSCTL" "$kind" "$threads"
    done
done

echo "### obsctl digest benchmark: $SIZE shape-A corpus"
echo
jq -r --arg bytes "$BYTES" --arg gz "$GZBYTES" --arg cpus "$(nproc)" '
    "corpus: \($bytes) bytes (.gz \($gz)), \(.events) events, \(.sessions) sessions, seed \(.seed); "
    + "window \(.window.start) .. \(.window.end); \($cpus) CPUs"' "$EXPECTED"
echo
echo "| command | wall time | MB/s | peak RSS (MB) | check |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
if [ "$STATUS" = 0 ]; then echo "result: OK"; else echo "result: MISMATCH or FAILURE (see stderr)"; fi
exit "$STATUS"
