/* Shared pieces of the micro workloads: a seeded generator, self-checking block
 * stamps, and a loud failure path.  Every workload does a fixed amount of work and
 * prints a result that depends only on its seeds, never on addresses or timing. */
#ifndef MEMBUDGET_BENCH_MICRO_COMMON_H
#define MEMBUDGET_BENCH_MICRO_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: tiny, fast, and good enough to drive sizes and slot choices. */
typedef struct {
    uint64_t state;
} rng_t;

static inline uint64_t rng_next(rng_t *rng) {
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *rng, size_t lo, size_t hi) {
    return lo + (size_t)(rng_next(rng) % (uint64_t)(hi - lo + 1));
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void die(const char *what, size_t detail) __attribute__((noreturn, unused));
static void die(const char *what, size_t detail) {
    fprintf(stderr, "bench: %s (%zu)\n", what, detail);
    abort();
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die("malloc returned NULL", n);
    return p;
}

/* A stamp makes a block self-describing so that any thread can verify it: the
 * first word holds the tag, the last bytes a check derived from tag and size.
 * Blocks of fewer than 16 bytes carry the tag only. */
static inline void stamp_write(void *block, size_t size, uint64_t tag) {
    unsigned char *p = block;
    memcpy(p, &tag, sizeof tag);
    if (size >= 16) {
        uint64_t check = mix64(tag ^ size);
        memcpy(p + size - 8, &check, sizeof check);
    }
}

/* Returns the tag after checking the block; aborts if the block was corrupted. */
static inline uint64_t stamp_check(const void *block, size_t size) {
    const unsigned char *p = block;
    uint64_t tag, check;
    memcpy(&tag, p, sizeof tag);
    if (size >= 16) {
        memcpy(&check, p + size - 8, sizeof check);
        if (check != mix64(tag ^ size)) die("block content corrupted", size);
    }
    return tag;
}

#endif
