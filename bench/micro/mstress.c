/* An mstress-like workload: threads keep a live set of blocks that grows and
 * shrinks from round to round (a quarter, a half, all of the largest size, then
 * back), freeing random members and allocating new ones; one operation in
 * sixteen swaps a block with a shared transfer table instead, so blocks move
 * between threads and die in another one.  Sizes are mostly small, with a few
 * of 1-64 KiB.  Peak RSS against the largest live set is the measure: pages a
 * thread keeps after its set shrank, and pages others free into. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define THREADS 4
#define ROUNDS 12
#define LIVE_MAX 40000 /* blocks per thread at the largest round */
#define OPS_PER_ROUND 300000
#define TRANSFER 4096
#define MIN_SIZE 16
#define MAX_SIZE 1024

typedef struct {
    void *block;
    uint32_t size;
} item_t;

static _Atomic(item_t *) transfer[TRANSFER];
/* Round r's live-set target, in eighths of LIVE_MAX. */
static const unsigned round_eighths[ROUNDS] = {2, 4, 8, 4, 2, 1, 8, 2, 6, 1, 8, 1};

typedef struct {
    unsigned id;
    uint64_t sum, allocs, frees;
} worker_t;

/* An item_t lives at the start of its own block, so a transfer moves one
 * pointer. */
static item_t *item_new(worker_t *w, rng_t *rng) {
    size_t size = rng_range(rng, MIN_SIZE, MAX_SIZE);
    if (rng_next(rng) % 100 == 0) size = rng_range(rng, 1024, 64 << 10);
    if (size < sizeof(item_t) + 16) size = sizeof(item_t) + 16;
    item_t *it = xmalloc(size);
    it->block = it;
    it->size = (uint32_t)size;
    uint64_t tag = mix64(((uint64_t)w->id << 40) ^ w->allocs++);
    stamp_write((unsigned char *)it + sizeof *it, size - sizeof *it, tag);
    return it;
}

static void item_free(worker_t *w, item_t *it) {
    if (it->block != it) die("item header corrupted", it->size);
    w->sum += stamp_check((unsigned char *)it + sizeof *it, it->size - sizeof *it);
    free(it);
    w->frees++;
}

static void *worker(void *arg) {
    worker_t *w = arg;
    rng_t rng = {0xa110c000u + w->id};
    item_t **live = xmalloc(LIVE_MAX * sizeof *live);
    size_t count = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        size_t target = (size_t)LIVE_MAX * round_eighths[r] / 8;
        /* Shrink at once to the new target: what the pages do then is measured. */
        while (count > target) item_free(w, live[--count]);
        for (uint32_t op = 0; op < OPS_PER_ROUND; op++) {
            uint64_t x = rng_next(&rng);
            if (count < target && (count == 0 || (x & 3) != 0)) {
                live[count++] = item_new(w, &rng);
                continue;
            }
            size_t i = (size_t)((x >> 8) % count);
            if ((x >> 4) % 16 == 0) {
                /* Swap with the transfer table: the block goes to whichever
                 * thread takes the slot next.  The table is full from the
                 * start, so the live count (and the work) is the same in every
                 * run. */
                live[i] = atomic_exchange(&transfer[(x >> 32) % TRANSFER], live[i]);
                continue;
            }
            item_free(w, live[i]);
            live[i] = live[--count];
        }
    }
    while (count > 0) item_free(w, live[--count]);
    free(live);
    return NULL;
}

int main(void) {
    pthread_t tid[THREADS];
    worker_t w[THREADS + 1];
    /* The main thread fills the transfer table (as worker THREADS). */
    w[THREADS] = (worker_t){.id = THREADS};
    rng_t rng = {0xa110c000u + THREADS};
    for (unsigned i = 0; i < TRANSFER; i++) atomic_store(&transfer[i], item_new(&w[THREADS], &rng));
    for (unsigned t = 0; t < THREADS; t++) {
        w[t] = (worker_t){.id = t};
        if (pthread_create(&tid[t], NULL, worker, &w[t])) die("pthread_create", t);
    }
    for (unsigned t = 0; t < THREADS; t++) pthread_join(tid[t], NULL);
    for (unsigned i = 0; i < TRANSFER; i++) item_free(&w[THREADS], atomic_exchange(&transfer[i], NULL));
    uint64_t sum = 0, allocs = 0, frees = 0;
    for (unsigned t = 0; t <= THREADS; t++) {
        sum += w[t].sum;
        allocs += w[t].allocs;
        frees += w[t].frees;
    }
    /* Which thread freed what depends on scheduling; the totals do not. */
    printf("mstress threads=%d rounds=%d allocs=%" PRIu64 " checksum=%016" PRIx64 "\n", THREADS, ROUNDS,
           allocs, sum);
    if (frees != allocs) die("blocks lost", allocs - frees);
    return 0;
}
