/* A cache that shrinks when the budget says so.
 *
 *   cc -Iinclude examples/shrinking_cache.c -o cache -Lbuild -lmembudget
 *   MEMBUDGET_LIMIT=64M LD_PRELOAD=build/libmembudget.so ./cache
 *
 * The cache keeps recently used 1 MiB entries.  Under Conservative pressure it
 * drops the older half, under Strict and at the critical level all of it; so a
 * working set that grows past the limit survives as long as the cache can pay
 * for it.  The callback runs inside the allocation that crossed a threshold:
 * it frees, and must not wait for another thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membudget.h"

#define ENTRY_BYTES (1 << 20)
#define ENTRIES 48

static char *entries[ENTRIES];

static size_t cache_drop(size_t keep) {
    size_t dropped = 0;
    for (size_t i = keep; i < ENTRIES; i++) {
        if (entries[i] == NULL) continue;
        free(entries[i]);
        entries[i] = NULL;
        dropped++;
    }
    return dropped;
}

static void on_pressure(int level, void *arg) {
    (void)arg;
    /* A notice, not a request to release: say it and keep the cache. */
    if (level == MEMBUDGET_LEVEL_INACTIVE_LIMIT) {
        fprintf(stderr, "cache: over the inactive limit while active\n");
        return;
    }
    size_t dropped = cache_drop(level == MEMBUDGET_LEVEL_CONSERVATIVE ? ENTRIES / 2 : 0);
    /* write(2) rather than stdio would be stricter; a short printf is fine here
     * because our own allocations inside the callback are never refused. */
    fprintf(stderr, "cache: level %d, dropped %zu entries\n", level, dropped);
}

int main(void) {
    membudget_on_pressure(on_pressure, NULL);
    for (size_t i = 0; i < ENTRIES; i++) {
        entries[i] = malloc(ENTRY_BYTES);
        memset(entries[i], (int)i, ENTRY_BYTES);
    }
    printf("cache filled: footprint %zu MiB of %zu MiB\n", membudget_footprint() >> 20,
           membudget_limit() >> 20);
    /* The working set grows past what cache and work together may use. */
    char *work[40];
    for (size_t i = 0; i < 40; i++) {
        work[i] = malloc(ENTRY_BYTES);
        memset(work[i], 1, ENTRY_BYTES);
    }
    printf("work done: footprint %zu MiB\n", membudget_footprint() >> 20);
    for (size_t i = 0; i < 40; i++) free(work[i]);
    cache_drop(0);
    return 0;
}
