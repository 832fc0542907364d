#!/usr/bin/env bash
# README command 2 (and what CI runs): install what is missing, then the whole test suite: the unit and
# integration tests, the command line end to end (with HdrHistogram's Python reader as the .hlog oracle), a random
# search of simulated configurations, and the concurrency tests again under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
qb_pip_install
# Each stage has a time limit several times what it took on a fresh clone here (build 39 s, tests 182 s, command
# line 14 s, ThreadSanitizer 58 s with its build; a first build without a package cache is slower), so that a
# hang fails fast and says where.
qb_stage build 1500 swift build --build-tests
# Serially: several tests measure rates and latencies, which other tests running beside them would disturb.
qb_stage tests 1200 swift test --skip-build --no-parallel
qb_stage command-line 900 scripts/test_cli.sh
# Forty random virtual-time configurations with faults and deletes (seeds 1-40: the same runs every time), checked
# for lost writes, replicas that differ after repair, and stale reads where quorums overlap.
BIN="$(swift build --show-bin-path)/quorumbench"
qb_stage explore 900 python3 scripts/explore.py --bin "$BIN" --runs 40 --duration 1
# Ten more, each run twice: the same seed must write the same files.
qb_stage replay 600 python3 scripts/explore.py --bin "$BIN" --runs 10 --seed 41 --duration 1 --replay
qb_stage thread-sanitizer 1500 scripts/tsan.sh
