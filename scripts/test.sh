#!/usr/bin/env bash
# README command 2 (and what CI runs): install what is missing, then the whole test suite: the unit and
# integration tests, the command line end to end (with HdrHistogram's Python reader as the .hlog oracle), and the
# concurrency tests again under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
qb_pip_install
swift build --build-tests
# Serially: several tests measure rates and latencies, which other tests running beside them would disturb.
swift test --skip-build --no-parallel
scripts/test_cli.sh
scripts/tsan.sh
