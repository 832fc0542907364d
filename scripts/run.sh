#!/usr/bin/env bash
# README command 1: install what is missing, build quorumbench (release) and run its main job.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
swift build -c release --product quorumbench
BIN="$(swift build -c release --show-bin-path)/quorumbench"
"$BIN" --version
"$BIN" --help
"$BIN" pool-info
