/* Pressure callbacks through the public API.  Modes:
 *   climb    allocate untouched 64 MiB blocks up to 3.2 GiB (run with
 *            MEMBUDGET_RAM=4G: thresholds 2.4, 2.7, 3 GiB, kill 3.6 GiB) and print
 *            the levels the callback saw;
 *   below    allocate 16 MiB and print the levels (none expected);
 *   survive  hold a 40 MiB cache that the callback frees at the critical level,
 *            then grow 50 MiB past it (run with MEMBUDGET_LIMIT=64M);
 *   nocache  the same without the callback: the process dies;
 *   fork     climb past Conservative (MEMBUDGET_LIMIT=64M), fork, and print the
 *            policy the parent and the child see;
 *   inactive PATH  cross the inactive kill threshold while active, with
 *            untouched anonymous mappings (run with MEMBUDGET_MODEL=webkit-legacy,
 *            MEMBUDGET_RAM=4G and MEMBUDGET_MONITOR=thread: inactive limit 2 GiB,
 *            kill 3.6 GiB, Conservative at 2.4 GiB), print the levels seen after
 *            each step, then write a report to PATH with membudget_dump();
 *   threads  print membudget_stats()'s live threads with 7 threads that have
 *            allocated, then after two of them exited ("live 7 then 5"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "membudget.h"

#define CACHE_BLOCKS 40
static char *cache[CACHE_BLOCKS];
static int levels[64], level_count;

static void record_level(int level, void *arg) {
    (void)arg;
    if (level_count < 64) levels[level_count++] = level;
}

static void drop_cache(int level, void *arg) {
    record_level(level, arg);
    if (level < MEMBUDGET_LEVEL_CRITICAL) return;
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        free(cache[i]);
        cache[i] = NULL;
    }
}

static void print_levels(void) {
    printf("levels:");
    for (int i = 0; i < level_count; i++) printf(" %d", levels[i]);
    printf("\n");
}

static char *map_untouched(size_t mib) {
    char *p = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap %zu MiB failed\n", mib);
        exit(2);
    }
    p[0] = 1;
    return p;
}

static void step(const char *name) {
    printf("%s ", name);
    print_levels();
}

/* Long enough for several monitor ticks (MEMBUDGET_INTERVAL=10ms). */
static void settle(void) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int inactive_mode(const char *report) {
    const size_t over = 2100, below = 1900, gap = 200; /* MiB; the limit is 2048 */
    membudget_on_pressure(record_level, NULL);
    char *a = map_untouched(over); /* crosses 2 GiB */
    step("crossed");
    char *b = map_untouched(64); /* further over: no second notice */
    munmap(b, (size_t)64 << 20);
    step("further");
    /* Down to 1900 MiB, above 90% of the limit (1843.2 MiB), and over again:
     * still the same crossing. */
    munmap(a + (below << 20), (over - below) << 20);
    settle();
    char *c = map_untouched(gap);
    step("hysteresis");
    munmap(c, gap << 20);
    munmap(a, below << 20);
    /* Well below: the monitor re-arms the notice, and the next crossing sends it. */
    settle();
    a = map_untouched(over);
    step("again");
    struct membudget_stats st;
    membudget_stats(&st, sizeof st);
    printf("policy %d limit %zu\n", (int)st.policy, membudget_limit());
    munmap(a, over << 20);
    return membudget_dump(report) == 0 ? 0 : 3;
}

/* threads: 6 threads allocate and wait; 2 of them exit; the live-thread count
 * of membudget_stats() is printed with 7 threads allocating (main and 6), then
 * with 5 after two exits. */
static pthread_barrier_t started, counted, done;

static void *worker(void *arg) {
    char *volatile p = malloc(100);
    free(p);
    pthread_barrier_wait(&started);
    pthread_barrier_wait(&counted);
    if (arg != NULL) return NULL; /* one of the two that exit */
    pthread_barrier_wait(&done);
    return NULL;
}

static unsigned long long live_threads(void) {
    struct membudget_stats st;
    membudget_stats(&st, sizeof st);
    return (unsigned long long)st.threads_live;
}

static int threads_mode(void) {
    enum { THREADS = 6, EXITING = 2 };
    pthread_t tids[THREADS];
    char *volatile p = malloc(100); /* main allocates too */
    free(p);
    pthread_barrier_init(&started, NULL, THREADS + 1);
    pthread_barrier_init(&counted, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS - EXITING + 1);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tids[i], NULL, worker, i < EXITING ? (void *)1 : NULL);
    pthread_barrier_wait(&started); /* every thread has allocated; none has exited */
    unsigned long long before = live_threads();
    pthread_barrier_wait(&counted);
    for (int i = 0; i < EXITING; i++) pthread_join(tids[i], NULL);
    printf("live %llu then %llu\n", before, live_threads());
    pthread_barrier_wait(&done);
    for (int i = EXITING; i < THREADS; i++) pthread_join(tids[i], NULL);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "climb";
    if (strcmp(mode, "inactive") == 0) return inactive_mode(argc > 2 ? argv[2] : NULL);
    if (strcmp(mode, "threads") == 0) return threads_mode();
    if (strcmp(mode, "climb") == 0 || strcmp(mode, "below") == 0) {
        membudget_on_pressure(record_level, NULL);
        size_t total = strcmp(mode, "climb") == 0 ? (size_t)3277 << 20 : (size_t)16 << 20;
        size_t block = strcmp(mode, "climb") == 0 ? (size_t)64 << 20 : (size_t)1 << 20;
        for (size_t done = 0; done < total; done += block) {
            char *p = malloc(block);
            if (p == NULL) return 2;
            p[0] = 1; /* touch one page: the budget counts what was asked for */
        }
        print_levels();
        printf("limit %zu footprint_ok %d\n", membudget_limit(), membudget_footprint() > 0);
        return 0;
    }
    if (strcmp(mode, "fork") == 0) {
        for (int i = 0; i < 54; i++) memset(malloc(1 << 20), 1, 1 << 20);
        struct membudget_stats st;
        membudget_stats(&st, sizeof st);
        printf("parent policy %d\n", (int)st.policy);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            membudget_stats(&st, sizeof st);
            printf("child policy %d\n", (int)st.policy);
            return 0;
        }
        int status;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        cache[i] = malloc(1 << 20);
        memset(cache[i], 3, 1 << 20);
    }
    if (strcmp(mode, "survive") == 0) membudget_on_pressure(drop_cache, NULL);
    for (int i = 0; i < 50; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) return 2;
        memset(p, 5, 1 << 20);
    }
    print_levels();
    printf("survived\n");
    return 0;
}
