#include "CQuorumSupport.h"

#include <pthread.h>

__thread void *qb_tls_pool_table __attribute__((tls_model("initial-exec"))) = NULL;

static pthread_key_t qb_key;
static pthread_once_t qb_key_once = PTHREAD_ONCE_INIT;
static void (*qb_destructor)(void *) = NULL;

static void qb_run_destructor(void *table) {
    void (*destructor)(void *) = __atomic_load_n(&qb_destructor, __ATOMIC_ACQUIRE);
    if (destructor != NULL && table != NULL) {
        destructor(table);
    }
    qb_tls_pool_table = NULL;
}

static void qb_make_key(void) { pthread_key_create(&qb_key, qb_run_destructor); }

int qb_tls_pool_table_register(void *table, void (*destructor)(void *)) {
    pthread_once(&qb_key_once, qb_make_key);
    __atomic_store_n(&qb_destructor, destructor, __ATOMIC_RELEASE);
    return pthread_setspecific(qb_key, table);
}
