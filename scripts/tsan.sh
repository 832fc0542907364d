#!/usr/bin/env bash
# The concurrency tests (buffer pool, in-process cluster) under ThreadSanitizer, in a build folder of their own (.build-tsan) so that they do not
# invalidate the ordinary debug build, and on the system allocator (TSan and jemalloc's malloc cannot share a
# process; see Package.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
FILTER="${1:-ConcurrencyTests|InProcessClusterTests}"
QUORUMBENCH_SYSTEM_ALLOCATOR=1 swift test --sanitize=thread --scratch-path .build-tsan --filter "$FILTER"
