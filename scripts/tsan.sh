#!/usr/bin/env bash
# The concurrency tests under ThreadSanitizer, in a build folder of their own (.build-tsan) so that they do not
# invalidate the ordinary debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
FILTER="${1:-ConcurrencyTests}"
swift test --sanitize=thread --scratch-path .build-tsan --filter "$FILTER"
