#ifndef QUORUMBENCH_CJEMALLOC_SHIM_H
#define QUORUMBENCH_CJEMALLOC_SHIM_H

#include <jemalloc/jemalloc.h>
#include <stddef.h>
#include <stdint.h>

// jemalloc's MALLOCX_* flags are function-like macros, which Swift cannot import.
// The flags the buffer pool uses for every call into its own arena: that arena, and no jemalloc thread cache
// (the pool has its own; jemalloc's tcache would mix regions of different arenas).
static inline int qb_pool_flags(unsigned arena) { return MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE; }

#endif
