/* Helpers shared by the unit and threaded tests: a seeded PRNG, fill/check
 * patterns derived from a block's address and size, the MBTEST_SCALE knob that
 * slow sanitizer builds turn down, and the resident set size.  Header-only, like
 * harness.h, so each test stays one source file. */
#ifndef MEMBUDGET_TESTS_TESTUTIL_H
#define MEMBUDGET_TESTS_TESTUTIL_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define TU_UNUSED __attribute__((unused))
#define TU_KIB ((size_t)1 << 10)
#define TU_MIB ((size_t)1 << 20)

/* Comparisons whose message carries printf arguments.  harness.h's expect_zu_eq
 * and friends put the message's arguments before their own, so they take only a
 * plain message; these print both values, what was expected, and the context. */
#define TU_EXPECT_CMP(type, spec, op, a, b, fmt, ...)                                              \
    do {                                                                                           \
        type tu_a_ = (type)(a), tu_b_ = (type)(b);                                                 \
        if (!(tu_a_ op tu_b_))                                                                     \
            harness_fail(__FILE__, __LINE__,                                                       \
                         "%s is " spec ", expected " #op " %s = " spec ": " fmt, #a, tu_a_, #b,    \
                         tu_b_, ##__VA_ARGS__);                                                    \
    } while (0)
#define expect_zu_eq_f(a, b, ...) TU_EXPECT_CMP(size_t, "%zu", ==, a, b, __VA_ARGS__)
#define expect_zu_le_f(a, b, ...) TU_EXPECT_CMP(size_t, "%zu", <=, a, b, __VA_ARGS__)
#define expect_int_eq_f(a, b, ...) TU_EXPECT_CMP(long long, "%lld", ==, a, b, __VA_ARGS__)

/* splitmix64: tiny, fast and good enough to pick sizes and slots. */
typedef struct {
    uint64_t state;
} tu_rng;

static inline uint64_t tu_next(tu_rng *rng) {
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t tu_below(tu_rng *rng, uint64_t n) { return n ? tu_next(rng) % n : 0; }

/* Uniform in [lo, hi]. */
static inline size_t tu_between(tu_rng *rng, size_t lo, size_t hi) {
    return lo + (size_t)tu_below(rng, (uint64_t)(hi - lo) + 1);
}

static inline uint64_t tu_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* The pattern a block carries is a function of where it lives and how big it is,
 * so a block handed to the wrong owner, or two blocks that overlap, show up. */
static inline uint64_t tu_seed(const void *p, size_t size) {
    return tu_mix((uint64_t)(uintptr_t)p ^ ((uint64_t)size * 0x9E3779B97F4A7C15ull));
}

#define TU_STEP 0xD6E8FEB86659FD93ull

/* Word i of the pattern is seed + i * TU_STEP; the tail takes the low bytes of
 * the next word.  memcpy keeps it legal for any alignment and compiles to a move. */
static TU_UNUSED void tu_fill(void *p, size_t size, uint64_t seed) {
    unsigned char *b = (unsigned char *)p;
    size_t words = size / 8;
    uint64_t v = seed;
    for (size_t i = 0; i < words; i++, v += TU_STEP) memcpy(b + 8 * i, &v, 8);
    if (size % 8) memcpy(b + 8 * words, &v, size % 8);
}

/* Returns the offset of the first byte that differs from the pattern, or
 * SIZE_MAX when all `size` bytes match. */
static TU_UNUSED size_t tu_check(const void *p, size_t size, uint64_t seed) {
    const unsigned char *b = (const unsigned char *)p;
    size_t words = size / 8;
    uint64_t v = seed;
    for (size_t i = 0; i < words; i++, v += TU_STEP) {
        uint64_t got;
        memcpy(&got, b + 8 * i, 8);
        if (got != v) {
            for (size_t k = 0; k < 8; k++)
                if (b[8 * i + k] != (unsigned char)(v >> (8 * k))) return 8 * i + k;
        }
    }
    for (size_t k = 0; k < size % 8; k++)
        if (b[8 * words + k] != (unsigned char)(v >> (8 * k))) return 8 * words + k;
    return SIZE_MAX;
}

/* Offset of the first non-zero byte, or SIZE_MAX when all are zero. */
static TU_UNUSED size_t tu_check_zero(const void *p, size_t size) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w) break;
    }
    for (; i < size; i++)
        if (b[i]) return i;
    return SIZE_MAX;
}

/* Hides a value from the optimizer, so a call whose result is only compared
 * with NULL is still made, and sizes that overflow are not folded or warned on. */
static inline void *tu_opaque_ptr(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}
static inline size_t tu_opaque_size(size_t n) {
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* MBTEST_SCALE multiplies the amount of work (default 1); sanitizer runs set it
 * below 1.  The result never drops under `min`. */
static TU_UNUSED double tu_scale(void) {
    const char *s = getenv("MBTEST_SCALE");
    if (!s || !*s) return 1.0;
    double v = strtod(s, NULL);
    return (v > 0 && v <= 1000) ? v : 1.0;
}
static TU_UNUSED size_t tu_scaled(size_t n, size_t min) {
    double v = (double)n * tu_scale();
    return v < (double)min ? min : (size_t)v;
}

/* Resident set size in bytes (from /proc/self/statm, read without stdio), or 0. */
static TU_UNUSED size_t tu_rss_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *s = buf;
    strtoull(s, &s, 10); /* total program size: skipped */
    unsigned long long resident = strtoull(s, NULL, 10);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Threaded tests count content errors and keep the first one's description;
 * the test reports tu_first_error when tu_errors is not zero. */
static atomic_ulong tu_errors __attribute__((unused));
static pthread_mutex_t tu_first_error_lock __attribute__((unused)) = PTHREAD_MUTEX_INITIALIZER;
static char tu_first_error[256] __attribute__((unused));

static inline void tu_record_error(const char *what, const void *p, size_t size, size_t at) {
    if (atomic_fetch_add(&tu_errors, 1) == 0) {
        pthread_mutex_lock(&tu_first_error_lock);
        snprintf(tu_first_error, sizeof tu_first_error, "%s: block %p of %zu bytes, byte %zu",
                 what, p, size, at);
        pthread_mutex_unlock(&tu_first_error_lock);
    }
}

#endif
