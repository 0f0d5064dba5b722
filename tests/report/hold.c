/* The death dump completes whoever holds the locks it would read under
 * (tests/report/run.py): the debug library's membudget_debug_hold_locks takes
 * the pressure, mapping-table, metadata and sample locks and never gives them
 * back, as a context stopped inside the allocator would; then the process
 * allocates until the budget stops it.
 *   hold same    the dying thread itself holds them
 *   hold other   another thread holds them and waits forever
 * Exits 77 without the debug library (the hook is absent). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD_ALL 15u

static void (*hold_locks)(unsigned mask);
static _Atomic int holding;
static void *volatile sink;

/* One call path for every block, so every sample has the same stack: its site
 * exists before the sample lock is taken away. */
__attribute__((noinline)) static void *grow_block(void) {
    void *p = malloc(16384);
    if (p != NULL) memset(p, 1, 64);
    sink = p;
    return p;
}

static void *holder(void *arg) {
    (void)arg;
    hold_locks(HOLD_ALL);
    atomic_store(&holding, 1);
    for (;;) pause();
    return NULL;
}

static void start_holding(int same_thread) {
    if (same_thread) {
        hold_locks(HOLD_ALL);
        return;
    }
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    while (!atomic_load(&holding)) usleep(1000);
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "same") != 0 && strcmp(argv[1], "other") != 0)) {
        fprintf(stderr, "usage: hold same|other\n");
        return 2;
    }
    hold_locks = (void (*)(unsigned))dlsym(RTLD_DEFAULT, "membudget_debug_hold_locks");
    if (hold_locks == NULL) {
        printf("hold: membudget_debug_hold_locks is not here (not the debug library)\n");
        return 77;
    }
    /* The first 4 MiB warm up the site and this thread's unwinder caches. */
    for (long i = 0;; i++) {
        if (i == 256) start_holding(strcmp(argv[1], "same") == 0);
        grow_block();
    }
}
