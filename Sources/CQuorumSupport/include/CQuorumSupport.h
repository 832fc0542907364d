#ifndef QUORUMBENCH_CQUORUMSUPPORT_H
#define QUORUMBENCH_CQUORUMSUPPORT_H

#include <stdint.h>
#include <stddef.h>

/// The calling thread's buffer-pool cache table (NULL until the thread first touches a pool).
/// Initial-exec TLS: one load relative to the thread pointer, no call.
extern __thread void *_Nullable qb_tls_pool_table;

static inline void *_Nullable qb_tls_pool_table_get(void) { return qb_tls_pool_table; }
static inline void qb_tls_pool_table_set(void *_Nullable table) { qb_tls_pool_table = table; }

/// Registers `table` for the calling thread so that `destructor(table)` runs when the thread exits.
/// Returns 0 on success.
int qb_tls_pool_table_register(void *_Nonnull table, void (*_Nonnull destructor)(void *_Nullable));

// Relaxed atomic load and store (no read-modify-write): a counter owned by one thread that other threads read.
static inline int64_t qb_load_relaxed(const int64_t *_Nonnull p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void qb_store_relaxed(int64_t *_Nonnull p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void qb_store_release(int64_t *_Nonnull p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int64_t qb_load_acquire(const int64_t *_Nonnull p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int64_t qb_fetch_add(int64_t *_Nonnull p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline int64_t qb_exchange(int64_t *_Nonnull p, int64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }

#endif
