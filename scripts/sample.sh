#!/usr/bin/env bash
# Regenerates the committed sample run folder, reports/sample/, from the default scenario (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
swift build -c release --product quorumbench
BIN="$(swift build -c release --show-bin-path)/quorumbench"
rm -rf reports/sample
"$BIN" run --out reports/sample --quiet "$@"
