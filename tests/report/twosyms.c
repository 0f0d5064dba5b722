/* A symbol inside another's range (tests/report/run.py, case symbols): the
 * function two_parts calls malloc twice, the second time after a label that
 * starts a sized function symbol of its own, inner_part, that ends before
 * two_parts does.  A return address before the label is in two_parts, one
 * after it in inner_part (the closer symbol).  The first call allocates more,
 * so that its site comes first in the report and is named first.
 *
 *   twosyms DIR   (with the library preloaded, MEMBUDGET_SAMPLE=1): writes
 *                 DIR/twosyms.json with membudget_dump() */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

__attribute__((noinline)) void two_parts(size_t n) {
    void *a = malloc(4 * n);
    __asm__ volatile(".globl inner_part\n\t.type inner_part, @function\ninner_part:" ::: "memory");
    void *b = malloc(n);
    __asm__ volatile("inner_part_end:\n\t.size inner_part, inner_part_end - inner_part" ::
                         : "memory");
    if (a != NULL) memset(a, 1, 4 * n);
    if (b != NULL) memset(b, 2, n);
    sink = a;
    sink = b;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: twosyms DIR\n");
        return 2;
    }
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    if (dump == NULL) {
        fprintf(stderr, "twosyms: run it with the library preloaded\n");
        return 2;
    }
    for (int i = 0; i < 16; i++) two_parts(16 << 10);
    char path[4096];
    snprintf(path, sizeof path, "%s/twosyms.json", argv[1]);
    if (dump(path) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}
