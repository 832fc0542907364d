#!/usr/bin/env bash
# Regenerates the committed sample run folder, reports/sample/, from the default scenario (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
BIN="$(qb_release_binary)"
rm -rf reports/sample
"$BIN" run --out reports/sample --quiet "$@"
