#!/usr/bin/env bash
# README command 1: install what is missing, build quorumbench (release), and run the embedded default scenario
# (5 nodes, n=3 w=2 r=2, YCSB A, 100k keys of 256 B, 64 in flight, 2 s warm-up + 10 s) into reports/latest/.
# Extra arguments go to `quorumbench run` (e.g. scripts/run.sh --w 1 --r 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
BIN="$(qb_release_binary)"
"$BIN" run --out reports/latest "$@"
echo "report: reports/latest/report.md (also summary.csv, timeseries.csv, latency.hlog, run.json)"
