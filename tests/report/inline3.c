/* Calls inlined in one another (tests/report/run.py, case inline3): inner is
 * inlined into middle, middle into outer, outer into the function chain, all
 * three forced (always_inline) in a build with -O2 -g.  The return address
 * of inner's call to malloc lies in all three inlined calls at once: the
 * report lists each of them as a frame of its own, innermost first, then
 * chain, with the same names and lines as `addr2line -i -f` for the address.
 * Each level stores what it got, so that no call is a tail call.
 *
 *   inline3 DIR   (with the library preloaded, MEMBUDGET_SAMPLE=1): writes
 *                 DIR/inline3.json with membudget_dump() */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;
static volatile size_t seen;

static inline __attribute__((always_inline)) void *inner(size_t n) {
    void *p = malloc(n);
    sink = p;
    return p;
}

static inline __attribute__((always_inline)) void *middle(size_t n) {
    void *p = inner(n + 16);
    seen = seen + 1;
    return p;
}

static inline __attribute__((always_inline)) void *outer(size_t n) {
    void *p = middle(2 * n);
    seen = seen + 2;
    return p;
}

__attribute__((noinline)) void chain(size_t n) {
    void *p = outer(n);
    if (p != NULL) memset(p, 3, n);
    seen = seen + 3;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: inline3 DIR\n");
        return 2;
    }
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    if (dump == NULL) {
        fprintf(stderr, "inline3: run it with the library preloaded\n");
        return 2;
    }
    for (int i = 0; i < 16; i++) chain(16 << 10);
    char path[4096];
    snprintf(path, sizeof path, "%s/inline3.json", argv[1]);
    if (dump(path) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}
