/* The soak workload (tests/stress/soak.py): a mixed workload held at a share
 * of its budget for a long time, under the preload.
 *
 *   soak SECONDS WARMUP_SECONDS FRACTION
 *
 * Four worker threads keep a live set of blocks of mixed sizes: malloc,
 * calloc, realloc up and down, aligned allocations, anonymous mmaps, and
 * blocks exchanged through a shared pool so that frees are remote.  Each
 * worker ends after a random number of operations and a new thread takes over
 * its blocks (heaps of threads that are gone, freed into).  During the warm-up
 * the main thread tunes the amount of live data until the budget's footprint
 * (membudget_footprint) sits at FRACTION of the limit; then the amount is
 * frozen and the workload runs on, so that anything that grows afterwards --
 * fragmentation, a leak, a cache that is never given back -- shows as a rising
 * footprint or RSS.  Once a second a line goes to stdout:
 *   sample T rss=B footprint=B counter=B live=B policy=P
 * and at the end: "soak: done ops=N threads=N errors=N".  Exit status 0, or 1
 * when a block lost its contents; 2 when the membudget API is missing. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "membudget.h"
#include "testutil.h"

#pragma weak membudget_footprint
#pragma weak membudget_limit
#pragma weak membudget_stats

enum { WORKERS = 4, SLOTS = 8192, POOL = 4096 };

struct blk {
    unsigned char *ptr;
    size_t size;
    uint64_t seed;
    int mapped;
};

struct worker {
    pthread_t tid;
    tu_rng rng;
    struct blk slots[SLOTS];
    unsigned long ops, budget_ops;
};

static struct worker workers[WORKERS];
static _Atomic size_t live_total, target;
static atomic_int stop, errors;
static atomic_ulong total_ops, threads_started;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk pool[POOL];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The first and last 16 bytes carry the pattern; the whole block is written
 * once, so the OS sees what the budget counts. */
static void stamp(struct blk *b) {
    memset(b->ptr, 0x5a, b->size);
    if (b->size < 32) {
        tu_fill(b->ptr, b->size, b->seed);
        return;
    }
    tu_fill(b->ptr, 16, b->seed);
    tu_fill(b->ptr + b->size - 16, 16, ~b->seed);
}

static int intact(const struct blk *b) {
    if (b->size < 32) return tu_check(b->ptr, b->size, b->seed) == SIZE_MAX;
    return tu_check(b->ptr, 16, b->seed) == SIZE_MAX && tu_check(b->ptr + b->size - 16, 16, ~b->seed) == SIZE_MAX;
}

static void release(struct blk *b) {
    if (!b->ptr) return;
    if (!intact(b)) atomic_fetch_add(&errors, 1);
    if (b->mapped)
        munmap(b->ptr, b->size);
    else
        free(b->ptr);
    atomic_fetch_sub(&live_total, b->size);
    b->ptr = NULL;
}

static size_t pick_size(tu_rng *r) {
    uint64_t x = tu_below(r, 1000);
    if (x < 600) return tu_between(r, 8, 512);
    if (x < 900) return tu_between(r, 513, 32 << 10);
    if (x < 985) return tu_between(r, 32 << 10, 256 << 10);
    return tu_between(r, 256 << 10, 3 << 20);
}

static int fresh(tu_rng *r, struct blk *b) {
    size_t n = pick_size(r);
    uint64_t kind = tu_below(r, 100);
    unsigned char *p = NULL;
    int mapped = 0;
    if (kind < 70) {
        p = malloc(n);
    } else if (kind < 82) {
        p = calloc(1, n);
        if (p && tu_check_zero(p, n < 4096 ? n : 4096) != SIZE_MAX) atomic_fetch_add(&errors, 1);
    } else if (kind < 92) {
        size_t align = (size_t)1 << tu_between(r, 4, 16);
        if (posix_memalign((void **)&p, align, n) != 0) p = NULL;
        if (p && (uintptr_t)p % align) atomic_fetch_add(&errors, 1);
    } else if (kind < 98) {
        p = malloc(n);
    } else {
        n = (n + 4095) & ~(size_t)4095;
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) p = NULL;
        mapped = 1;
    }
    if (!p) return 0;
    *b = (struct blk){p, n, tu_next(r), mapped};
    stamp(b);
    atomic_fetch_add(&live_total, n);
    return 1;
}

static void grow_or_shrink(tu_rng *r, struct blk *b) {
    if (!intact(b)) atomic_fetch_add(&errors, 1);
    size_t to = tu_below(r, 2) ? b->size + b->size / 2 + 1 : b->size / 2 + 1;
    if (to > (4u << 20)) to = pick_size(r);
    size_t keep = (b->size < to ? b->size : to) < 16 ? (b->size < to ? b->size : to) : 16;
    unsigned char *q = realloc(b->ptr, to);
    if (!q) return;
    if (tu_check(q, keep, b->seed) != SIZE_MAX) atomic_fetch_add(&errors, 1);
    atomic_fetch_add(&live_total, to);
    atomic_fetch_sub(&live_total, b->size);
    b->ptr = q;
    b->size = to;
    stamp(b);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && n < w->budget_ops) {
        struct blk *b = &w->slots[tu_below(&w->rng, SLOTS)];
        uint64_t op = tu_below(&w->rng, 100);
        n++;
        if (b->ptr && !b->mapped && op < 12) {
            grow_or_shrink(&w->rng, b);
        } else if (op < 20) {
            /* Trade a block for one of the pool's: what comes back was most
             * likely allocated by another thread, perhaps one that has ended. */
            pthread_mutex_lock(&pool_lock);
            struct blk *s = &pool[tu_below(&w->rng, POOL)];
            if (b->ptr && s->ptr) {
                struct blk t = *s;
                *s = *b;
                *b = t;
            }
            pthread_mutex_unlock(&pool_lock);
        } else if (op < 26) {
            /* The pool's blocks are freed and renewed by whichever thread
             * comes by. */
            pthread_mutex_lock(&pool_lock);
            struct blk *s = &pool[tu_below(&w->rng, POOL)];
            release(s);
            if (atomic_load_explicit(&live_total, memory_order_relaxed) <
                atomic_load_explicit(&target, memory_order_relaxed))
                fresh(&w->rng, s);
            pthread_mutex_unlock(&pool_lock);
        } else {
            release(b);
            if (atomic_load_explicit(&live_total, memory_order_relaxed) <
                atomic_load_explicit(&target, memory_order_relaxed))
                fresh(&w->rng, b);
        }
    }
    w->ops += n;
    atomic_fetch_add(&total_ops, n);
    return NULL;
}

static void start(struct worker *w) {
    w->budget_ops = tu_between(&w->rng, 200000, 2000000);
    atomic_fetch_add(&threads_started, 1);
    pthread_create(&w->tid, NULL, worker_main, w);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: soak SECONDS WARMUP_SECONDS FRACTION\n");
        return 2;
    }
    double seconds = atof(argv[1]), warmup = atof(argv[2]), fraction = atof(argv[3]);
    if (!membudget_footprint || !membudget_limit || !membudget_stats) {
        fprintf(stderr, "soak: the membudget API is not there (run it with the library preloaded)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t limit = membudget_limit(), goal = (size_t)((double)limit * fraction);
    atomic_store(&target, goal / 2);
    for (int i = 0; i < WORKERS; i++) {
        workers[i].rng.state = 1000 + (uint64_t)i;
        start(&workers[i]);
    }
    double t0 = now_s(), next_sample = 0;
    int frozen = 0;
    while (now_s() - t0 < seconds) {
        usleep(100000);
        double t = now_s() - t0;
        size_t fp = membudget_footprint();
        if (!frozen) {
            /* Tune the live data towards the goal, a third of the gap at a time. */
            double gap = (double)goal - (double)fp;
            double tgt = (double)atomic_load(&target) + gap / 3;
            atomic_store(&target, tgt < 0 ? (size_t)0 : (size_t)tgt);
            if (t >= warmup) {
                frozen = 1;
                printf("frozen %.1f target=%zu\n", t, (size_t)atomic_load(&target));
            }
        }
        /* A worker whose thread has ended is replaced by a new thread. */
        for (int i = 0; i < WORKERS; i++) {
            if (pthread_tryjoin_np(workers[i].tid, NULL) == 0) start(&workers[i]);
        }
        if (t >= next_sample) {
            struct membudget_stats st;
            memset(&st, 0, sizeof st);
            membudget_stats(&st, sizeof st);
            printf("sample %.1f rss=%zu footprint=%zu counter=%llu live=%zu policy=%llu\n", t, tu_rss_bytes(),
                   fp, (unsigned long long)st.counter_bytes, (size_t)atomic_load(&live_total),
                   (unsigned long long)st.policy);
            next_sample += 1.0;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(workers[i].tid, NULL);
    for (int i = 0; i < WORKERS; i++)
        for (int k = 0; k < SLOTS; k++) release(&workers[i].slots[k]);
    for (int k = 0; k < POOL; k++) release(&pool[k]);
    printf("soak: done ops=%lu threads=%lu errors=%d limit=%zu\n", (unsigned long)atomic_load(&total_ops),
           (unsigned long)atomic_load(&threads_started), atomic_load(&errors), limit);
    return atomic_load(&errors) ? 1 : 0;
}
