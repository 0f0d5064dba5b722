/* An 8-thread growing workload for the budget's deaths under load
 * (tests/stress/deaths.py):
 *
 *   load THREADS HIGH_BYTES LOW_BYTES CYCLES SEED
 *
 * The threads allocate blocks of mixed sizes (small, medium, large, and some
 * anonymous mmaps), write them whole, free some as they go, and keep growing
 * until the live total reaches HIGH_BYTES.  Then, CYCLES times over, they free
 * down to LOW_BYTES, the main thread calls malloc_trim(0) and pauses 150 ms (so
 * the budget's monitor can see the footprint fall), and they grow to HIGH_BYTES
 * again: with MEMBUDGET_ACTION=warn each growth past the limit is one crossing
 * if the footprint fell under 90% of the limit before it (then the warning is
 * re-armed); when freeing down to LOW_BYTES leaves the footprint above that
 * (pages the other threads keep), everything is freed.  The crossings are
 * counted from membudget_footprint() and membudget_limit().
 * An allocation that fails (MEMBUDGET_ACTION=fail) is answered as a program
 * would: the thread frees a twentieth of its blocks and goes on; after 160
 * failures in all the growth stops.  At the end every block is checked against
 * the pattern it was written with and freed, and one line goes to stdout:
 *   load: done nulls=N cycles=C crossings=X peak=BYTES errors=E
 * The exit status is 0, or 1 when a block lost its contents.  Under
 * MEMBUDGET_ACTION=abort the process is expected to die before.  With
 * LOAD_VERBOSE set, the footprint after each trim goes to stderr. */
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
#pragma weak membudget_stats
#pragma weak membudget_limit

enum { MAX_THREADS = 64, NULL_LIMIT = 160 };

struct blk {
    unsigned char *ptr;
    size_t size;
    int mapped;
};

struct worker {
    pthread_t tid;
    int id;
    tu_rng rng;
    struct blk *blocks;
    size_t count, cap;
    size_t live;
};

static struct worker workers[MAX_THREADS];
static int nthreads;
static size_t high_bytes, low_bytes;
static _Atomic size_t live_total, peak_total;
static atomic_int nulls, stop_growth, errors;
/* Phases: the main thread sets the target and the generation; workers report
 * when they reach it. */
static _Atomic size_t target;
static atomic_int generation, arrived;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t pick_size(tu_rng *r) {
    uint64_t x = tu_below(r, 1000);
    if (x < 700) return tu_between(r, 16, 1024);
    if (x < 950) return tu_between(r, 1025, 64 << 10);
    if (x < 990) return tu_between(r, 256 << 10, 1 << 20);
    return tu_between(r, 1 << 20, 4 << 20);
}

static void drop(struct worker *w, size_t i) {
    struct blk *b = &w->blocks[i];
    if (tu_check(b->ptr, b->size, tu_seed(b->ptr, b->size)) != SIZE_MAX) atomic_fetch_add(&errors, 1);
    if (b->mapped)
        munmap(b->ptr, b->size);
    else
        free(b->ptr);
    w->live -= b->size;
    atomic_fetch_sub(&live_total, b->size);
    w->blocks[i] = w->blocks[--w->count];
}

static int grow_one(struct worker *w) {
    size_t n = pick_size(&w->rng);
    int mapped = tu_below(&w->rng, 100) == 0;
    unsigned char *p;
    if (mapped) {
        n = (n + 4095) & ~(size_t)4095;
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) p = NULL;
    } else {
        p = malloc(n);
    }
    if (p == NULL) {
        if (errno != ENOMEM) atomic_fetch_add(&errors, 1);
        atomic_fetch_add(&nulls, 1);
        /* What a program does on ENOMEM: give something back, go on. */
        for (size_t k = w->count / 20 + 1; k > 0 && w->count > 0; k--)
            drop(w, (size_t)tu_below(&w->rng, w->count));
        if (atomic_load(&nulls) >= NULL_LIMIT) atomic_store(&stop_growth, 1);
        return 0;
    }
    tu_fill(p, n, tu_seed(p, n));
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct blk *nb = realloc(w->blocks, cap * sizeof *nb);
        if (nb == NULL) { /* no room for the record: give the block back */
            if (mapped) munmap(p, n);
            else free(p);
            atomic_fetch_add(&nulls, 1);
            if (atomic_load(&nulls) >= NULL_LIMIT) atomic_store(&stop_growth, 1);
            return 0;
        }
        w->blocks = nb;
        w->cap = cap;
    }
    w->blocks[w->count++] = (struct blk){p, n, mapped};
    w->live += n;
    size_t now = atomic_fetch_add(&live_total, n) + n;
    size_t peak = atomic_load(&peak_total);
    while (now > peak && !atomic_compare_exchange_weak(&peak_total, &peak, now)) {
    }
    /* Churn: now and then a block goes again. */
    if (tu_below(&w->rng, 8) == 0 && w->count > 1) drop(w, (size_t)tu_below(&w->rng, w->count - 1));
    return 1;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int seen = 0;
    for (;;) {
        while (atomic_load(&generation) == seen) sleep_ms(1);
        seen = atomic_load(&generation);
        if (seen < 0) return NULL;
        size_t t = atomic_load(&target), share = t / (size_t)nthreads;
        if (w->live < share) {
            while (w->live < share && !atomic_load(&stop_growth)) grow_one(w);
        } else {
            while (w->live > share && w->count > 0) drop(w, (size_t)tu_below(&w->rng, w->count));
        }
        atomic_fetch_add(&arrived, 1);
    }
}

/* Sets a new target and waits until every worker has reached it. */
static void phase(size_t t) {
    atomic_store(&target, t);
    atomic_store(&arrived, 0);
    atomic_fetch_add(&generation, 1);
    while (atomic_load(&arrived) < nthreads) sleep_ms(1);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: load THREADS HIGH_BYTES LOW_BYTES CYCLES SEED\n");
        return 2;
    }
    nthreads = atoi(argv[1]);
    high_bytes = strtoull(argv[2], NULL, 0);
    low_bytes = strtoull(argv[3], NULL, 0);
    int cycles = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 0);
    if (nthreads < 1 || nthreads > MAX_THREADS) nthreads = 8;
    for (int i = 0; i < nthreads; i++) {
        workers[i].id = i;
        workers[i].rng.state = seed * 1000 + (uint64_t)i;
        pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
    }
    phase(high_bytes);
    int done_cycles = 0, crossings = 1;
    int api = membudget_footprint && membudget_limit && membudget_stats;
    for (; done_cycles < cycles && !atomic_load(&stop_growth); done_cycles++) {
        phase(low_bytes);
        malloc_trim(0);
        if (api && membudget_footprint() >= membudget_limit() / 10 * 9) {
            /* Still over 90% of the limit (pages cached by the other threads):
             * everything goes. */
            phase(0);
            malloc_trim(0);
        }
        /* Below 90% of the limit the monitor re-arms the warning: the next
         * growth past the limit is a crossing of its own. */
        if (api && membudget_footprint() < membudget_limit() / 10 * 9) crossings++;
        sleep_ms(150);
        if (getenv("LOAD_VERBOSE") && membudget_footprint && membudget_stats) {
            struct membudget_stats st;
            memset(&st, 0, sizeof st);
            membudget_stats(&st, sizeof st);
            fprintf(stderr,
                    "load: cycle %d after the trim: live %zu, footprint %zu = counter %llu (small %llu, "
                    "small live %llu, large %llu, large cached %llu, mmap %llu, meta %llu) + "
                    "baseline %llu; policy %llu\n",
                    done_cycles, (size_t)atomic_load(&live_total), membudget_footprint(),
                    (unsigned long long)st.counter_bytes, (unsigned long long)st.small_bytes,
                    (unsigned long long)st.small_live_bytes, (unsigned long long)st.large_bytes,
                    (unsigned long long)st.large_cached_bytes, (unsigned long long)st.mmap_bytes,
                    (unsigned long long)st.meta_bytes, (unsigned long long)st.baseline_bytes,
                    (unsigned long long)st.policy);
        }
        phase(high_bytes);
    }
    atomic_store(&generation, -1);
    for (int i = 0; i < nthreads; i++) pthread_join(workers[i].tid, NULL);
    for (int i = 0; i < nthreads; i++) {
        while (workers[i].count > 0) drop(&workers[i], workers[i].count - 1);
        free(workers[i].blocks);
    }
    printf("load: done nulls=%d cycles=%d crossings=%d peak=%zu errors=%d\n", atomic_load(&nulls),
           done_cycles, api ? crossings : -1, (size_t)atomic_load(&peak_total), atomic_load(&errors));
    return atomic_load(&errors) ? 1 : 0;
}
