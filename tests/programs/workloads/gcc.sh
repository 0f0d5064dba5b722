#!/usr/bin/env bash
# gcc workload: generates a large C file (structs, switches, loops, inlinable helpers,
# a big initialized table) and compiles it with -O2. The compiler's trees, RTL and
# obstacks are allocated through malloc; the object file must not depend on the
# allocator, so its sha256 is the output.
# Usage: gcc.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: gcc.sh WORKDIR}
cd "$workdir"
export LC_ALL=C TMPDIR=$workdir
unset GCC_EXEC_PREFIX COMPILER_PATH LIBRARY_PATH CPATH C_INCLUDE_PATH

nfuncs=120
awk -v n="$nfuncs" 'BEGIN {
    print "/* generated: " n " functions */"
    print "#include <stddef.h>"
    print "#include <string.h>"
    print "struct rec { int a, b; long c; double d; char name[24]; struct rec *next; };"
    print "static inline int mix(int x, int y) { return (x * 31) ^ (y >> 3) ^ (x << 7); }"
    print "static inline double scale(double v, int k) { return v * (k + 1) / (k + 2.5); }"
    printf "const int table[%d] = {", n * 16
    for (i = 0; i < n * 16; i++) printf "%s%d", (i ? "," : ""), (i * 2654435761) % 65521
    print "};"
    for (f = 0; f < n; f++) {
        printf "long func%d(struct rec *r, int n, const char *s) {\n", f
        print "    long acc = 0; int i, j;"
        printf "    for (i = 0; i < n; i++) {\n"
        printf "        struct rec *p = r + (i %% 7);\n"
        printf "        acc += mix(p->a + %d, p->b - i) + table[(i * %d + %d) %% %d];\n", f, f % 13 + 1, f, n * 16
        printf "        p->d = scale(p->d, i + %d);\n", f % 5
        printf "        for (j = 0; j < (i & %d); j++) acc ^= (acc << 1) + j * %d;\n", f % 7 + 1, f + 3
        printf "        switch ((acc + i) & 15) {\n"
        for (c = 0; c < 12; c++)
            printf "        case %d: acc += %d * p->c - mix(j, %d); p->a ^= %d; break;\n", c, (f * 7 + c) % 97, c, c * f % 251
        printf "        default: acc -= (long)strlen(s) + p->b * %d; break;\n", f % 17
        print "        }"
        printf "        if (p->next && (acc & %d)) acc += p->next->a * %d;\n", (f % 6) + 1, f % 11 + 2
        print "    }"
        printf "    memcpy(r->name, s, (size_t)(n %% 23));\n"
        printf "    return acc + (long)(r->d * %d.0);\n", f % 29 + 1
        print "}"
    }
    print "long (*const funcs[])(struct rec *, int, const char *) = {"
    for (f = 0; f < n; f++) printf "    func%d,\n", f
    print "};"
}' > gen.c

gcc -O2 -c gen.c -o gen.o
echo "source $(wc -l < gen.c) lines, $(wc -c < gen.c) bytes, sha256 $(sha256sum < gen.c | cut -d' ' -f1)"
echo "object $(wc -c < gen.o) bytes, sha256 $(sha256sum < gen.o | cut -d' ' -f1)"
