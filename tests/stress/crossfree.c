/* Cross-thread frees and retained memory (DESIGN §2 thread heaps):
 *  - a ring of threads, each allocating blocks and handing every one to its
 *    successor over a bounded queue, which checks and frees it (a remote free
 *    into a page its owner is still allocating from): the committed small
 *    pages (membudget_stats) and the peak RSS stay under a bound computed from
 *    the most bytes the queues can hold, however many blocks pass;
 *  - threads that exit with their blocks still alive, freed afterwards by the
 *    main thread or by threads started later (remote frees into abandoned
 *    heaps): heaps are reused, and after a release the pages those frees
 *    emptied are back in the pool, wave after wave;
 *  - forks while other threads free each other's blocks: every child checks
 *    and frees the blocks the (in the child, gone) threads allocated, runs a
 *    thread of its own, releases, and exits cleanly.
 * No timing is measured: bounds are in bytes, counts in operations.
 * CROSSFREE_PASSES scales the ring (default 300,000 blocks per thread), and
 * MBTEST_SCALE every count. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { RING_THREADS = 4, RING = 4096, MAX_BLOCK = 1024, EXIT_THREADS = 8, EXIT_BLOCKS = 2000 };

struct item {
    unsigned char *ptr;
    size_t size;
};

static struct membudget_stats stats_now(void) {
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    if (MBTEST_HAVE_API) membudget_stats(&st, sizeof st);
    return st;
}

static size_t peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

static bool item_new(struct item *it, tu_rng *rng, size_t max) {
    it->size = tu_between(rng, 1, max);
    it->ptr = T_MALLOC(it->size);
    if (it->ptr == NULL) return false;
    tu_fill(it->ptr, it->size, tu_seed(it->ptr, it->size));
    return true;
}

/* Checks and frees; false when the contents changed. */
static bool item_free(struct item it) {
    bool ok = tu_check(it.ptr, it.size, tu_seed(it.ptr, it.size)) == SIZE_MAX;
    T_FREE(it.ptr);
    return ok;
}

/* ---- the ring ------------------------------------------------------------ */
static struct ring {
    _Alignas(64) atomic_ulong head;
    _Alignas(64) atomic_ulong tail;
    struct item item[RING];
} rings[RING_THREADS];
static atomic_int ring_producing[RING_THREADS];
static atomic_ulong ring_errors, ring_frees;
static atomic_size_t ring_max_small;
static size_t ring_passes;

static bool ring_push(struct ring *r, struct item it) {
    unsigned long tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING) return false;
    r->item[tail % RING] = it;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

static unsigned ring_drain(struct ring *r, unsigned max) {
    unsigned n = 0;
    unsigned long head = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (n < max && head != atomic_load_explicit(&r->tail, memory_order_acquire)) {
        if (!item_free(r->item[head % RING])) atomic_fetch_add(&ring_errors, 1);
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        n++;
    }
    atomic_fetch_add_explicit(&ring_frees, n, memory_order_relaxed);
    return n;
}

/* The committed small pages, kept at their highest (sampled by the threads
 * themselves every few thousand blocks: no clock, no sleeping). */
static void note_small(void) {
    size_t small = (size_t)stats_now().small_bytes;
    size_t seen = atomic_load(&ring_max_small);
    while (small > seen && !atomic_compare_exchange_weak(&ring_max_small, &seen, small)) {
    }
}

static void *ring_main(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    struct ring *out = &rings[id], *in = &rings[(id + RING_THREADS - 1) % RING_THREADS];
    tu_rng rng = {0xc0ffee00u + id};
    for (size_t n = 0; n < ring_passes; n++) {
        struct item it;
        if (!item_new(&it, &rng, MAX_BLOCK)) {
            atomic_fetch_add(&ring_errors, 1);
            break;
        }
        while (!ring_push(out, it)) ring_drain(in, RING);
        ring_drain(in, 2);
        if (n % 4096 == 0) note_small();
    }
    atomic_store(&ring_producing[id], 0);
    unsigned pred = (id + RING_THREADS - 1) % RING_THREADS;
    for (;;) {
        bool done = atomic_load(&ring_producing[pred]) == 0;
        if (ring_drain(in, RING) == 0 && done) break;
        if (!done) sched_yield();
    }
    return NULL;
}

static void test_ring_retention(void) {
    const char *env = getenv("CROSSFREE_PASSES");
    ring_passes = tu_scaled(env && *env ? (size_t)strtoull(env, NULL, 10) : 300000, 20000);
    size_t rss_before = tu_rss_bytes();
    pthread_t tids[RING_THREADS];
    for (unsigned i = 0; i < RING_THREADS; i++) atomic_store(&ring_producing[i], 1);
    for (unsigned i = 0; i < RING_THREADS; i++)
        expect_int_eq(pthread_create(&tids[i], NULL, ring_main, (void *)(uintptr_t)i), 0, "pthread_create");
    for (unsigned i = 0; i < RING_THREADS; i++) pthread_join(tids[i], NULL);
    expect_zu_eq(atomic_load(&ring_errors), 0, "blocks changed while in flight");
    expect_zu_eq(atomic_load(&ring_frees), ring_passes * RING_THREADS, "blocks lost");
    /* The most the queues hold, each block in its class's size (at most 1/8
     * over, 1024 bytes at this size), plus one 64 KiB page per class and heap
     * (24 classes up to 1 KiB, 5 heaps) and blocks in hand. */
    size_t live_max = (size_t)RING_THREADS * (RING + 4) * MAX_BLOCK;
    size_t slack = (size_t)5 * 24 * 64 * TU_KIB;
    size_t bound = live_max + slack;
    size_t max_small = atomic_load(&ring_max_small);
    fprintf(stderr, "  ring: %zu blocks passed, small pages at most %.1f MiB, peak RSS %.1f MiB "
            "(RSS %.1f MiB before), bound %.1f MiB over it\n", ring_passes * RING_THREADS,
            (double)max_small / TU_MIB, (double)peak_rss_bytes() / TU_MIB,
            (double)rss_before / TU_MIB, (double)bound / TU_MIB);
    if (MBTEST_HAVE_API) expect_zu_le_f(max_small, bound, "committed small pages over the live bound");
    expect_zu_le_f(peak_rss_bytes(), rss_before + bound + 4 * TU_MIB, "peak RSS over the live bound");
}

/* ---- threads that exit with live blocks -------------------------------- */
static struct item exit_items[EXIT_THREADS][EXIT_BLOCKS];

static void *exit_alloc_main(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    tu_rng rng = {0xe1100000u + id * 7919u};
    for (unsigned i = 0; i < EXIT_BLOCKS; i++)
        if (!item_new(&exit_items[id][i], &rng, 2048)) exit_items[id][i].ptr = NULL;
    return NULL;
}

static atomic_ulong exit_errors;

/* Frees the blocks of the thread `arg` left behind. */
static void *exit_free_main(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < EXIT_BLOCKS; i++) {
        if (exit_items[id][i].ptr == NULL) {
            atomic_fetch_add(&exit_errors, 1);
            continue;
        }
        if (!item_free(exit_items[id][i])) atomic_fetch_add(&exit_errors, 1);
    }
    return NULL;
}

static void run_threads(void *(*fn)(void *)) {
    pthread_t tids[EXIT_THREADS];
    for (unsigned i = 0; i < EXIT_THREADS; i++)
        if (pthread_create(&tids[i], NULL, fn, (void *)(uintptr_t)i) != 0) atomic_fetch_add(&exit_errors, 1);
    for (unsigned i = 0; i < EXIT_THREADS; i++) pthread_join(tids[i], NULL);
}

static void test_exit_with_blocks(void) {
    size_t waves = tu_scaled(200, 20);
    struct membudget_stats first = {0};
    for (size_t w = 0; w < waves; w++) {
        run_threads(exit_alloc_main);
        /* Every other wave the main thread frees; otherwise threads started
         * after the allocating ones exited (and adopting their heaps) do. */
        if (w % 2 == 0) {
            for (unsigned i = 0; i < EXIT_THREADS; i++) exit_free_main((void *)(uintptr_t)i);
        } else {
            run_threads(exit_free_main);
        }
        if (MBTEST_HAVE_API) membudget_release(MEMBUDGET_LEVEL_CRITICAL);
        if (w == 1) first = stats_now();
    }
    struct membudget_stats last = stats_now();
    expect_zu_eq(atomic_load(&exit_errors), 0, "blocks lost or changed");
    fprintf(stderr, "  exit: %zu waves of %d threads; after release: pages in use %llu -> %llu, "
            "small %.1f -> %.1f MiB, heaps %llu\n", waves, EXIT_THREADS,
            (unsigned long long)first.pages_in_use, (unsigned long long)last.pages_in_use,
            (double)first.small_bytes / TU_MIB, (double)last.small_bytes / TU_MIB,
            (unsigned long long)last.threads);
    if (!MBTEST_HAVE_API) return;
    /* Everything the waves allocated is free: after a release the pages hold
     * only what the test keeps itself (stdio and the like), the same as after
     * the second wave, and heaps were adopted rather than made anew. */
    expect_zu_le_f((size_t)last.pages_in_use, (size_t)first.pages_in_use + 8, "pages stay with exited threads");
    expect_zu_le_f((size_t)last.pages_in_use, 16, "pages emptied by remote frees still in use after a release");
    expect_zu_le_f((size_t)last.small_bytes, (size_t)first.small_bytes + 8 * 64 * TU_KIB,
                   "committed small pages grew wave after wave");
    expect_zu_le_f((size_t)last.threads, (size_t)2 * EXIT_THREADS + 4, "heaps of exited threads not reused");
}

/* ---- fork while other threads free ------------------------------------- */
enum { FORK_WORKERS = 3, FORK_KEEP = 300, FORK_SWAP = 256 };
static struct item fork_kept[FORK_WORKERS][FORK_KEEP];
static _Atomic(unsigned char *) fork_swap[FORK_SWAP];
static atomic_int fork_stop;
static atomic_int fork_ready;

/* Allocates the blocks the children will free, then swaps blocks with the
 * other workers through a shared table and frees what it gets (remote frees)
 * until told to stop. */
static void *fork_worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    tu_rng rng = {0xf0e0000u + id};
    for (unsigned i = 0; i < FORK_KEEP; i++)
        if (!item_new(&fork_kept[id][i], &rng, 4096)) fork_kept[id][i].ptr = NULL;
    atomic_fetch_add(&fork_ready, 1);
    while (!atomic_load_explicit(&fork_stop, memory_order_relaxed)) {
        size_t size = tu_between(&rng, 1, 1024);
        unsigned char *p = T_MALLOC(size);
        if (p == NULL) continue;
        p[0] = (unsigned char)id;
        unsigned char *old = atomic_exchange(&fork_swap[tu_below(&rng, FORK_SWAP)], p);
        T_FREE(old);
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (unsigned i = 0; i < 2000; i++) T_FREE(T_MALLOC(16 + i % 900));
    return NULL;
}

/* In the child: the workers are gone; their blocks are freed here. */
static int fork_child(void) {
    alarm(20);
    int bad = 0;
    for (unsigned w = 0; w < FORK_WORKERS; w++)
        for (unsigned i = 0; i < FORK_KEEP; i++) {
            if (fork_kept[w][i].ptr == NULL) continue;
            if (!item_free(fork_kept[w][i])) bad = 1;
        }
    for (unsigned i = 0; i < FORK_SWAP; i++) T_FREE(atomic_exchange(&fork_swap[i], NULL));
    pthread_t tid;
    if (pthread_create(&tid, NULL, child_thread, NULL) != 0 || pthread_join(tid, NULL) != 0) bad = 1;
    if (MBTEST_HAVE_API) membudget_release(MEMBUDGET_LEVEL_CRITICAL);
    return bad ? 3 : 0;
}

static void test_fork_while_freeing(void) {
    size_t forks = tu_scaled(100, 10);
    pthread_t tids[FORK_WORKERS];
    for (unsigned i = 0; i < FORK_WORKERS; i++)
        expect_int_eq(pthread_create(&tids[i], NULL, fork_worker, (void *)(uintptr_t)i), 0, "pthread_create");
    while (atomic_load(&fork_ready) < FORK_WORKERS) sched_yield();
    size_t failed = 0;
    for (size_t n = 0; n < forks; n++) {
        pid_t pid = fork();
        if (pid == 0) _exit(fork_child());
        if (pid < 0) {
            failed++;
            continue;
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (failed++ == 0) fprintf(stderr, "  fork %zu: child status %#x\n", n, status);
        }
    }
    atomic_store(&fork_stop, 1);
    for (unsigned i = 0; i < FORK_WORKERS; i++) pthread_join(tids[i], NULL);
    for (unsigned w = 0; w < FORK_WORKERS; w++)
        for (unsigned i = 0; i < FORK_KEEP; i++)
            if (fork_kept[w][i].ptr) expect_true(item_free(fork_kept[w][i]), "kept block changed");
    for (unsigned i = 0; i < FORK_SWAP; i++) T_FREE(atomic_exchange(&fork_swap[i], NULL));
    fprintf(stderr, "  fork: %zu children, %zu failed\n", forks, failed);
    expect_zu_eq(failed, 0, "children failed");
}

int main(void) {
    alarm((unsigned)tu_scaled(500, 500));
    if (!MBTEST_HAVE_API) fprintf(stderr, "  (no membudget API: the RSS alone is watched)\n");
    RUN(test_ring_retention);
    RUN(test_exit_with_blocks);
    RUN(test_fork_while_freeing);
    return harness_finish();
}
