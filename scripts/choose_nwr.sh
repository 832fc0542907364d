#!/usr/bin/env bash
# Regenerates reports/nwr/ — the sweep behind README's "Choosing n, w and r": n = 3, every w and r from 1 to 3, nodes
# down 0%, 5% and 20% of the time, sloppy and strict quorums, three seeds each (so sweep.md gives standard errors), in
# virtual time (release build), with a run folder per run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
BIN="$(qb_release_binary)"
rm -rf reports/nwr.new
"$BIN" sweep --clock virtual --delay "exp(mean=1ms)" --delay-client "exp(mean=0.2ms)" \
    --n 3 --w 1,2,3 --r 1,2,3 --failure-rate 0,0.05,0.2 --quorum sloppy,strict --rate 10000 --concurrency 2000 \
    --ops 300000 --keys 10000 --warmup 0s --repeat 3 \
    --out reports/nwr.new --quiet "$@"
rm -rf reports/nwr
mv reports/nwr.new reports/nwr
sed -i "s|reports/nwr.new|reports/nwr|" reports/nwr/sweep.md
echo "reports/nwr/sweep.md"
