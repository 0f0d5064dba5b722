/* libFuzzer target: random sequences of malloc, calloc, realloc, reallocarray,
 * free and the aligned allocators, run by two threads over one table of slots,
 * so blocks are freed and resized by the thread that did not allocate them.
 *
 * The allocator's sources are linked in (-DMBTEST_LINKED -DMB_NO_EXPORTS, as in
 * tests/unit.mk) and built with coverage, so the fuzzer steers by the
 * allocator's own branches; AddressSanitizer and UBSan watch its code.  Checked
 * on every operation: 16-byte alignment (max_align_t) and the requested
 * alignment; malloc_usable_size >= the request, and writable to the end (each
 * block is filled to its usable size with a pattern derived from its address:
 * whole up to 64 KiB, above that both ends and every page); the pattern is intact when the block is resized or freed (two
 * blocks that overlap, or a block handed out twice, break it); realloc keeps
 * the prefix; calloc zeroes; the error cases return NULL with the right errno.
 * After each input, the live blocks are sorted and must not overlap.
 *
 * Input: byte 0 splits the rest into the two threads' streams; each stream is a
 * sequence of operations (an opcode byte and its argument bytes).  A broken
 * check prints what broke and aborts, so libFuzzer keeps the input. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SLOTS = 64, PAGE = 4096 };

struct slot {
    atomic_flag busy;
    unsigned char *ptr;
    size_t size;   /* requested */
    size_t usable; /* malloc_usable_size when it was filled */
    size_t align;  /* requested alignment, 16 for the plain calls */
    uint64_t seed; /* of the pattern over [0, usable) */
};

static struct slot slots[SLOTS];
static _Atomic uint64_t total_ops, total_inputs;

static void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_alloc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

struct stream {
    const uint8_t *d;
    size_t n, i;
    uint64_t ops;
    uint64_t salt;
};

static uint8_t byte(struct stream *s) { return s->i < s->n ? s->d[s->i++] : 0; }
static uint16_t u16(struct stream *s) { return (uint16_t)(byte(s) | (byte(s) << 8)); }

/* Sizes across every kind of page and the large spans: mostly small. */
static size_t pick_size(struct stream *s) {
    uint8_t sel = byte(s);
    size_t v = u16(s);
    switch (sel & 31) {
    case 0: case 1: return v & 15;                      /* 0..15, malloc(0) included */
    case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
        return v % 257;                                 /* 16-byte classes */
    case 10: case 11: case 12: case 13: case 14: case 15:
        return 257 + v % 7936;                          /* to SMALL_MAX (8 KiB) */
    case 16: case 17: case 18: case 19:
        return 8192 + (v * 8) % (65536 - 8192 + 64);   /* medium */
    case 20: case 21: return 65536 + (v * 4) % (196608 + 64); /* big, to CLASS_MAX */
    case 22: case 23: return ((size_t)256 << 10) - 32 + v % 64; /* class/large boundary */
    case 24: case 25: return ((size_t)256 << 10) + v * 8; /* large, to 768 KiB */
    case 26: return PAGE * (1 + v % 1024);              /* page multiples, to 4 MiB */
    default: { /* around powers of two, 2^k - 8 .. 2^k + 7 */
        size_t p2 = (size_t)1 << (v % 23), off = (sel >> 5) * 2 + (v >> 15);
        return p2 + off >= 8 ? p2 + off - 8 : off;
    }
    }
}

static size_t pick_align(struct stream *s) { return (size_t)1 << (byte(s) % 22); }

static int is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* fuzz_pattern.c, built without coverage or sanitizers: the fuzzer steers by
 * the allocator's branches, not by the pattern loops. */
void fill_block(unsigned char *p, size_t usable, uint64_t seed);
size_t check_block(const unsigned char *p, size_t usable, uint64_t seed, size_t keep);
size_t check_zero(const unsigned char *p, size_t n);

/* Fills a fresh block to its usable size and records it in the slot. */
static void adopt(struct stream *s, struct slot *sl, void *p, size_t size, size_t align,
                  const char *what) {
    uintptr_t a = (uintptr_t)p;
    if (a % 16) fuzz_fail("%s(%zu) returned %p, not 16-byte aligned", what, size, p);
    if (align > 16 && a % align)
        fuzz_fail("%s(align %zu, %zu) returned %p, not aligned", what, align, size, p);
    size_t usable = T_USABLE_SIZE(p);
    if (usable < size) fuzz_fail("%s(%zu): malloc_usable_size %zu is smaller", what, size, usable);
    /* Fresh small blocks come from the class just above: at most 25% waste (a
     * realloc may keep a shrunk block where it is). */
    int fresh = strcmp(what, "malloc") == 0 || strcmp(what, "calloc") == 0;
    if (fresh && size <= ((size_t)256 << 10) && usable > size + size / 4 + 16)
        fuzz_fail("%s(%zu): malloc_usable_size %zu wastes more than 25%%", what, size, usable);
    sl->ptr = p;
    sl->size = size;
    sl->usable = usable;
    sl->align = align;
    sl->seed = tu_seed(p, size) ^ (s->salt += 0x9E3779B97F4A7C15ull);
    fill_block(p, usable, sl->seed);
}

static void check(const struct slot *sl, const char *when) {
    size_t bad = check_block(sl->ptr, sl->usable, sl->seed, sl->usable);
    if (bad != SIZE_MAX)
        fuzz_fail("block %p (size %zu, usable %zu, align %zu) changed at offset %zu before %s",
                  (void *)sl->ptr, sl->size, sl->usable, sl->align, bad, when);
}

static void release(struct slot *sl) {
    if (!sl->ptr) return;
    check(sl, "free");
    T_FREE(sl->ptr);
    sl->ptr = NULL;
}

/* Locks a slot near `want` that the other thread is not using. */
static struct slot *grab(uint8_t want) {
    for (unsigned k = 0;; k++) {
        struct slot *sl = &slots[(want + k) % SLOTS];
        if (!atomic_flag_test_and_set_explicit(&sl->busy, memory_order_acquire)) return sl;
    }
}

static void let_go(struct slot *sl) { atomic_flag_clear_explicit(&sl->busy, memory_order_release); }

static void op_realloc(struct stream *s, struct slot *sl, size_t n) {
    if (!sl->ptr) {
        void *p = T_REALLOC(NULL, n);
        if (!p) fuzz_fail("realloc(NULL, %zu) returned NULL", n);
        adopt(s, sl, p, n, 16, "realloc(NULL)");
        return;
    }
    check(sl, "realloc");
    struct slot old = *sl;
    void *q = T_REALLOC(sl->ptr, n);
    if (n == 0) { /* glibc's contract: frees and returns NULL */
        if (q) fuzz_fail("realloc(%p, 0) returned %p, not NULL", (void *)old.ptr, q);
        sl->ptr = NULL;
        return;
    }
    if (!q) fuzz_fail("realloc(%p, %zu) returned NULL", (void *)old.ptr, n);
    size_t keep = old.size < n ? old.size : n;
    size_t bad = check_block(q, old.usable, old.seed, keep);
    if (bad != SIZE_MAX)
        fuzz_fail("realloc(%p size %zu -> %zu) = %p lost byte %zu of the prefix", (void *)old.ptr,
                  old.size, n, q, bad);
    adopt(s, sl, q, n, 16, "realloc");
}

static void op_aligned(struct stream *s, struct slot *sl) {
    uint8_t kind = byte(s) % 6;
    size_t align = pick_align(s), n = pick_size(s);
    void *p = NULL;
    release(sl);
    switch (kind) {
    case 0:
        p = T_ALIGNED_ALLOC(align, n);
        break;
    case 1: {
        int rc = T_POSIX_MEMALIGN(&p, align, n);
        if (align < sizeof(void *)) {
            if (rc != EINVAL) fuzz_fail("posix_memalign(align %zu) returned %d, not EINVAL", align, rc);
            return;
        }
        if (rc) fuzz_fail("posix_memalign(align %zu, %zu) returned %d", align, n, rc);
        break;
    }
    case 2:
        p = T_MEMALIGN(align, n);
        break;
    case 3:
        p = T_VALLOC(n);
        align = PAGE;
        break;
    case 4:
        p = T_PVALLOC(n);
        align = PAGE;
        if (p && T_USABLE_SIZE(p) < ((n + PAGE - 1) & ~(size_t)(PAGE - 1)))
            fuzz_fail("pvalloc(%zu): usable size %zu is not rounded up to pages", n,
                      T_USABLE_SIZE(p));
        break;
    default: {
        /* Alignments that are not powers of two. */
        size_t bad = align * 3;
        errno = 0;
        p = T_ALIGNED_ALLOC(bad, n);
        if (p || errno != EINVAL)
            fuzz_fail("aligned_alloc(%zu, %zu) = %p errno %d, expected NULL/EINVAL", bad, n, p, errno);
        void *q = (void *)1;
        int rc = T_POSIX_MEMALIGN(&q, bad, n);
        if (rc != EINVAL || q != (void *)1)
            fuzz_fail("posix_memalign(align %zu) returned %d and touched its out argument", bad, rc);
        /* memalign rounds a non-power of two up, as glibc does. */
        p = T_MEMALIGN(bad, n);
        size_t up = 16;
        while (up < bad) up <<= 1;
        align = up;
        if (!p) fuzz_fail("memalign(%zu, %zu) returned NULL", bad, n);
        break;
    }
    }
    if (!p) fuzz_fail("aligned allocation kind %u (align %zu, %zu) returned NULL", kind, align, n);
    if (!is_pow2(align)) align = 16;
    adopt(s, sl, p, n, align < 16 ? 16 : align, "aligned");
}

static void op_errors(struct stream *s) {
    uint8_t k = byte(s) % 4;
    errno = 0;
    switch (k) {
    case 0: {
        size_t n = SIZE_MAX - (size_t)byte(s) * PAGE;
        void *p = T_MALLOC(n);
        if (p || errno != ENOMEM) fuzz_fail("malloc(%zu) = %p errno %d", n, p, errno);
        break;
    }
    case 1: {
        size_t a = ((size_t)1 << 33) + byte(s), b = ((size_t)1 << 32) + byte(s);
        void *p = T_CALLOC(a, b);
        if (p || errno != ENOMEM) fuzz_fail("calloc(%zu, %zu) overflowing = %p errno %d", a, b, p, errno);
        break;
    }
    case 2: {
        void *p = T_REALLOCARRAY(NULL, SIZE_MAX / 2, 3);
        if (p || errno != ENOMEM) fuzz_fail("reallocarray overflowing = %p errno %d", p, errno);
        break;
    }
    default: {
        size_t align = (size_t)1 << (4 + byte(s) % 16);
        void *p = T_ALIGNED_ALLOC(align, SIZE_MAX - align);
        if (p || errno != ENOMEM) fuzz_fail("aligned_alloc(%zu, huge) = %p errno %d", align, p, errno);
        break;
    }
    }
    T_FREE(NULL);
}

static void run_stream(struct stream *s) {
    while (s->i < s->n) {
        uint8_t op = byte(s);
        struct slot *sl = grab(byte(s));
        switch (op % 16) {
        case 0: case 1: case 2: {
            size_t n = pick_size(s);
            release(sl);
            void *p = T_MALLOC(n);
            if (!p) fuzz_fail("malloc(%zu) returned NULL", n);
            adopt(s, sl, p, n, 16, "malloc");
            break;
        }
        case 3: {
            size_t count = 1 + byte(s) % 64, n = pick_size(s) / count;
            release(sl);
            unsigned char *p = T_CALLOC(count, n);
            if (!p) fuzz_fail("calloc(%zu, %zu) returned NULL", count, n);
            size_t bad = check_zero(p, count * n);
            if (bad != SIZE_MAX) fuzz_fail("calloc(%zu, %zu): byte %zu is not zero", count, n, bad);
            adopt(s, sl, p, count * n, 16, "calloc");
            break;
        }
        case 4: case 5: case 6:
            op_realloc(s, sl, pick_size(s));
            break;
        case 7:
            /* Small steps, as a growing string or vector does. */
            op_realloc(s, sl, sl->ptr ? sl->size + byte(s) : byte(s));
            break;
        case 8:
            if (sl->ptr) {
                check(sl, "realloc(p, 0)");
                errno = 0;
                void *q = T_REALLOC(sl->ptr, 0);
                if (q) fuzz_fail("realloc(%p, 0) returned %p, not NULL", (void *)sl->ptr, q);
                sl->ptr = NULL;
            }
            break;
        case 9: {
            size_t m = 1 + byte(s) % 16, n = pick_size(s) / m;
            if (byte(s) == 0xff) {
                /* Overflowing: fails, the block is left as it was. */
                errno = 0;
                void *q = T_REALLOCARRAY(sl->ptr, SIZE_MAX / 4, 8);
                if (q || errno != ENOMEM) fuzz_fail("reallocarray overflowing = %p errno %d", q, errno);
                if (sl->ptr) check(sl, "a failed reallocarray");
                break;
            }
            if (sl->ptr) check(sl, "reallocarray");
            struct slot old = *sl;
            void *q = T_REALLOCARRAY(sl->ptr, m, n);
            if (old.ptr && m * n == 0) { /* as realloc(p, 0) */
                if (q) fuzz_fail("reallocarray(%p, %zu, 0) returned %p, not NULL", (void *)old.ptr, m, q);
                sl->ptr = NULL;
                break;
            }
            if (!q) fuzz_fail("reallocarray(%zu, %zu) returned NULL", m, n);
            if (old.ptr) {
                size_t keep = old.size < m * n ? old.size : m * n;
                size_t bad = check_block(q, old.usable, old.seed, keep);
                if (bad != SIZE_MAX) fuzz_fail("reallocarray lost byte %zu of the prefix", bad);
            }
            adopt(s, sl, q, m * n, 16, "reallocarray");
            break;
        }
        case 10: case 11:
            op_aligned(s, sl);
            break;
        case 12: case 13:
            release(sl);
            break;
        case 14:
            /* Still intact; write a new pattern over the whole usable size. */
            if (sl->ptr) {
                check(sl, "rewrite");
                if (T_USABLE_SIZE(sl->ptr) != sl->usable)
                    fuzz_fail("malloc_usable_size(%p) changed from %zu to %zu", (void *)sl->ptr,
                              sl->usable, T_USABLE_SIZE(sl->ptr));
                sl->seed ^= 0xA5A5A5A5A5A5A5A5ull;
                fill_block(sl->ptr, sl->usable, sl->seed);
            }
            break;
        default: {
            uint8_t k = byte(s);
            if (k < 8)
                T_TRIM(0); /* returns free memory while the other thread allocates */
            else
                op_errors(s);
            break;
        }
        }
        let_go(sl);
        s->ops++;
    }
}

static void *thread_main(void *arg) {
    run_stream(arg);
    return NULL;
}

static int by_address(const void *a, const void *b) {
    const struct slot *x = *(struct slot *const *)a, *y = *(struct slot *const *)b;
    return x->ptr < y->ptr ? -1 : x->ptr > y->ptr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t split = 1 + (size - 1) * data[0] / 256;
    struct stream a = {data + 1, split - 1, 0, 0, 1}, b = {data + split, size - split, 0, 0, 2};
    pthread_t t;
    int threaded = b.n > 0 && pthread_create(&t, NULL, thread_main, &b) == 0;
    run_stream(&a);
    if (threaded) pthread_join(t, NULL);
    else run_stream(&b);

    /* No two live blocks share a byte of their usable sizes. */
    struct slot *live[SLOTS];
    size_t n = 0;
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].ptr) live[n++] = &slots[i];
    qsort(live, n, sizeof live[0], by_address);
    for (size_t i = 0; i + 1 < n; i++)
        if (live[i]->ptr + live[i]->usable > live[i + 1]->ptr)
            fuzz_fail("blocks %p (usable %zu) and %p overlap", (void *)live[i]->ptr,
                      live[i]->usable, (void *)live[i + 1]->ptr);
    for (int i = 0; i < SLOTS; i++) release(&slots[i]);
    atomic_fetch_add(&total_ops, a.ops + b.ops);
    atomic_fetch_add(&total_inputs, 1);
    return 0;
}

/* The operations run, for the suite's report (libFuzzer exits through exit()). */
__attribute__((destructor)) static void report_ops(void) {
    fprintf(stderr, "fuzz_alloc: %llu operations in %llu inputs\n",
            (unsigned long long)atomic_load(&total_ops), (unsigned long long)atomic_load(&total_inputs));
}
