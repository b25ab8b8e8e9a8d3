/*
 * A fixed thread pool, started by edgeq_create and stopped by edgeq_destroy. eq_pool_run hands the
 * same task to every thread (the caller is part 0) and returns when all parts are done: no
 * allocation, no thread creation in the hot path. Built without threads (EDGEQ_NO_THREADS) the
 * caller runs the one part itself.
 */
#ifndef EDGEQ_NO_THREADS
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#endif

#include "internal.h"

#ifdef EDGEQ_NO_THREADS

struct eq_pool {
    int threads;
};

size_t eq_pool_bytes(int threads) {
    (void)threads;
    return sizeof(struct eq_pool);
}

edgeq_status_t eq_pool_start(eq_pool_t *pool, int threads) {
    pool->threads = 1;
    return threads <= 1 ? EDGEQ_OK : EDGEQ_E_THREADS;
}

void eq_pool_run(eq_pool_t *pool, eq_task_fn fn, void *ctx) {
    (void)pool;
    fn(ctx, 0, 1);
}

int eq_pool_threads(const eq_pool_t *pool) { return pool->threads; }

void eq_pool_stop(eq_pool_t *pool) { (void)pool; }

#else

typedef struct {
    struct eq_pool *pool;
    int part;
} worker_t;

/* Ops follow each other within microseconds (a decoder step is ~30 of them): a waiter first polls for a
 * while, so the next task does not pay a futex wake-up, then sleeps on the condition variable. */
#define SPIN_POLLS 4096

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Polls until *v != old (1) or SPIN_POLLS pass (0). */
static int spin_until_changed(const unsigned long *v, unsigned long old) {
    int i;
    for (i = 0; i < SPIN_POLLS; i++) {
        if (__atomic_load_n(v, __ATOMIC_ACQUIRE) != old) return 1;
        cpu_relax();
    }
    return 0;
}

struct eq_pool {
    int threads, started;
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    unsigned long generation; /* bumped per task; workers run each generation once */
    unsigned long pending;    /* workers still running the task */
    int stop;
    eq_task_fn fn;
    void *ctx;
    pthread_t *ids;           /* [threads - 1], after the struct */
    worker_t *workers;        /* [threads - 1] */
};

size_t eq_pool_bytes(int threads) {
    size_t extra = threads > 1 ? (size_t)(threads - 1) : 0;
    return sizeof(struct eq_pool) + extra * (sizeof(pthread_t) + sizeof(worker_t)) + 16;
}

static void *worker_main(void *arg) {
    worker_t *w = (worker_t *)arg;
    struct eq_pool *p = w->pool;
    unsigned long seen = 0;
    for (;;) {
        eq_task_fn fn;
        void *ctx;
        spin_until_changed(&p->generation, seen);
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work, &p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        seen = p->generation;
        fn = p->fn;
        ctx = p->ctx;
        pthread_mutex_unlock(&p->lock);
        fn(ctx, w->part, p->threads);
        pthread_mutex_lock(&p->lock);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
}

edgeq_status_t eq_pool_start(eq_pool_t *pool, int threads) {
    int i;
    pool->threads = threads < 1 ? 1 : threads;
    pool->started = 0;
    pool->generation = 0;
    pool->pending = 0;
    pool->stop = 0;
    pool->ids = (pthread_t *)(void *)(pool + 1);
    pool->workers = (worker_t *)(void *)(pool->ids + (pool->threads - 1));
    if (pool->threads == 1) return EDGEQ_OK;
    if (pthread_mutex_init(&pool->lock, NULL)) return EDGEQ_E_THREADS;
    if (pthread_cond_init(&pool->work, NULL)) {
        pthread_mutex_destroy(&pool->lock);
        return EDGEQ_E_THREADS;
    }
    if (pthread_cond_init(&pool->done, NULL)) {
        pthread_cond_destroy(&pool->work);
        pthread_mutex_destroy(&pool->lock);
        return EDGEQ_E_THREADS;
    }
    for (i = 0; i < pool->threads - 1; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].part = i + 1;
        if (pthread_create(&pool->ids[i], NULL, worker_main, &pool->workers[i])) {
            eq_pool_stop(pool);
            return EDGEQ_E_THREADS;
        }
        pool->started++;
    }
    return EDGEQ_OK;
}

void eq_pool_run(eq_pool_t *pool, eq_task_fn fn, void *ctx) {
    int i;
    if (pool->threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->pending = (unsigned long)pool->threads - 1;
    __atomic_add_fetch(&pool->generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    fn(ctx, 0, pool->threads);
    for (i = 0; i < SPIN_POLLS && __atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE); i++) cpu_relax();
    pthread_mutex_lock(&pool->lock);
    while (pool->pending) pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

int eq_pool_threads(const eq_pool_t *pool) { return pool->threads; }

void eq_pool_stop(eq_pool_t *pool) {
    int i;
    if (pool->threads == 1) return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (i = 0; i < pool->started; i++) pthread_join(pool->ids[i], NULL);
    pool->started = 0;
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    pool->threads = 1;
}
#endif
