/* An xmalloc-like workload: N threads in a ring, each allocating blocks and
 * handing every one to its successor over a bounded single-producer,
 * single-consumer ring; the successor verifies and frees it.  Every block dies
 * in a thread other than the one that allocated it, one block at a time, so
 * remote frees land on pages their owner is still allocating from, and the
 * live set is bounded by the rings (peak RSS against that bound is the
 * measure of pages held on behalf of other threads). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"

#define THREADS 4
#define ALLOCS_PER_THREAD 2000000
#define RING 8192 /* blocks in flight between two threads, a power of two */
#define MIN_SIZE 16
#define MAX_SIZE 512

typedef struct {
    void *block;
    uint32_t size;
} item_t;

/* ring[t] carries blocks from thread t to thread (t + 1) % THREADS. */
static struct ring {
    _Alignas(64) _Atomic uint64_t head; /* consumer's position */
    _Alignas(64) _Atomic uint64_t tail; /* producer's position */
    _Alignas(64) item_t item[RING];
} ring[THREADS];

static _Atomic unsigned producing[THREADS];

typedef struct {
    unsigned id;
    uint64_t sum, frees;
} worker_t;

static bool ring_push(struct ring *r, item_t it) {
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING) return false;
    r->item[tail & (RING - 1)] = it;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

static bool ring_pop(struct ring *r, item_t *it) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == atomic_load_explicit(&r->tail, memory_order_acquire)) return false;
    *it = r->item[head & (RING - 1)];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return true;
}

/* Frees up to max blocks waiting on the incoming ring; returns how many. */
static unsigned drain(worker_t *w, struct ring *in, unsigned max) {
    unsigned n = 0;
    item_t it;
    while (n < max && ring_pop(in, &it)) {
        w->sum += stamp_check(it.block, it.size);
        free(it.block);
        w->frees++;
        n++;
    }
    return n;
}

static void *worker(void *arg) {
    worker_t *w = arg;
    struct ring *out = &ring[w->id], *in = &ring[(w->id + THREADS - 1) % THREADS];
    rng_t rng = {0x5eed0000u + w->id};
    for (uint32_t n = 0; n < ALLOCS_PER_THREAD; n++) {
        size_t size = rng_range(&rng, MIN_SIZE, MAX_SIZE);
        item_t it = {xmalloc(size), (uint32_t)size};
        stamp_write(it.block, size, mix64(((uint64_t)w->id << 32) | n));
        /* A full ring waits for the successor; freeing meanwhile keeps the
         * predecessor going, so the ring of threads cannot deadlock. */
        while (!ring_push(out, it)) drain(w, in, RING);
        drain(w, in, 2);
    }
    atomic_store_explicit(&producing[w->id], 0, memory_order_release);
    unsigned pred = (w->id + THREADS - 1) % THREADS;
    for (;;) {
        bool pred_done = atomic_load_explicit(&producing[pred], memory_order_acquire) == 0;
        if (drain(w, in, RING) == 0 && pred_done) break;
    }
    return NULL;
}

int main(void) {
    pthread_t tid[THREADS];
    worker_t w[THREADS];
    for (unsigned t = 0; t < THREADS; t++) atomic_store(&producing[t], 1);
    for (unsigned t = 0; t < THREADS; t++) {
        w[t] = (worker_t){.id = t};
        if (pthread_create(&tid[t], NULL, worker, &w[t])) die("pthread_create", t);
    }
    uint64_t sum = 0, frees = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        sum += w[t].sum;
        frees += w[t].frees;
    }
    uint64_t allocs = (uint64_t)THREADS * ALLOCS_PER_THREAD;
    printf("xmalloc threads=%d allocs=%" PRIu64 " checksum=%016" PRIx64 "\n", THREADS, allocs, sum);
    if (frees != allocs) die("blocks lost", allocs - frees);
    return 0;
}
