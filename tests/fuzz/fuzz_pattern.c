/* The fill and check loops of fuzz_alloc.c, in a unit of their own that is
 * built without coverage instrumentation or sanitizers: they run over every
 * byte the fuzzer allocates and would otherwise dominate its time. */
#include "testutil.h"

#include <stddef.h>
#include <stdint.h>

enum { PAGE = 4096 };

void fill_block(unsigned char *p, size_t usable, uint64_t seed);
size_t check_block(const unsigned char *p, size_t usable, uint64_t seed, size_t keep);
size_t check_zero(const unsigned char *p, size_t n);

/* The pattern of a block: all of it up to 64 KiB; above, the first and last
 * 16 KiB whole and 64 bytes of every 4 KiB page between, so big blocks cost
 * little and still have every page written.  Each region has its own seed. */
enum { DENSE_MAX = 64 << 10, EDGE = 16 << 10, PROBE = 64 };
struct region {
    size_t off, len;
    uint64_t seed;
};
static int next_region(size_t usable, uint64_t seed, size_t *cursor, struct region *r) {
    size_t c = *cursor;
    if (usable <= DENSE_MAX) {
        if (c) return 0;
        *r = (struct region){0, usable, seed};
        *cursor = usable ? usable : 1;
        return 1;
    }
    if (c == SIZE_MAX) return 0;
    if (c == 0) {
        *r = (struct region){0, EDGE, seed};
        *cursor = EDGE;
        return 1;
    }
    if (c + PROBE <= usable - EDGE) {
        *r = (struct region){c, PROBE, seed ^ c};
        *cursor = c + PAGE;
        return 1;
    }
    *r = (struct region){usable - EDGE, EDGE, ~seed};
    *cursor = SIZE_MAX;
    return 1;
}

void fill_block(unsigned char *p, size_t usable, uint64_t seed) {
    struct region r;
    for (size_t c = 0; next_region(usable, seed, &c, &r);) tu_fill(p + r.off, r.len, r.seed);
}

/* The first byte within [0, keep) that differs from the pattern a block of
 * `usable` bytes was filled with, or SIZE_MAX. */
size_t check_block(const unsigned char *p, size_t usable, uint64_t seed, size_t keep) {
    struct region r;
    for (size_t c = 0; next_region(usable, seed, &c, &r);) {
        if (r.off >= keep) continue;
        size_t n = r.len < keep - r.off ? r.len : keep - r.off;
        size_t bad = tu_check(p + r.off, n, r.seed);
        if (bad != SIZE_MAX) return r.off + bad;
    }
    return SIZE_MAX;
}

size_t check_zero(const unsigned char *p, size_t n) { return tu_check_zero(p, n); }
