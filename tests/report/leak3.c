/* Ground truth for the report (tests/report/run.py): three functions leak at
 * known shares of the leaked bytes, 60%, 30% and 10%, in sizes from 16 B to
 * 1 MiB, from two threads, until the budget stops the process.
 *
 * A kill callback (membudget_on_kill, found with dlsym) stops the other thread
 * at a known point and prints the exact bytes each function leaked, one
 * "truth NAME BYTES" line each, for run.py to compare with the report's
 * estimates.  Built with -g -fno-omit-frame-pointer -fno-inline so that each
 * function is a frame of its own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FUNCTIONS 3
#define THREADS 2

static const size_t sizes[] = {16, 48, 200, 1000, 4096, 20000, 100000, 300000, 1048576};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])
static const unsigned share_percent[FUNCTIONS] = {60, 30, 10};
static const char *const names[FUNCTIONS] = {"leak_60", "leak_30", "leak_10"};

static _Atomic uint64_t leaked[FUNCTIONS];
static _Atomic int stop, parked;
static void *volatile sink;

__attribute__((noinline)) void *leak_60(size_t n) {
    void *p = malloc(n);
    sink = p;
    return p;
}

__attribute__((noinline)) void *leak_30(size_t n) {
    void *p = malloc(n);
    sink = p;
    return p;
}

__attribute__((noinline)) void *leak_10(size_t n) {
    void *p = malloc(n);
    sink = p;
    return p;
}

/* The function furthest behind its share. */
static int pick_function(void) {
    int best = 0;
    double best_ratio = 0;
    for (int f = 0; f < FUNCTIONS; f++) {
        double ratio = (double)atomic_load(&leaked[f]) / share_percent[f];
        if (f == 0 || ratio < best_ratio) {
            best = f;
            best_ratio = ratio;
        }
    }
    return best;
}

/* The size with the fewest bytes so far: every size gets about the same bytes. */
static unsigned pick_size(const uint64_t *per_size) {
    unsigned best = 0;
    for (unsigned i = 1; i < SIZE_COUNT; i++)
        if (per_size[i] < per_size[best]) best = i;
    return best;
}

static void *worker(void *arg) {
    (void)arg;
    uint64_t per_size[FUNCTIONS][SIZE_COUNT];
    memset(per_size, 0, sizeof per_size);
    while (!atomic_load(&stop)) {
        int f = pick_function();
        unsigned i = pick_size(per_size[f]);
        size_t n = sizes[i];
        void *p = f == 0 ? leak_60(n) : f == 1 ? leak_30(n) : leak_10(n);
        if (p == NULL) abort();
        per_size[f][i] += n;
        atomic_fetch_add(&leaked[f], n);
    }
    atomic_fetch_add(&parked, 1);
    for (;;) pause();
    return NULL;
}

/* Runs in the dying thread, inside its last allocation (which never returns):
 * the other thread finishes the allocation it is in, counts it and parks, or is
 * itself waiting inside the allocator, where nothing it asked for exists yet. */
static void on_kill(void *arg) {
    (void)arg;
    atomic_store(&stop, 1);
    for (int i = 0; i < 500 && atomic_load(&parked) < THREADS - 1; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    char line[256];
    for (int f = 0; f < FUNCTIONS; f++) {
        int n = snprintf(line, sizeof line, "truth %s %llu\n", names[f],
                         (unsigned long long)atomic_load(&leaked[f]));
        if (write(2, line, (size_t)n) < 0) break;
    }
}

int main(void) {
    int (*on_kill_fn)(void (*)(void *), void *) =
        (int (*)(void (*)(void *), void *))dlsym(RTLD_DEFAULT, "membudget_on_kill");
    if (on_kill_fn == NULL || on_kill_fn(on_kill, NULL) != 0) {
        fprintf(stderr,
                "leak3: membudget_on_kill is not available: run it with the library preloaded\n");
        return 2;
    }
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, NULL);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    return 0;
}
