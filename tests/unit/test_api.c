/* The malloc family through its ABI: size classes, alignment, realloc, calloc,
 * errno on every failure, the budget counter, foreign pointers and mmap
 * accounting.  One source, two builds (tests/mbtest.h): preloaded into a plain
 * binary, or linked with the allocator under sanitizers.  Checks that only
 * membudget promises (beyond glibc's contract) run when its API is present, so
 * the same binary also passes on glibc, jemalloc and mimalloc. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MBTEST_LINKED
#include <dlfcn.h>
#endif

/* True when the allocator under test is membudget (preloaded or linked). */
static int testing_membudget(void) { return MBTEST_HAVE_API; }
/* ... on its jemalloc backend (jemalloc's classes: four per doubling). */
static bool testing_backend_jemalloc(void) {
    const char *b = getenv("MEMBUDGET_BACKEND");
    return b != NULL && strcmp(b, "jemalloc") == 0;
}

static void skip(const char *name, const char *why) { fprintf(stderr, "skip %s: %s\n", name, why); }
#define RUN_IF(cond, fn, why)                                                                      \
    do {                                                                                           \
        if (cond)                                                                                  \
            RUN(fn);                                                                               \
        else                                                                                       \
            skip(#fn, why);                                                                        \
    } while (0)

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static int is_aligned(const void *p, size_t alignment) {
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* ---- size classes --------------------------------------------------------- */

/* Every size 0..64 KiB: the block holds the request, the class wastes less than
 * 16 bytes or at most a quarter of the request (membudget, above 1 KiB: an
 * eighth), and every usable byte can be written.  membudget's smallest block
 * is 16 bytes; glibc's is 24, jemalloc's and mimalloc's 8, hence the allowance
 * for tiny requests on other allocators. */
static void test_size_classes_small(void) {
    size_t min_block = testing_membudget() ? 16 : 32;
    bool eighths = testing_membudget() && !testing_backend_jemalloc();
    for (size_t size = 0; size <= 64 * TU_KIB; size++) {
        unsigned char *p = T_MALLOC(size);
        if (!p) {
            expect_ptr_not_null(p, "malloc(%zu) returned NULL", size);
            return;
        }
        size_t usable = T_USABLE_SIZE(p);
        if (usable < size) {
            expect_zu_le_f(size, usable, "malloc_usable_size(malloc(%zu)) is below the request",
                           size);
            T_FREE(p);
            return;
        }
        size_t waste = usable - size;
        if (eighths && size > 1024 && waste > size / 8) {
            expect_zu_le_f(waste, size / 8, "malloc(%zu) has usable size %zu: waste over 12.5%%",
                           size, usable);
            T_FREE(p);
            return;
        }
        if (!(waste < 16 || waste <= size / 4 || usable <= min_block)) {
            expect_true(waste < 16 || waste <= size / 4,
                        "malloc(%zu) has usable size %zu: waste %zu is neither < 16 nor <= 25%%",
                        size, usable, waste);
            T_FREE(p);
            return;
        }
        memset(p, (int)(size & 0xff) | 1, usable);
        if (usable && (p[0] != ((size & 0xff) | 1) || p[usable - 1] != ((size & 0xff) | 1))) {
            expect_true(0, "bytes written to malloc(%zu) up to its usable size %zu did not stick",
                        size, usable);
            T_FREE(p);
            return;
        }
        T_FREE(p);
    }
}

/* A request just above a power of two (a 2^k buffer with a header, or a layer
 * over malloc that prefixes its own 8 bytes, as sqlite does) takes a block of
 * 2^k + 16 bytes on the native backend, from 256 bytes up to the largest
 * class: not the next eighth (1152 for 1032 bytes), which wastes ~11%. */
static void test_size_classes_headers(void) {
    if (!testing_membudget() || testing_backend_jemalloc()) return;
    for (size_t pow = 256; pow <= 128 * TU_KIB; pow *= 2) {
        static const size_t extra[] = {1, 8, 16};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            size_t size = pow + extra[i];
            void *p = T_MALLOC(size);
            expect_ptr_not_null(p, "malloc(%zu) returned NULL", size);
            if (!p) return;
            expect_zu_eq_f(T_USABLE_SIZE(p), pow + 16, "malloc(%zu): a block of 2^k + 16 bytes", size);
            T_FREE(p);
        }
        /* One byte more takes the next class up, not the header class. */
        void *q = T_MALLOC(pow + 17);
        expect_ptr_not_null(q, "malloc(%zu) returned NULL", pow + 17);
        if (!q) return;
        expect_true(T_USABLE_SIZE(q) > pow + 16, "malloc(%zu) is not in the header class", pow + 17);
        T_FREE(q);
    }
}

/* Large requests: a page-granular span or a class within 25%. */
static void test_size_classes_large(void) {
    static const size_t sizes[] = {
        64 * TU_KIB + 1,  100000,      256 * TU_KIB,    TU_MIB - 1,
        TU_MIB,           TU_MIB + 1,  3 * TU_MIB,      5 * TU_MIB + 17,
        8 * TU_MIB + 123, 32 * TU_MIB, 64 * TU_MIB - 1,
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        unsigned char *p = T_MALLOC(size);
        expect_ptr_not_null(p, "malloc(%zu)", size);
        if (!p) continue;
        size_t usable = T_USABLE_SIZE(p);
        expect_zu_le_f(size, usable, "usable size of malloc(%zu)", size);
        if (usable >= size) {
            size_t waste = usable - size;
            expect_true(waste < page_size() || waste <= size / 4,
                        "malloc(%zu) has usable size %zu: waste %zu over a page and over 25%%",
                        size, usable, waste);
        }
        expect_true(is_aligned(p, 16), "malloc(%zu) = %p is not 16-byte aligned", size, (void *)p);
        /* Touch the first, last and one byte per page: enough to prove it is
         * mapped writable without paying for the whole range. */
        for (size_t off = 0; off < usable; off += page_size()) p[off] = (unsigned char)off;
        if (usable) p[usable - 1] = 0x7e;
        expect_int_eq_f(p[usable - 1], 0x7e, "last usable byte of malloc(%zu)", size);
        T_FREE(p);
    }
}

/* ---- alignment ------------------------------------------------------------ */

enum align_fn { USE_POSIX_MEMALIGN, USE_ALIGNED_ALLOC, USE_MEMALIGN };
static const char *const align_fn_name[] = {"posix_memalign", "aligned_alloc", "memalign"};

static void *aligned_by(enum align_fn fn, size_t alignment, size_t size) {
    void *p = NULL;
    switch (fn) {
    case USE_POSIX_MEMALIGN:
        if (T_POSIX_MEMALIGN(&p, alignment, size) != 0) p = NULL;
        break;
    case USE_ALIGNED_ALLOC:
        p = T_ALIGNED_ALLOC(alignment, size);
        break;
    case USE_MEMALIGN:
        p = T_MEMALIGN(alignment, size);
        break;
    }
    return p;
}

/* Every power of two 8..2 MiB, through all three calls, with several sizes live
 * at once and each written to its full size (so overlapping blocks show up). */
static void test_alignment_powers_of_two(void) {
    for (size_t alignment = 8; alignment <= 2 * TU_MIB; alignment <<= 1) {
        size_t sizes[] = {1,
                          24,
                          alignment / 2,
                          alignment - 1,
                          alignment,
                          alignment + 1,
                          3 * alignment / 2,
                          2 * alignment + 16,
                          5000};
        enum { NSIZES = sizeof sizes / sizeof sizes[0] };
        for (int fn = USE_POSIX_MEMALIGN; fn <= USE_MEMALIGN; fn++) {
            void *blocks[NSIZES] = {0};
            for (size_t i = 0; i < NSIZES; i++) {
                size_t size = sizes[i] ? sizes[i] : 1;
                void *p = aligned_by((enum align_fn)fn, alignment, size);
                blocks[i] = p;
                expect_ptr_not_null(p, "%s(alignment %zu, size %zu)", align_fn_name[fn], alignment,
                                    size);
                if (!p) continue;
                expect_true(is_aligned(p, alignment), "%s(alignment %zu, size %zu) = %p",
                            align_fn_name[fn], alignment, size, p);
                expect_zu_le_f(size, T_USABLE_SIZE(p), "usable size of %s(alignment %zu, size %zu)",
                               align_fn_name[fn], alignment, size);
                tu_fill(p, size, tu_seed(p, size));
            }
            for (size_t i = 0; i < NSIZES; i++) {
                size_t size = sizes[i] ? sizes[i] : 1;
                if (!blocks[i]) continue;
                size_t bad = tu_check(blocks[i], size, tu_seed(blocks[i], size));
                expect_true(bad == SIZE_MAX,
                            "%s(alignment %zu, size %zu): byte %zu changed while other aligned "
                            "blocks were written",
                            align_fn_name[fn], alignment, size, bad);
                T_FREE(blocks[i]);
            }
        }
    }
}

/* Alignments below a pointer's size are valid for aligned_alloc and memalign
 * (not for posix_memalign) and still give malloc's own alignment. */
static void test_alignment_small(void) {
    for (size_t alignment = 1; alignment < sizeof(void *); alignment <<= 1) {
        for (int fn = USE_ALIGNED_ALLOC; fn <= USE_MEMALIGN; fn++) {
            void *p = aligned_by((enum align_fn)fn, alignment, 40);
            expect_ptr_not_null(p, "%s(alignment %zu, 40)", align_fn_name[fn], alignment);
            if (!p) continue;
            expect_true(is_aligned(p, 8), "%s(alignment %zu, 40) = %p is not 8-byte aligned",
                        align_fn_name[fn], alignment, p);
            memset(p, 0x11, 40);
            T_FREE(p);
        }
    }
}

/* posix_memalign: EINVAL unless the alignment is a power of two and a multiple
 * of sizeof(void *); the out pointer is left alone (or set to NULL). */
static void test_posix_memalign_einval(void) {
    static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, 3 * TU_MIB, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] && bad[i] % sizeof(void *) == 0 && (bad[i] & (bad[i] - 1)) == 0) continue;
        void *sentinel = (void *)(uintptr_t)0x5151;
        void *out = sentinel;
        int rc = T_POSIX_MEMALIGN(&out, tu_opaque_size(bad[i]), 64);
        expect_int_eq_f(rc, EINVAL, "posix_memalign(alignment %zu)", bad[i]);
        expect_true(out == sentinel || out == NULL,
                    "posix_memalign(alignment %zu) failed but stored %p", bad[i], out);
        if (rc == 0 && out != sentinel) T_FREE(out);
    }
}

/* An alignment that is not a power of two.  aligned_alloc: NULL with errno
 * EINVAL (C17, glibc >= 2.38; membudget must refuse, glibc 2.36 still rounds
 * up).  memalign: glibc rounds the alignment up to the next power of two, and
 * programs written against it get an aligned block, so either that or
 * NULL/EINVAL is accepted, from any allocator. */
static void test_non_power_of_two_alignment(void) {
    static const size_t bad[] = {3, 12, 24, 48, 100, 3 * 4096, 3 * TU_MIB};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int fn = USE_ALIGNED_ALLOC; fn <= USE_MEMALIGN; fn++) {
            size_t alignment = tu_opaque_size(bad[i]), size = 2 * alignment;
            errno = 0;
            void *p = fn == USE_ALIGNED_ALLOC ? T_ALIGNED_ALLOC(alignment, size)
                                              : T_MEMALIGN(alignment, size);
            int err = errno;
            int must_refuse = fn == USE_ALIGNED_ALLOC && testing_membudget();
            if (must_refuse || !p) {
                expect_true(p == NULL, "%s(alignment %zu) must fail", align_fn_name[fn], alignment);
                expect_int_eq_f(err, EINVAL, "errno after %s(alignment %zu)", align_fn_name[fn],
                                alignment);
            } else {
                size_t pow2 = 1;
                while (pow2 < alignment) pow2 <<= 1;
                expect_true(
                    is_aligned(p, pow2),
                    "%s(alignment %zu) = %p: a block, so aligned to the next power of two %zu",
                    align_fn_name[fn], alignment, p, pow2);
                expect_zu_le_f(size, T_USABLE_SIZE(p), "usable size of %s(alignment %zu, %zu)",
                               align_fn_name[fn], alignment, size);
                memset(p, 0x19, size);
            }
            if (p) T_FREE(p);
        }
    }
}

/* ---- realloc -------------------------------------------------------------- */

/* Moves the block from `from` to `to` bytes and checks the common prefix kept
 * the pattern written before the move. */
static void realloc_step(size_t from, size_t to) {
    unsigned char *p = T_MALLOC(from);
    expect_ptr_not_null(p, "malloc(%zu)", from);
    if (!p) return;
    uint64_t seed = tu_mix(from * 31 + to);
    tu_fill(p, from, seed);
    unsigned char *q = T_REALLOC(p, to);
    expect_ptr_not_null(q, "realloc(malloc(%zu), %zu)", from, to);
    if (!q) {
        T_FREE(p);
        return;
    }
    size_t keep = from < to ? from : to;
    size_t bad = tu_check(q, keep, seed);
    expect_true(bad == SIZE_MAX, "realloc %zu -> %zu lost byte %zu of %zu", from, to, bad, keep);
    expect_zu_le_f(to, T_USABLE_SIZE(q), "usable size after realloc %zu -> %zu", from, to);
    memset(q, 0x3c, to);
    T_FREE(q);
}

static void test_realloc_keeps_content(void) {
    static const size_t moves[][2] = {
        {16, 100}, /* small -> small */
        {100, 24},
        {4000, 4001},
        {4001, 4000},
        {64 * TU_KIB, 65 * TU_KIB},
        {100, TU_MIB},            /* small -> large */
        {TU_MIB, 5 * TU_MIB},     /* large -> large, grow */
        {5 * TU_MIB, 2 * TU_MIB}, /* large -> large, shrink */
        {2 * TU_MIB, 50},         /* large -> small */
        {300 * TU_KIB, 40 * TU_KIB},
        {1, 64 * TU_MIB},
    };
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        realloc_step(moves[i][0], moves[i][1]);
}

/* One block walked up to 8 MiB and back down in random steps; every step keeps
 * the common prefix, and the new tail is written before the next step. */
static void test_realloc_many_steps(void) {
    tu_rng rng = {42};
    size_t size = 1;
    unsigned char *p = T_MALLOC(size);
    expect_ptr_not_null(p, "malloc(1)");
    if (!p) return;
    const uint64_t seed = 0xabcdef;
    tu_fill(p, size, seed);
    for (int step = 0; step < 400; step++) {
        size_t next;
        if (step < 200)
            next = size + tu_between(&rng, 1, size < 8 * TU_MIB / 2 ? size : 1);
        else
            next = size - tu_below(&rng, size / 2 + 1);
        if (next > 8 * TU_MIB) next = 8 * TU_MIB;
        if (next == 0) next = 1;
        unsigned char *q = T_REALLOC(p, next);
        if (!q) {
            expect_ptr_not_null(q, "realloc(%p, %zu) at step %d", (void *)p, next, step);
            T_FREE(p);
            return;
        }
        size_t keep = size < next ? size : next;
        size_t bad = tu_check(q, keep, seed);
        if (bad != SIZE_MAX) {
            expect_true(bad == SIZE_MAX, "step %d: realloc %zu -> %zu lost byte %zu", step, size,
                        next, bad);
            T_FREE(q);
            return;
        }
        /* The whole block carries one pattern, so rewrite it at its new size. */
        tu_fill(q, next, seed);
        p = q;
        size = next;
    }
    T_FREE(p);
}

/* Same size keeps the content; growing into the block's own slack (up to what
 * malloc_usable_size reported) does not move it. */
static void test_realloc_in_place(void) {
    static const size_t sizes[] = {1, 100, 1000, 10000, 100000, TU_MIB, 5 * TU_MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        unsigned char *p = T_MALLOC(size);
        expect_ptr_not_null(p, "malloc(%zu)", size);
        if (!p) continue;
        tu_fill(p, size, 7);
        unsigned char *q = T_REALLOC(p, size);
        expect_ptr_not_null(q, "realloc(p, same size %zu)", size);
        if (!q) {
            T_FREE(p);
            continue;
        }
        expect_true(tu_check(q, size, 7) == SIZE_MAX, "realloc(p, same size %zu) kept the content",
                    size);
        size_t usable = T_USABLE_SIZE(q);
        tu_fill(q, usable, 8);
        p = T_REALLOC(q, usable);
        expect_true(p == q, "realloc(p, its usable size %zu) moved the block (%p -> %p)", usable,
                    (void *)q, (void *)p);
        if (!p) {
            T_FREE(q);
            continue;
        }
        size_t bad = tu_check(p, usable, 8);
        expect_true(bad == SIZE_MAX, "realloc into the slack of %zu bytes changed byte %zu", usable,
                    bad);
        T_FREE(p);
    }
}

/* realloc(p, 0) frees p and returns NULL (glibc's behaviour).  That it really
 * frees shows in the resident set: 1 GiB of touched blocks would stay otherwise.
 * (jemalloc and mimalloc return a fresh minimal block instead.) */
static void test_realloc_zero_frees(void) {
    size_t rss_before = tu_rss_bytes();
    size_t non_null = 0;
    for (int i = 0; i < 4096; i++) {
        size_t size = 256 * TU_KIB;
        unsigned char *p = T_MALLOC(size);
        if (!p) {
            expect_ptr_not_null(p, "malloc(%zu) at round %d", size, i);
            return;
        }
        memset(p, 0x66, size);
        void *r = T_REALLOC(p, tu_opaque_size(0));
        if (r) {
            non_null++;
            T_FREE(r);
        }
    }
    if (testing_membudget())
        expect_zu_eq_f(non_null, 0, "realloc(p, 0) must free p and return NULL");
    size_t rss_after = tu_rss_bytes();
    expect_zu_le_f(rss_after, rss_before + 256 * TU_MIB,
                   "RSS grew by %zu MiB over 4096 realloc(p, 0) of 256 KiB blocks",
                   (rss_after - rss_before) >> 20);
}

static void test_realloc_null_is_malloc(void) {
    static const size_t sizes[] = {0, 1, 100, 5000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = T_REALLOC(NULL, sizes[i]);
        expect_ptr_not_null(p, "realloc(NULL, %zu)", sizes[i]);
        if (!p) continue;
        expect_true(is_aligned(p, 16) || sizes[i] < 16, "realloc(NULL, %zu) = %p", sizes[i],
                    (void *)p);
        expect_zu_le_f(sizes[i], T_USABLE_SIZE(p), "usable size of realloc(NULL, %zu)", sizes[i]);
        memset(p, 0x42, sizes[i]);
        T_FREE(p);
    }
}

/* A failed realloc leaves the old block allocated and unchanged. */
static void test_realloc_huge_fails(void) {
    static const size_t olds[] = {1000, 3 * TU_MIB};
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
        unsigned char *p = T_MALLOC(olds[i]);
        expect_ptr_not_null(p, "malloc(%zu)", olds[i]);
        if (!p) continue;
        tu_fill(p, olds[i], 99);
        for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
            errno = 0;
            void *q = T_REALLOC(p, tu_opaque_size(huge[k]));
            int err = errno;
            expect_ptr_null(q, "realloc(malloc(%zu), %zu) must fail", olds[i], huge[k]);
            expect_int_eq_f(err, ENOMEM, "errno after realloc(p, %zu)", huge[k]);
            if (q) {
                T_FREE(q);
                p = NULL;
                break;
            }
            size_t bad = tu_check(p, olds[i], 99);
            expect_true(bad == SIZE_MAX, "failed realloc(p, %zu) changed byte %zu of the old block",
                        huge[k], bad);
        }
        if (p) {
            unsigned char *q = T_REALLOC(p, olds[i] * 2);
            expect_ptr_not_null(q, "the block is still usable after a failed realloc");
            if (q) {
                expect_true(tu_check(q, olds[i], 99) == SIZE_MAX,
                            "content after failed then successful realloc");
                T_FREE(q);
            } else {
                T_FREE(p);
            }
        }
    }
}

/* ---- calloc --------------------------------------------------------------- */

/* Dirty blocks, free them, and calloc the same sizes many times: reused memory
 * (small pages, medium pages, the large-span cache) must come back zeroed. */
static void test_calloc_zeroes_reused_memory(void) {
    static const size_t sizes[] = {1,     16,          24,     100,    1000,          4096,
                                   10000, 64 * TU_KIB, 100000, TU_MIB, TU_MIB + 4096, 4 * TU_MIB};
    enum { BLOCKS = 8, ROUNDS = 12 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        for (int round = 0; round < ROUNDS; round++) {
            void *blocks[BLOCKS];
            for (int b = 0; b < BLOCKS; b++) {
                blocks[b] = T_MALLOC(size);
                if (blocks[b]) memset(blocks[b], 0xA5, T_USABLE_SIZE(blocks[b]));
            }
            for (int b = 0; b < BLOCKS; b++) T_FREE(blocks[b]);
            for (int b = 0; b < BLOCKS; b++) {
                /* Split the request differently each time: count * size. */
                size_t count = (b & 1) ? size : 1, each = (b & 1) ? 1 : size;
                unsigned char *p = T_CALLOC(count, each);
                blocks[b] = p;
                if (!p) {
                    expect_ptr_not_null(p, "calloc(%zu, %zu)", count, each);
                    continue;
                }
                size_t bad = tu_check_zero(p, size);
                if (bad != SIZE_MAX) {
                    expect_true(bad == SIZE_MAX,
                                "calloc(%zu, %zu) round %d block %d: byte %zu is 0x%02x, not 0",
                                count, each, round, b, bad, p[bad]);
                    round = ROUNDS;
                }
            }
            for (int b = 0; b < BLOCKS; b++) {
                if (blocks[b]) memset(blocks[b], 0x5A, size);
                T_FREE(blocks[b]);
            }
        }
    }
}

static void test_calloc_overflow(void) {
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2},
        {2, SIZE_MAX / 2 + 1},
        {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 31}, /* fits size_t, exceeds PTRDIFF_MAX */
        {65537, SIZE_MAX / 65536},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        void *p = T_CALLOC(tu_opaque_size(pairs[i][0]), tu_opaque_size(pairs[i][1]));
        int err = errno;
        expect_ptr_null(p, "calloc(%zu, %zu) must fail", pairs[i][0], pairs[i][1]);
        expect_int_eq_f(err, ENOMEM, "errno after calloc(%zu, %zu)", pairs[i][0], pairs[i][1]);
        if (p) T_FREE(p);
    }
    /* A zero count or size is not an overflow. */
    void *a = T_CALLOC(0, 100), *b = T_CALLOC(100, 0), *c = T_CALLOC(0, tu_opaque_size(SIZE_MAX));
    expect_ptr_not_null(a, "calloc(0, 100)");
    expect_ptr_not_null(b, "calloc(100, 0)");
    expect_ptr_not_null(c, "calloc(0, SIZE_MAX)");
    T_FREE(a);
    T_FREE(b);
    T_FREE(c);
}

/* ---- malloc(0), huge requests, reallocarray, NULL ------------------------- */

static int compare_ptrs(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void test_malloc_zero_unique(void) {
    enum { N = 2000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = T_MALLOC(tu_opaque_size(0));
        if (!blocks[i]) {
            expect_ptr_not_null(blocks[i], "malloc(0) number %d", i);
            for (int k = 0; k < i; k++) T_FREE(blocks[k]);
            return;
        }
        /* Whatever it reports as usable is writable. */
        memset(blocks[i], 0x77, T_USABLE_SIZE(blocks[i]));
    }
    void *sorted[N];
    memcpy(sorted, blocks, sizeof sorted);
    qsort(sorted, N, sizeof sorted[0], compare_ptrs);
    size_t duplicates = 0;
    for (int i = 1; i < N; i++) duplicates += sorted[i] == sorted[i - 1];
    expect_zu_eq_f(duplicates, 0, "malloc(0) returned the same pointer twice while both were live");
    for (int i = 0; i < N; i++) T_FREE(blocks[i]);
}

static const size_t huge_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 4096,
    SIZE_MAX - 2 * TU_MIB,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX + 64 * TU_MIB,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

/* Sizes near SIZE_MAX wrap when rounded up to a class, a page or an alignment;
 * every entry point must say ENOMEM instead. */
static void test_huge_requests_fail(void) {
    for (size_t i = 0; i < NHUGE; i++) {
        size_t size = tu_opaque_size(huge_sizes[i]);
        void *p;
        errno = 0;
        p = T_MALLOC(size);
        expect_ptr_null(p, "malloc(%zu)", size);
        expect_int_eq_f(errno, ENOMEM, "errno after malloc(%zu)", size);
        if (p) T_FREE(p);

        errno = 0;
        p = T_VALLOC(size);
        expect_ptr_null(p, "valloc(%zu)", size);
        expect_int_eq_f(errno, ENOMEM, "errno after valloc(%zu)", size);
        if (p) T_FREE(p);

        errno = 0;
        p = T_PVALLOC(size);
        expect_ptr_null(p, "pvalloc(%zu)", size);
        expect_int_eq_f(errno, ENOMEM, "errno after pvalloc(%zu)", size);
        if (p) T_FREE(p);

        errno = 0;
        p = T_ALIGNED_ALLOC(4096, size);
        expect_ptr_null(p, "aligned_alloc(4096, %zu)", size);
        expect_int_eq_f(errno, ENOMEM, "errno after aligned_alloc(4096, %zu)", size);
        if (p) T_FREE(p);

        errno = 0;
        p = T_MEMALIGN(TU_MIB, size);
        expect_ptr_null(p, "memalign(1 MiB, %zu)", size);
        expect_int_eq_f(errno, ENOMEM, "errno after memalign(1 MiB, %zu)", size);
        if (p) T_FREE(p);
    }
}

static void test_posix_memalign_huge(void) {
    static const size_t alignments[] = {16, 64, 4096, 2 * TU_MIB};
    for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++) {
        for (size_t i = 0; i < NHUGE; i++) {
            void *sentinel = (void *)(uintptr_t)0x5252, *out = sentinel;
            int rc = T_POSIX_MEMALIGN(&out, alignments[a], tu_opaque_size(huge_sizes[i]));
            expect_int_eq_f(rc, ENOMEM, "posix_memalign(alignment %zu, %zu)", alignments[a],
                            huge_sizes[i]);
            expect_true(out == sentinel || out == NULL,
                        "posix_memalign(alignment %zu, %zu) failed but stored %p", alignments[a],
                        huge_sizes[i], out);
            if (rc == 0) T_FREE(out);
        }
    }
    /* An alignment so large that no mapping can honour it. */
    static const size_t vast[] = {(size_t)1 << 62, (size_t)1 << 63};
    for (size_t i = 0; i < 2; i++) {
        void *out = NULL;
        int rc = T_POSIX_MEMALIGN(&out, tu_opaque_size(vast[i]), 16);
        expect_int_eq_f(rc, ENOMEM, "posix_memalign(alignment %zu, 16)", vast[i]);
        if (rc == 0) T_FREE(out);
    }
}

static void test_reallocarray(void) {
    unsigned char *p = T_REALLOCARRAY(NULL, 10, 10);
    expect_ptr_not_null(p, "reallocarray(NULL, 10, 10)");
    if (!p) return;
    tu_fill(p, 100, 5);
    unsigned char *q = T_REALLOCARRAY(p, 100, 100);
    expect_ptr_not_null(q, "reallocarray(p, 100, 100)");
    if (!q) {
        T_FREE(p);
        return;
    }
    expect_true(tu_check(q, 100, 5) == SIZE_MAX, "reallocarray kept the first 100 bytes");
    tu_fill(q, 10000, 6);
    static const size_t overflow[][2] = {
        {SIZE_MAX / 2 + 1, 2},
        {(size_t)1 << 32, (size_t)1 << 32},
        {(size_t)1 << 32, (size_t)1 << 31}, /* > PTRDIFF_MAX */
        {3, SIZE_MAX / 3 + 1},
    };
    for (size_t i = 0; i < sizeof overflow / sizeof overflow[0]; i++) {
        errno = 0;
        void *r = T_REALLOCARRAY(q, tu_opaque_size(overflow[i][0]), tu_opaque_size(overflow[i][1]));
        int err = errno;
        expect_ptr_null(r, "reallocarray(p, %zu, %zu) must fail", overflow[i][0], overflow[i][1]);
        expect_int_eq_f(err, ENOMEM, "errno after reallocarray(p, %zu, %zu)", overflow[i][0],
                        overflow[i][1]);
        if (r) {
            T_FREE(r);
            return;
        }
        size_t bad = tu_check(q, 10000, 6);
        expect_true(bad == SIZE_MAX, "failed reallocarray changed byte %zu of the old block", bad);
    }
    expect_zu_le_f(10000, T_USABLE_SIZE(q), "old block still allocated after failed reallocarray");
    T_FREE(q);
}

static void test_free_null_and_usable_null(void) {
    for (int i = 0; i < 1000; i++) T_FREE(tu_opaque_ptr(NULL));
    expect_zu_eq_f(T_USABLE_SIZE(tu_opaque_ptr(NULL)), 0, "malloc_usable_size(NULL)");
}

/* ---- usable size, valloc, alignment of every size, overlap --------------- */

/* Blocks of one class sit side by side; writing each to its full usable size
 * must not reach a neighbour (sqlite and others do write that far). */
static void test_usable_size_writable(void) {
    static const size_t sizes[] = {1, 8, 17, 24, 33, 100, 250, 513, 1000, 3000, 7000, 20000, 70000};
    enum { N = 300 };
    static void *blocks[N];
    static size_t usable[N];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int i = 0; i < N; i++) {
            blocks[i] = T_MALLOC(sizes[s]);
            expect_ptr_not_null(blocks[i], "malloc(%zu)", sizes[s]);
            if (!blocks[i]) return;
            usable[i] = T_USABLE_SIZE(blocks[i]);
            tu_fill(blocks[i], usable[i], tu_seed(blocks[i], usable[i]));
        }
        int reported = 0;
        for (int i = 0; i < N; i++) {
            size_t bad = tu_check(blocks[i], usable[i], tu_seed(blocks[i], usable[i]));
            if (bad != SIZE_MAX && !reported++)
                expect_true(bad == SIZE_MAX,
                            "malloc(%zu) block %d, usable %zu: byte %zu overwritten by a neighbour",
                            sizes[s], i, usable[i], bad);
            T_FREE(blocks[i]);
        }
    }
}

static void test_valloc_pvalloc(void) {
    size_t page = page_size();
    size_t sizes[] = {1, 100, page - 1, page, page + 1, 100000, TU_MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = T_VALLOC(sizes[i]);
        expect_ptr_not_null(p, "valloc(%zu)", sizes[i]);
        if (p) {
            expect_true(is_aligned(p, page), "valloc(%zu) = %p is not page aligned", sizes[i],
                        (void *)p);
            expect_zu_le_f(sizes[i], T_USABLE_SIZE(p), "usable size of valloc(%zu)", sizes[i]);
            memset(p, 0x21, sizes[i]);
            T_FREE(p);
        }
        size_t rounded = (sizes[i] + page - 1) & ~(page - 1);
        p = T_PVALLOC(sizes[i]);
        expect_ptr_not_null(p, "pvalloc(%zu)", sizes[i]);
        if (p) {
            expect_true(is_aligned(p, page), "pvalloc(%zu) = %p is not page aligned", sizes[i],
                        (void *)p);
            expect_zu_le_f(rounded, T_USABLE_SIZE(p), "pvalloc(%zu) must hold whole pages",
                           sizes[i]);
            memset(p, 0x22, rounded);
            T_FREE(p);
        }
    }
}

/* Every malloc size 1..4096, all live at once: membudget gives max_align_t
 * alignment to every size, malloc(1) included.  Other allocators give 8 to
 * sizes that are not multiples of 16, which C permits. */
static void test_malloc_alignment_every_size(void) {
    enum { N = 4096 };
    static void *blocks[N + 1];
    int reported = 0;
    for (size_t size = 1; size <= N; size++) {
        void *p = T_MALLOC(size);
        blocks[size] = p;
        expect_ptr_not_null(p, "malloc(%zu)", size);
        if (!p) continue;
        size_t want = testing_membudget() || size % 16 == 0 ? 16 : size >= 8 ? 8 : 1;
        if (!is_aligned(p, want) && !reported++)
            expect_true(is_aligned(p, want), "malloc(%zu) = %p is not %zu-byte aligned", size, p,
                        want);
        memset(p, 0x31, size);
    }
    for (size_t size = 1; size <= N; size++) T_FREE(blocks[size]);
}

struct live_block {
    unsigned char *ptr;
    size_t usable;
};

static int compare_blocks(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const struct live_block *)a)->ptr;
    uintptr_t y = (uintptr_t)((const struct live_block *)b)->ptr;
    return x < y ? -1 : x > y;
}

/* Many live blocks of mixed sizes, with frees in between so freed space gets
 * reused: sorted by address, the ranges [p, p + usable) never overlap, and each
 * still holds the pattern written over its whole usable size. */
static void test_no_overlap(void) {
    enum { SLOTS = 12000, OPS = 40000 };
    static struct live_block slots[SLOTS];
    memset(slots, 0, sizeof slots);
    tu_rng rng = {7};
    for (int op = 0; op < OPS; op++) {
        size_t i = (size_t)tu_below(&rng, SLOTS);
        if (slots[i].ptr) {
            size_t bad = tu_check(slots[i].ptr, slots[i].usable, tu_seed(slots[i].ptr, 0));
            if (bad != SIZE_MAX) {
                expect_true(bad == SIZE_MAX, "block %p (usable %zu) changed at byte %zu",
                            (void *)slots[i].ptr, slots[i].usable, bad);
                return;
            }
            T_FREE(slots[i].ptr);
            slots[i].ptr = NULL;
            if (tu_below(&rng, 3) == 0) continue;
        }
        uint64_t kind = tu_below(&rng, 1000);
        size_t size = kind < 700   ? tu_between(&rng, 0, 256)
                      : kind < 960 ? tu_between(&rng, 257, 16 * TU_KIB)
                      : kind < 995 ? tu_between(&rng, 16 * TU_KIB, 128 * TU_KIB)
                                   : tu_between(&rng, 128 * TU_KIB, TU_MIB);
        unsigned char *p = T_MALLOC(size);
        if (!p) {
            expect_ptr_not_null(p, "malloc(%zu)", size);
            return;
        }
        slots[i].ptr = p;
        slots[i].usable = T_USABLE_SIZE(p);
        tu_fill(p, slots[i].usable, tu_seed(p, 0));
    }
    static struct live_block sorted[SLOTS];
    size_t n = 0;
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].ptr) sorted[n++] = slots[i];
    qsort(sorted, n, sizeof sorted[0], compare_blocks);
    size_t overlaps = 0, damaged = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n &&
            (uintptr_t)sorted[i].ptr + sorted[i].usable > (uintptr_t)sorted[i + 1].ptr) {
            if (!overlaps++)
                expect_true(0, "[%p, +%zu) overlaps the block at %p", (void *)sorted[i].ptr,
                            sorted[i].usable, (void *)sorted[i + 1].ptr);
        }
        if (tu_check(sorted[i].ptr, sorted[i].usable, tu_seed(sorted[i].ptr, 0)) != SIZE_MAX &&
            !damaged++)
            expect_true(0, "block %p (usable %zu) lost its pattern", (void *)sorted[i].ptr,
                        sorted[i].usable);
    }
    expect_zu_eq_f(overlaps, 0, "overlapping live blocks among %zu", n);
    for (size_t i = 0; i < SLOTS; i++) T_FREE(slots[i].ptr);
}

/* ---- the budget counter (membudget only) ---------------------------------- */

static uint64_t counter_bytes(void) {
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    membudget_stats(&st, sizeof st);
    return st.counter_bytes;
}

struct workload_result {
    uint64_t counter_mid; /* the counter halfway through */
    size_t live_mid;      /* bytes the workload held at that moment */
    size_t churn;         /* bytes requested in all */
};

/* Small, medium (8-64 KiB) and large (100 KiB-8 MiB) blocks through every
 * entry point, ~200 MiB requested in all, everything freed at the end. */
static struct workload_result budget_workload(uint64_t seed) {
    enum { SLOTS = 4096 };
    static void *slot[SLOTS];
    static size_t slot_size[SLOTS];
    struct workload_result res = {0, 0, 0};
    const size_t target = 200 * TU_MIB;
    size_t live = 0;
    int measured = 0;
    tu_rng rng = {seed};
    memset(slot, 0, sizeof slot);
    while (res.churn < target) {
        size_t i = (size_t)tu_below(&rng, SLOTS);
        uint64_t kind = tu_below(&rng, 100);
        size_t size = kind < 88   ? tu_between(&rng, 1, 1024)
                      : kind < 98 ? tu_between(&rng, 8 * TU_KIB, 64 * TU_KIB)
                                  : tu_between(&rng, 100 * TU_KIB, 8 * TU_MIB);
        uint64_t how = tu_below(&rng, 20);
        unsigned char *p;
        if (slot[i] && how < 3) {
            p = T_REALLOC(slot[i], size);
            if (!p) break;
            live -= slot_size[i];
        } else {
            if (slot[i]) {
                T_FREE(slot[i]);
                live -= slot_size[i];
            }
            slot[i] = NULL;
            if (how < 5) {
                p = T_CALLOC(1, size);
            } else if (how < 6) {
                void *out = NULL;
                p = T_POSIX_MEMALIGN(&out, (size_t)64 << tu_below(&rng, 8), size) == 0 ? out : NULL;
            } else {
                p = T_MALLOC(size);
            }
            if (!p) break;
        }
        p[0] = 1;
        p[size - 1] = 2;
        slot[i] = p;
        slot_size[i] = size;
        live += size;
        res.churn += size;
        if (!measured && res.churn >= target / 2) {
            measured = 1;
            res.counter_mid = counter_bytes();
            res.live_mid = live;
        }
    }
    for (size_t i = 0; i < SLOTS; i++) T_FREE(slot[i]);
    return res;
}

/* Every committed byte is charged and every released byte uncharged: after a
 * workload that frees everything and a trim, the counter is back exactly where
 * it started.  A warm-up run first, so lazily built metadata already exists. */
static void test_budget_counter_returns(void) {
    struct workload_result warm = budget_workload(1234);
    expect_zu_le_f(200 * TU_MIB, warm.churn, "the warm-up workload ran to completion");
    T_TRIM(0);
    uint64_t start = counter_bytes();
    struct workload_result run = budget_workload(1234);
    T_TRIM(0);
    uint64_t end = counter_bytes();
    expect_zu_le_f(200 * TU_MIB, run.churn, "the workload ran to completion");
    expect_zu_le_f(32 * TU_MIB, run.live_mid, "the workload held at least 32 MiB halfway");
    expect_zu_le_f(start + run.live_mid / 2, run.counter_mid,
                   "halfway, with %zu MiB live, the counter was %zu MiB above its start of %zu MiB",
                   run.live_mid >> 20, (size_t)((run.counter_mid - start) >> 20),
                   (size_t)(start >> 20));
    expect_zu_eq_f(end, start, "counter_bytes after free everything + malloc_trim(0)");
}

/* ---- preload mode only: foreign pointers, mmap accounting ----------------- */

#ifndef MBTEST_LINKED
typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

/* free, realloc and malloc_usable_size of memory that is not ours: nothing
 * crashes, the memory is left as it was, realloc copies into a block of ours. */
static void check_foreign(unsigned char *foreign, size_t len, const char *what) {
    uint64_t seed = tu_seed(foreign, len);
    tu_fill(foreign, len, seed);
    (void)T_USABLE_SIZE(tu_opaque_ptr(foreign));
    expect_true(tu_check(foreign, len, seed) == SIZE_MAX,
                "malloc_usable_size(%s) changed its contents", what);
    T_FREE(tu_opaque_ptr(foreign));
    expect_true(tu_check(foreign, len, seed) == SIZE_MAX, "free(%s) changed its contents", what);
    size_t copy = len / 2;
    unsigned char *q = T_REALLOC(tu_opaque_ptr(foreign), copy);
    expect_ptr_not_null(q, "realloc(%s, %zu)", what, copy);
    if (q) {
        expect_true(q != foreign, "realloc(%s) must return a new block", what);
        expect_true(tu_check(q, copy, seed) == SIZE_MAX,
                    "realloc(%s, %zu) must hold the old contents", what, copy);
        expect_zu_le_f(copy, T_USABLE_SIZE(q), "realloc(%s) returned a block of ours", what);
        T_FREE(q);
    }
    expect_true(tu_check(foreign, len, seed) == SIZE_MAX, "realloc(%s) changed its contents", what);
}

static unsigned char foreign_static[8192] __attribute__((aligned(64)));

static void test_foreign_static_and_stack(void) {
    check_foreign(foreign_static, sizeof foreign_static, "a static array");
    check_foreign(foreign_static + 16, 4096, "a pointer inside a static array");
    unsigned char stack[2048] __attribute__((aligned(16)));
    check_foreign(stack, sizeof stack, "a stack buffer");
    check_foreign(stack + 32, 512, "a pointer inside a stack buffer");
}

/* Pointers into an application mapping, including addresses aligned the way an
 * allocator's chunks are, whose "header" is whatever the application wrote. */
static void test_foreign_mmap(void) {
    size_t len = 32 * TU_MIB;
    unsigned char *map =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect_true(map != MAP_FAILED, "mmap of 32 MiB");
    if (map == MAP_FAILED) return;
    unsigned char *aligned =
        (unsigned char *)(((uintptr_t)map + 16 * TU_MIB - 1) & ~(16 * TU_MIB - 1));
    static const size_t offsets[] = {
        0,           16,          64,         4096,       4096 + 48,
        64 * TU_KIB, TU_MIB + 32, 2 * TU_MIB, 4 * TU_MIB, 4 * TU_MIB + 16};
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0: every byte set; pass 1: zero, as fresh pages are. */
        memset(map, pass ? 0 : 0xC3, len);
        for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
            char what[96];
            snprintf(what, sizeof what, "a pointer %zu bytes into a 16 MiB-aligned mmap (pass %d)",
                     offsets[i], pass);
            check_foreign(aligned + offsets[i], 8192, what);
        }
        check_foreign(map, 8192, "the start of an mmap'd region");
        check_foreign(map + 3 * 4096 + 48, 4096, "a pointer inside an mmap'd region");
    }
    munmap(map, len);
}

/* A block from glibc's own malloc (allocated before takeover, or by code that
 * bound to glibc directly).  glibc's malloc is looked up in libc.so.6 itself. */
static void test_foreign_glibc_block(void) {
    void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    expect_ptr_not_null(libc, "dlopen(libc.so.6, RTLD_NOLOAD)");
    if (!libc) return;
    malloc_fn glibc_malloc = (malloc_fn)dlsym(libc, "malloc");
    free_fn glibc_free = (free_fn)dlsym(libc, "free");
    expect_true(glibc_malloc && glibc_free, "glibc's malloc and free found in libc.so.6");
    expect_true((void *)glibc_malloc != (void *)&malloc,
                "libc.so.6's malloc is not the interposed one");
    if (!glibc_malloc || !glibc_free || (void *)glibc_malloc == (void *)&malloc) {
        dlclose(libc);
        return;
    }
    unsigned char *g = glibc_malloc(200);
    expect_ptr_not_null(g, "glibc's malloc(200)");
    if (!g) {
        dlclose(libc);
        return;
    }
    uint64_t seed = tu_seed(g, 200);
    tu_fill(g, 200, seed);
    size_t usable = T_USABLE_SIZE(g);
    expect_true(usable == 0 || usable >= 200,
                "malloc_usable_size(glibc block of 200) = %zu: neither unknown (0) nor >= 200",
                usable);
    expect_true(tu_check(g, 200, seed) == SIZE_MAX, "malloc_usable_size changed a glibc block");
    /* Growing realloc: the new block must hold all 200 old bytes. */
    unsigned char *q = T_REALLOC(g, 5000);
    expect_ptr_not_null(q, "realloc(glibc block, 5000)");
    if (q) {
        expect_true(tu_check(q, 200, seed) == SIZE_MAX,
                    "realloc(glibc block, 5000) must hold its 200 bytes");
        expect_zu_le_f(5000, T_USABLE_SIZE(q), "realloc(glibc block) returned a block of ours");
        T_FREE(q);
    }
    /* Plain free of glibc blocks, then glibc's heap must still work. */
    for (int i = 0; i < 64; i++) {
        unsigned char *b = glibc_malloc(16 + 37 * (size_t)i);
        if (b) {
            memset(b, 0xEE, 16 + 37 * (size_t)i);
            T_FREE(b);
        }
    }
    void *again[64];
    for (int i = 0; i < 64; i++) {
        again[i] = glibc_malloc(16 + 37 * (size_t)i);
        if (again[i]) memset(again[i], 0x11, 16 + 37 * (size_t)i);
    }
    for (int i = 0; i < 64; i++) glibc_free(again[i]);
    dlclose(libc);
}

static struct membudget_stats stats_now(void) {
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    membudget_stats(&st, sizeof st);
    return st;
}

/* A big page (blocks of 64-256 KiB) whose blocks are all freed goes back to
 * the pool even as its class's last page: kept, every thread would hold up to
 * a page of idle memory per class (a small page is kept: a loop of one
 * malloc and free must not bounce it through the pool). */
static void test_empty_big_page_returns(void) {
    if (!testing_membudget() || testing_backend_jemalloc()) return;
    enum { BLOCKS = 8 };
    void *blocks[BLOCKS];
    uint64_t before = stats_now().pages_in_use;
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = T_MALLOC(230000);
        expect_ptr_not_null(blocks[i], "malloc(230000) #%d", i);
        if (!blocks[i]) return;
        memset(blocks[i], i, 230000);
    }
    uint64_t holding = stats_now().pages_in_use;
    expect_true(holding > before, "%" PRIu64 " pages in use while holding 8 blocks, %" PRIu64 " before",
                holding, before);
    for (int i = 0; i < BLOCKS; i++) T_FREE(blocks[i]);
    uint64_t after = stats_now().pages_in_use;
    expect_true(after < holding, "%" PRIu64 " pages in use after freeing every block, %" PRIu64 " while holding",
                after, holding);
}

/* DESIGN §3: an anonymous writable mapping without MAP_NORESERVE is charged in
 * full at mmap and uncharged by exactly the overlap at munmap; reservations and
 * file mappings are never charged; mremap keeps the record straight. */
static void test_mmap_accounting(void) {
    const size_t len = 64 * TU_MIB;
    const int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
    struct membudget_stats st0 = stats_now();
    uint64_t start = st0.mmap_bytes;

    unsigned char *m = mmap(NULL, len, rw, anon, -1, 0);
    expect_true(m != MAP_FAILED, "mmap of 64 MiB");
    if (m == MAP_FAILED) return;
    struct membudget_stats st1 = stats_now();
    expect_zu_eq_f(st1.mmap_bytes, start + len, "mmap_bytes after a 64 MiB anonymous mmap");
    expect_zu_le_f(st0.counter_bytes + len, st1.counter_bytes,
                   "counter_bytes includes the 64 MiB mapping");
    expect_int_eq_f(munmap(m, len / 2), 0, "munmap of the first half");
    expect_zu_eq_f(stats_now().mmap_bytes, start + len / 2, "mmap_bytes after unmapping half");
    /* A hole in the middle of the rest. */
    expect_int_eq_f(munmap(m + len / 2 + 4 * TU_MIB, 4 * TU_MIB), 0, "munmap of a hole");
    expect_zu_eq_f(stats_now().mmap_bytes, start + len / 2 - 4 * TU_MIB, "mmap_bytes after a hole");
    /* munmap of a range that covers the hole and unmapped space is fine. */
    expect_int_eq_f(munmap(m, len), 0, "munmap of the whole original range");
    expect_zu_eq_f(stats_now().mmap_bytes, start, "mmap_bytes back to its start");

    /* Not charged: reservations, file mappings. */
    unsigned char *r = mmap(NULL, len, rw, anon | MAP_NORESERVE, -1, 0);
    unsigned char *n = mmap(NULL, len, PROT_NONE, anon, -1, 0);
    expect_true(r != MAP_FAILED && n != MAP_FAILED, "MAP_NORESERVE and PROT_NONE mappings");
    expect_zu_eq_f(stats_now().mmap_bytes, start, "MAP_NORESERVE and PROT_NONE are not charged");
    char path[] = "/tmp/membudget-test-XXXXXX";
    int fd = mkstemp(path);
    expect_true(fd >= 0, "mkstemp");
    if (fd >= 0) {
        unlink(path);
        expect_int_eq_f(ftruncate(fd, (off_t)(4 * TU_MIB)), 0, "ftruncate");
        void *fs = mmap(NULL, 4 * TU_MIB, rw, MAP_SHARED, fd, 0);
        void *fp = mmap(NULL, 4 * TU_MIB, rw, MAP_PRIVATE, fd, 0);
        expect_true(fs != MAP_FAILED && fp != MAP_FAILED, "file mappings");
        expect_zu_eq_f(stats_now().mmap_bytes, start, "file-backed mappings are not charged");
        if (fs != MAP_FAILED) munmap(fs, 4 * TU_MIB);
        if (fp != MAP_FAILED) munmap(fp, 4 * TU_MIB);
        close(fd);
    }
    if (r != MAP_FAILED) munmap(r, len);
    if (n != MAP_FAILED) munmap(n, len);
    expect_zu_eq_f(stats_now().mmap_bytes, start, "unmapping uncharged mappings uncharges nothing");

    /* Shared anonymous memory is anonymous too. */
    void *sh = mmap(NULL, 8 * TU_MIB, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    expect_true(sh != MAP_FAILED, "shared anonymous mmap");
    expect_zu_eq_f(stats_now().mmap_bytes, start + 8 * TU_MIB,
                   "shared anonymous mapping is charged");
    if (sh != MAP_FAILED) munmap(sh, 8 * TU_MIB);
    expect_zu_eq_f(stats_now().mmap_bytes, start, "after munmap of the shared mapping");

    /* mmap64 is the same call. */
    void *m64 = mmap64(NULL, 2 * TU_MIB, rw, anon, -1, 0);
    expect_zu_eq_f(stats_now().mmap_bytes, start + 2 * TU_MIB, "mmap64 is charged");
    if (m64 != MAP_FAILED) munmap(m64, 2 * TU_MIB);

    /* mremap: grow (may move), shrink in place, then unmap. */
    void *g = mmap(NULL, 16 * TU_MIB, rw, anon, -1, 0);
    expect_true(g != MAP_FAILED, "mmap of 16 MiB");
    if (g != MAP_FAILED) {
        memset(g, 0x4d, 4096);
        void *g2 = mremap(g, 16 * TU_MIB, 48 * TU_MIB, MREMAP_MAYMOVE);
        expect_true(g2 != MAP_FAILED, "mremap grow");
        if (g2 == MAP_FAILED) {
            munmap(g, 16 * TU_MIB);
        } else {
            expect_zu_eq_f(stats_now().mmap_bytes, start + 48 * TU_MIB,
                           "mmap_bytes after mremap grow");
            expect_int_eq_f(((unsigned char *)g2)[4095], 0x4d, "mremap kept the contents");
            void *g3 = mremap(g2, 48 * TU_MIB, 8 * TU_MIB, 0);
            expect_true(g3 == g2, "mremap shrink in place");
            expect_zu_eq_f(stats_now().mmap_bytes, start + 8 * TU_MIB,
                           "mmap_bytes after mremap shrink");
            munmap(g2, 8 * TU_MIB);
        }
    }
    expect_zu_eq_f(stats_now().mmap_bytes, start, "mmap_bytes after the mremap'd mapping is gone");

    /* MAP_FIXED over half of a charged mapping: the old half is uncharged, the new
     * one charged if it is itself chargeable. */
    unsigned char *f = mmap(NULL, 16 * TU_MIB, rw, anon, -1, 0);
    if (f != MAP_FAILED) {
        void *over = mmap(f, 8 * TU_MIB, rw, anon | MAP_FIXED, -1, 0);
        expect_true(over == (void *)f, "MAP_FIXED anonymous over a charged range");
        expect_zu_eq_f(stats_now().mmap_bytes, start + 16 * TU_MIB,
                       "MAP_FIXED over a charged range does not charge twice");
        over = mmap(f + 8 * TU_MIB, 8 * TU_MIB, PROT_NONE, anon | MAP_FIXED, -1, 0);
        expect_true(over == (void *)(f + 8 * TU_MIB), "MAP_FIXED PROT_NONE over a charged range");
        expect_zu_eq_f(stats_now().mmap_bytes, start + 8 * TU_MIB,
                       "a reservation mapped over a charged range uncharges it");
        munmap(f, 16 * TU_MIB);
    }
    expect_zu_eq_f(stats_now().mmap_bytes, start, "mmap_bytes after the MAP_FIXED mapping is gone");

    /* Failures are not charged and keep the kernel's errno. */
    errno = 0;
    void *bad = mmap(NULL, 4096, rw, MAP_ANONYMOUS /* neither private nor shared */, -1, 0);
    expect_true(bad == MAP_FAILED, "mmap without MAP_PRIVATE or MAP_SHARED fails");
    expect_int_eq_f(errno, EINVAL, "errno after a failed mmap");
    errno = 0;
    expect_int_eq_f(munmap((void *)((uintptr_t)m + 1), 4096), -1, "munmap of an unaligned address");
    expect_int_eq_f(errno, EINVAL, "errno after a failed munmap");
    expect_zu_eq_f(stats_now().mmap_bytes, start, "failed calls charge nothing");
}
#endif /* !MBTEST_LINKED */

int main(void) {
    RUN(test_size_classes_small);
    RUN(test_size_classes_headers);
    RUN(test_size_classes_large);
    RUN(test_alignment_powers_of_two);
    RUN(test_alignment_small);
    RUN(test_posix_memalign_einval);
    RUN(test_non_power_of_two_alignment);
    RUN(test_realloc_keeps_content);
    RUN(test_realloc_many_steps);
    RUN(test_realloc_in_place);
    RUN(test_realloc_zero_frees);
    RUN(test_realloc_null_is_malloc);
    RUN(test_realloc_huge_fails);
    RUN(test_calloc_zeroes_reused_memory);
    RUN(test_calloc_overflow);
    RUN(test_malloc_zero_unique);
    RUN(test_huge_requests_fail);
    RUN(test_posix_memalign_huge);
    RUN(test_reallocarray);
    RUN(test_free_null_and_usable_null);
    RUN(test_usable_size_writable);
    RUN(test_valloc_pvalloc);
    RUN(test_malloc_alignment_every_size);
    RUN(test_no_overlap);
    RUN_IF(MBTEST_HAVE_API, test_budget_counter_returns, "needs the membudget API");
#ifndef MBTEST_LINKED
    RUN_IF(testing_membudget(), test_foreign_static_and_stack,
           "only membudget tolerates foreign pointers");
    RUN_IF(testing_membudget(), test_foreign_mmap, "only membudget tolerates foreign pointers");
    RUN_IF(testing_membudget(), test_foreign_glibc_block,
           "only membudget tolerates foreign pointers");
    RUN_IF(MBTEST_HAVE_API, test_mmap_accounting, "needs the membudget API");
    RUN_IF(MBTEST_HAVE_API, test_empty_big_page_returns, "needs the membudget API");
#endif
    return harness_finish();
}
