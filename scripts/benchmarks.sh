#!/usr/bin/env bash
# Runs the benchmarks in Benchmarks/ (release build, package-benchmark) and rewrites reports/benchmarks.md with
# the figures, the ratios the issues require, and whether each requirement holds.
#   scripts/benchmarks.sh            all benchmarks
#   scripts/benchmarks.sh 'same.*'   only those matching the regex (the report then covers only them)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
FILTER="${1:-.*}"
RAW="$(mktemp)"
trap 'rm -f "$RAW"' EXIT
(cd Benchmarks && swift package benchmark --filter "$FILTER" --no-progress --format markdown) | tee "$RAW" >&2
python3 scripts/lib/benchmark_report.py "$RAW" reports/benchmarks.md \
    "scripts/benchmarks.sh $*" "$(nproc) cores, $(uname -m), $(. /etc/os-release && echo "$PRETTY_NAME"), $(swift --version 2>&1 | head -1)"
