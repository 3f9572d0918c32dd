#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: unit tests, binary tests on the
# fixtures, snapshot tests of every format.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets "$@"
