/* A larson-like server simulation: worker threads replace random slots of a shared
 * array of blocks with new blocks of random sizes.  Each thread mostly works in its
 * own region but also reaches into the others', so blocks are often freed by a thread
 * that did not allocate them; and, as in larson, workers retire after a while and
 * successors take over the live blocks, so blocks also outlive their allocating
 * thread. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define THREADS 4
#define GENERATIONS 16
#define SLOTS_PER_THREAD 20000
#define SLOTS (THREADS * SLOTS_PER_THREAD)
#define OPS_PER_WORKER 250000  /* per thread per generation */
#define MIN_SIZE 24          /* header plus an 8-byte stamp */
#define MAX_SIZE 1024
#define REMOTE_PERCENT 25      /* share of operations on a random slot anywhere */

/* Each slot packs (pointer, size) behind one atomic pointer to a small header kept
 * at the start of the block, so a slot is swapped with a single exchange. */
typedef struct {
    uint64_t tag;
    uint32_t size;
} header_t;

static _Atomic(header_t *) slot[SLOTS];

typedef struct {
    uint64_t seed;
    unsigned region;
    uint64_t sum, frees;
} worker_t;

static uint64_t block_release(header_t *h) {
    uint64_t tag = stamp_check((unsigned char *)h + sizeof *h, h->size - sizeof *h);
    if (tag != h->tag) die("header does not match content", h->size);
    free(h);
    return tag;
}

static void *worker(void *arg) {
    worker_t *w = arg;
    rng_t rng = {w->seed};
    for (uint32_t op = 0; op < OPS_PER_WORKER; op++) {
        uint64_t r = rng_next(&rng);
        unsigned i;
        if ((r & 0xff) % 100 < REMOTE_PERCENT)
            i = (unsigned)((r >> 8) % SLOTS);
        else
            i = w->region * SLOTS_PER_THREAD + (unsigned)((r >> 8) % SLOTS_PER_THREAD);
        size_t size = MIN_SIZE + (size_t)((r >> 40) % (MAX_SIZE - MIN_SIZE + 1));
        header_t *h = xmalloc(size);
        h->size = (uint32_t)size;
        h->tag = mix64(w->seed * 0x100000001ull + op);
        stamp_write((unsigned char *)h + sizeof *h, size - sizeof *h, h->tag);
        header_t *old = atomic_exchange_explicit(&slot[i], h, memory_order_acq_rel);
        if (old) {
            w->sum += block_release(old);
            w->frees++;
        }
    }
    return NULL;
}

int main(void) {
    uint64_t sum = 0, frees = 0, allocs = 0;
    for (unsigned g = 0; g < GENERATIONS; g++) {
        pthread_t tid[THREADS];
        worker_t w[THREADS];
        for (unsigned t = 0; t < THREADS; t++) {
            /* Successors inherit a neighbour's region, so blocks change hands. */
            w[t] = (worker_t){.seed = 7 + g * THREADS + t, .region = (t + g) % THREADS};
            if (pthread_create(&tid[t], NULL, worker, &w[t])) die("pthread_create", t);
        }
        for (unsigned t = 0; t < THREADS; t++) {
            pthread_join(tid[t], NULL);
            sum += w[t].sum;
            frees += w[t].frees;
            allocs += OPS_PER_WORKER;
        }
    }
    uint64_t live = 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        header_t *h = atomic_load(&slot[i]);
        if (!h) continue;
        sum += block_release(h);
        live++;
    }
    /* Which thread freed what depends on scheduling; the totals do not. */
    printf("larson threads=%d generations=%d allocs=%" PRIu64 " checksum=%016" PRIx64 "\n",
           THREADS, GENERATIONS, allocs, sum);
    if (frees + live != allocs) die("blocks lost", allocs - frees - live);
    return 0;
}
