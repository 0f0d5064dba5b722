/* Sampled blocks leave the live set when they are freed or moved
 * (tests/report/run.py).  Run with MEMBUDGET_SAMPLE=1, so that every allocation
 * is sampled; writes three reports with membudget_dump():
 *   DIR/1.json  site_a's small block and site_b's large span are live
 *   DIR/2.json  realloc_c resized site_a's block in place (its sample is
 *               replaced) and realloc_d moved site_b's span (its sample ends);
 *               site_e's block, shrunk in place 100 times by shrink_e, is one
 *               live sample of its last size at shrink_e
 * (the sizes stay in one size class of the native allocator and of jemalloc:
 * both resize them in place)
 *   DIR/3.json  all freed: none of them is live
 * and prints "in-place yes|no" for the small realloc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int (*dump)(const char *path);
static const char *dir;

__attribute__((noinline)) void *site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) void *site_b(size_t n) { return malloc(n); }
__attribute__((noinline)) void *realloc_c(void *p, size_t n) { return realloc(p, n); }
__attribute__((noinline)) void *realloc_d(void *p, size_t n) { return realloc(p, n); }
__attribute__((noinline)) void *site_e(size_t n) { return malloc(n); }
__attribute__((noinline)) void *shrink_e(void *p, size_t n) { return realloc(p, n); }

static void dump_to(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (dump(path) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: resample DIR\n");
        return 2;
    }
    dir = argv[1];
    dump = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    if (dump == NULL) {
        fprintf(stderr, "resample: run it with the library preloaded\n");
        return 2;
    }
    char *small = site_a(1000);
    char *large = site_b(3 << 20);
    memset(small, 1, 1000);
    memset(large, 2, 3 << 20);
    dump_to("1.json");
    char *small2 = realloc_c(small, 990);
    char *large2 = realloc_d(large, 64 << 20);
    char *shrinking = site_e(1000), *first = shrinking;
    int moved = 0;
    for (size_t n = 999; n >= 900; n--) {
        shrinking = shrink_e(shrinking, n);
        moved |= shrinking != first;
    }
    dump_to("2.json");
    printf("in-place %s\n", small2 == small && !moved ? "yes" : "no");
    free(small2);
    free(large2);
    free(shrinking);
    dump_to("3.json");
    return 0;
}
