/* The large-span cache against the budget (issue 19), run preloaded under the
 * release and the debug library with MEMBUDGET_CONSERVATIVE=128M:
 *   headroom  random replacements of 16-24 MiB blocks: the policy never leaves
 *             Unrestricted, the cache stays within the room under Conservative,
 *             the large figures stay exact, and a freed 24 MiB span is kept
 *             and reused warm (few minor faults);
 *   rise      an anonymous mapping takes the footprint over Conservative: the
 *             policy rises and the cache is empty at once;
 *   release   membudget_release(STRICT) empties it, the counter drops by it;
 *   fork      a child reuses a cached span, checks the figures and empties
 *             the cache; the parent's is untouched.
 * malloc_trim makes the debug build check its counter against everything it
 * committed.  The library's API is looked up with dlsym, so the same binary runs under
 * either build. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "membudget.h"

#define MIB ((size_t)1 << 20)
#define CONSERVATIVE (128 * MIB)
#define SLOTS 3

static size_t (*stats_fn)(struct membudget_stats *, size_t);
static size_t (*release_fn)(int);
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "largecache: FAIL %s:%d: ", __func__, __LINE__);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static struct membudget_stats stats(void) {
    struct membudget_stats s;
    memset(&s, 0, sizeof s);
    stats_fn(&s, sizeof s);
    return s;
}

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void *block(size_t size) {
    unsigned char *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "largecache: malloc(%zu) failed\n", size);
        exit(2);
    }
    memset(p, 0x5a, size);
    return p;
}

/* Large bytes in use equal the live blocks' usable sizes; the cache stays
 * within the room under the Conservative threshold (a few MiB of slack for
 * the baseline, which the monitor measures now and then). */
static void check_figures(void *const *live, size_t n, const char *when) {
    struct membudget_stats s = stats();
    uint64_t in_use = 0;
    for (size_t i = 0; i < n; i++)
        if (live[i] != NULL) in_use += malloc_usable_size(live[i]);
    CHECK(s.large_bytes - s.large_cached_bytes == in_use,
          "%s: large bytes %" PRIu64 " - cached %" PRIu64 " != live %" PRIu64, when, s.large_bytes,
          s.large_cached_bytes, in_use);
    CHECK(s.policy == 0, "%s: policy %" PRIu64 " (footprint %" PRIu64 ", cached %" PRIu64 ")", when,
          s.policy, s.footprint_bytes, s.large_cached_bytes);
    CHECK(s.footprint_bytes + s.large_cached_bytes <= CONSERVATIVE + 4 * MIB,
          "%s: cached %" PRIu64 " beyond the room under Conservative (footprint %" PRIu64 ")", when,
          s.large_cached_bytes, s.footprint_bytes);
}

/* Keeps a freed 24 MiB span and serves a 20 MiB request from it warm. */
static void check_warm_reuse(void) {
    void *a = block(24 * MIB);
    free(a);
    struct membudget_stats s = stats();
    CHECK(s.large_cached_bytes >= 24 * MIB, "freed 24 MiB span not kept: cached %" PRIu64,
          s.large_cached_bytes);
    long before = minflt();
    void *b = block(20 * MIB);
    long faults = minflt() - before;
    CHECK(faults < 256, "reused span faulted %ld pages back in", faults);
    void *live[1] = {b};
    check_figures(live, 1, "warm reuse");
    free(b);
}

static int case_headroom(void) {
    check_warm_reuse();
    void *live[SLOTS] = {NULL};
    uint64_t seed = 19, max_cached = 0;
    for (int n = 0; n < 300; n++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t i = (size_t)(seed >> 33) % SLOTS;
        free(live[i]);
        live[i] = NULL;
        check_figures(live, SLOTS, "after free");
        size_t size = 16 * MIB + (size_t)((seed >> 13) % (8 * MIB));
        live[i] = block(size);
        check_figures(live, SLOTS, "after malloc");
        uint64_t cached = stats().large_cached_bytes;
        if (cached > max_cached) max_cached = cached;
        /* The debug build checks the counter against all it committed here. */
        if (n == 150) malloc_trim(0);
    }
    CHECK(max_cached >= 16 * MIB, "the cache never kept a span: at most %" PRIu64, max_cached);
    for (size_t i = 0; i < SLOTS; i++) free(live[i]);
    malloc_trim(0);
    return 0;
}

/* Frees two of three 24 MiB blocks: at least one stays cached. */
static void *fill_cache(void) {
    void *a = block(24 * MIB), *b = block(24 * MIB), *c = block(24 * MIB);
    free(a);
    free(b);
    CHECK(stats().large_cached_bytes >= 24 * MIB, "nothing cached: %" PRIu64,
          stats().large_cached_bytes);
    return c;
}

static int case_rise(void) {
    void *keep = fill_cache();
    size_t len = 96 * MIB;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap failed");
    if (m != MAP_FAILED) memset(m, 1, len);
    struct membudget_stats s = stats();
    CHECK(s.policy >= 1, "policy did not rise: footprint %" PRIu64, s.footprint_bytes);
    CHECK(s.large_cached_bytes == 0, "cache kept %" PRIu64 " after the policy rose",
          s.large_cached_bytes);
    s = stats();
    CHECK(s.large_bytes == malloc_usable_size(keep), "large bytes %" PRIu64, s.large_bytes);
    if (m != MAP_FAILED) munmap(m, len);
    free(keep);
    return 0;
}

static int case_release(void) {
    void *keep = fill_cache();
    struct membudget_stats before = stats();
    size_t released = release_fn(MEMBUDGET_LEVEL_STRICT);
    struct membudget_stats after = stats();
    CHECK(after.large_cached_bytes == 0, "cache kept %" PRIu64 " after release",
          after.large_cached_bytes);
    CHECK(released >= before.large_cached_bytes, "released %zu < cached %" PRIu64, released,
          before.large_cached_bytes);
    CHECK(before.counter_bytes - after.counter_bytes >= before.large_cached_bytes,
          "counter dropped by %" PRIu64 ", cache held %" PRIu64,
          before.counter_bytes - after.counter_bytes, before.large_cached_bytes);
    void *live[1] = {keep};
    check_figures(live, 1, "after release");
    free(keep);
    return 0;
}

static int case_fork(void) {
    void *keep = fill_cache();
    uint64_t parent_cached = stats().large_cached_bytes;
    pid_t pid = fork();
    if (pid == 0) {
        /* From the inherited cache (its pages are shared with the parent until
         * written, so writing them copies: no fault count to check here). */
        void *b = block(20 * MIB);
        CHECK(stats().large_cached_bytes < parent_cached, "child: 20 MiB not taken from the cache");
        void *live[2] = {keep, b};
        check_figures(live, 2, "child");
        free(b);
        release_fn(MEMBUDGET_LEVEL_STRICT);
        CHECK(stats().large_cached_bytes == 0, "child cache not emptied");
        malloc_trim(0); /* the debug build's counter check, in the child */
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork or wait failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: status %d", status);
    CHECK(stats().large_cached_bytes == parent_cached, "parent cache changed: %" PRIu64,
          stats().large_cached_bytes);
    void *live[1] = {keep};
    check_figures(live, 1, "parent after fork");
    free(keep);
    return 0;
}

int main(int argc, char **argv) {
    stats_fn = (size_t (*)(struct membudget_stats *, size_t))dlsym(RTLD_DEFAULT, "membudget_stats");
    release_fn = (size_t (*)(int))dlsym(RTLD_DEFAULT, "membudget_release");
    if (stats_fn == NULL || release_fn == NULL || argc != 2) {
        fprintf(stderr, "usage: LD_PRELOAD=libmembudget.so largecache headroom|rise|release|fork\n");
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "headroom") == 0) case_headroom();
    else if (strcmp(c, "rise") == 0) case_rise();
    else if (strcmp(c, "release") == 0) case_release();
    else if (strcmp(c, "fork") == 0) case_fork();
    else {
        fprintf(stderr, "largecache: unknown case '%s' (headroom, rise, release or fork)\n", c);
        return 2;
    }
    printf("largecache %s: %s\n", c, failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
