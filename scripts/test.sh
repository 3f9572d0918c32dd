#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: unit tests, the binary on the
# fixtures, snapshots of every format, the independent oracle, and the Prometheus source
# against a real Prometheus (Debian's package, installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Prometheus (Debian package) for the integration tests" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "*** prometheus/promtool missing and cannot install them (need root + apt-get):" >&2
        echo "*** the Prometheus integration tests will be SKIPPED (they run in CI)" >&2
    fi
fi
cargo test --locked --all-targets "$@"
