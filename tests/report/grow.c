/* A leak between two reports (tests/report/run.py, `report --diff`): writes
 * DIR/old.json with membudget_dump() (found with dlsym), then leaks 8 MiB at
 * one site, leak_between, while a steady site, keep_steady, holds the same
 * bytes in both reports and a third, freed_between, frees what it held; then
 * writes DIR/new.json. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (64 << 10)

static int (*dump)(const char *path);
static void *volatile sink;

__attribute__((noinline)) void *keep_steady(size_t n) { return malloc(n); }
__attribute__((noinline)) void *freed_between(size_t n) { return malloc(n); }
__attribute__((noinline)) void *leak_between(size_t n) { return malloc(n); }

static void dump_to(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (dump(path) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: grow DIR\n");
        return 2;
    }
    dump = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    if (dump == NULL) {
        fprintf(stderr, "grow: run it with the library preloaded\n");
        return 2;
    }
    static void *steady[32], *freed[32];
    for (int i = 0; i < 32; i++) {
        steady[i] = keep_steady(BLOCK);
        freed[i] = freed_between(BLOCK);
        memset(steady[i], 1, BLOCK);
        memset(freed[i], 2, BLOCK);
    }
    dump_to(argv[1], "old.json");
    for (int i = 0; i < 32; i++) free(freed[i]);
    for (int i = 0; i < 128; i++) {
        sink = leak_between(BLOCK);
        memset(sink, 3, BLOCK);
    }
    dump_to(argv[1], "new.json");
    return 0;
}
