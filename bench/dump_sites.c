/* dump_sites: the time to write a report with many distinct allocation sites
 * (bench/sample_bench.py).  Run with the library preloaded and
 * MEMBUDGET_SAMPLE=1, so that every allocation is sampled: SITES allocations,
 * each reached through its own path of calls (a binary choice of two callers
 * at each of DEPTH levels), make SITES distinct stacks.  Then the report is
 * written with membudget_dump() REPEAT times and each time is printed:
 *
 *   dump_sites DIR [SITES [REPEAT]]
 *   -> "sites 10000 bytes 4321234 ms 12.345" per dump; the last report stays
 *      in DIR as dump-(REPEAT-1).json */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 14

static void *descend(unsigned path, int depth);
static volatile unsigned long took_a, took_b;

/* Two callers with different bodies (so they are never merged into one): the
 * return address in each is a different frame. */
__attribute__((noinline)) static void *via_a(unsigned path, int depth) {
    void *p = descend(path, depth);
    took_a++;
    return p;
}

__attribute__((noinline)) static void *via_b(unsigned path, int depth) {
    void *p = descend(path, depth);
    took_b += 2;
    return p;
}

__attribute__((noinline)) static void *descend(unsigned path, int depth) {
    if (depth == 0) return malloc(64);
    return (path & 1) ? via_a(path >> 1, depth - 1) : via_b(path >> 1, depth - 1);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dump_sites DIR [SITES [REPEAT]]\n");
        return 2;
    }
    unsigned sites = argc > 2 ? (unsigned)atoi(argv[2]) : 10000;
    int repeat = argc > 3 ? atoi(argv[3]) : 5;
    if (sites == 0 || sites > (1u << DEPTH)) {
        fprintf(stderr, "dump_sites: SITES must be 1..%u\n", 1u << DEPTH);
        return 2;
    }
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    if (dump == NULL) {
        fprintf(stderr, "dump_sites: run it with libmembudget.so preloaded\n");
        return 2;
    }
    for (unsigned i = 0; i < sites; i++)
        if (descend(i, DEPTH) == NULL) return 1;
    for (int r = 0; r < repeat; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/dump-%d.json", argv[1], r);
        unlink(path);
        double start = now_ms();
        if (dump(path) != 0) {
            perror(path);
            return 1;
        }
        double ms = now_ms() - start;
        struct stat st;
        stat(path, &st);
        printf("sites %u bytes %lld ms %.3f\n", sites, (long long)st.st_size, ms);
        if (r + 1 < repeat) unlink(path); /* the last one stays, to be looked at */
    }
    return 0;
}
