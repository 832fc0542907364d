#!/usr/bin/env bash
# README command 2 (and what CI runs): install what is missing, then the whole test suite:
# the unit and integration tests, and the concurrency tests again under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
qb_install_deps
swift build --build-tests
swift test --skip-build
scripts/tsan.sh
