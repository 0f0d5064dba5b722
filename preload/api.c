/* The malloc family with the C library's contracts: errno on every failure,
 * overflow checks, alignment rules, glibc's realloc(p, 0), and safety for
 * pointers we never handed out.  The mb_* functions carry the behaviour; the
 * exported names are aliases of them, so a sanitizer build can link the same
 * code without exporting malloc (-DMB_NO_EXPORTS). */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "alloc/fmt.h"
#include "alloc/internal.h"
#include "alloc/jemalloc.h"
#include "membudget.h"
#include "policy/budget.h"
#include "policy/sample.h"
#include "preload/preload.h"

void *mb_malloc(size_t size);
void *mb_calloc(size_t count, size_t size);
void *mb_realloc(void *ptr, size_t size);
void *mb_reallocarray(void *ptr, size_t count, size_t size);
void mb_free(void *ptr);
void *mb_aligned_alloc(size_t alignment, size_t size);
void *mb_memalign(size_t alignment, size_t size);
int mb_posix_memalign(void **out, size_t alignment, size_t size);
void *mb_valloc(size_t size);
void *mb_pvalloc(size_t size);
size_t mb_malloc_usable_size(void *ptr);
int mb_malloc_trim(size_t pad);
struct mallinfo mb_mallinfo(void);
struct mallinfo2 mb_mallinfo2(void);
int mb_mallopt(int param, int value);
void mb_malloc_stats(void);

static inline bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* ---- allocation sampling (DESIGN §6, policy/sample.h) ----------------------
 * alloc_countdown (alloc/internal.h): bytes this thread may still allocate
 * before its next sample.  It starts at 0, so a thread's first allocation asks
 * the sampler for its first interval.  With the jemalloc backend the countdown
 * also paces its tick (jm_tick): it never runs longer than JM_TICK_BYTES, and
 * what remains of the sampling interval beyond that waits in
 * alloc_countdown_carry. */

static __attribute__((noinline, cold)) void *sample_slow(void *p, size_t size) {
    if (jm_active) {
        int64_t left = alloc_countdown + alloc_countdown_carry; /* bytes still to the next sample */
        alloc_countdown_carry = 0;
        if (left >= 0) {
            alloc_countdown = left < JM_TICK_BYTES ? left : JM_TICK_BYTES;
            alloc_countdown_carry = left - alloc_countdown;
        } else {
            alloc_countdown = left;
        }
        /* jm_call ticked before allocating (jm_tick). */
        if (alloc_countdown >= 0) return p;
    }
    if (p != NULL) {
        int saved_errno = errno; /* the unwinder may set it */
        /* First: the unwinder's own allocations must not come back here. */
        alloc_countdown = INT64_MAX;
        alloc_countdown = mb_sample_allocation(&p, size);
        errno = saved_errno;
    }
    if (jm_active && alloc_countdown > JM_TICK_BYTES) {
        alloc_countdown_carry = alloc_countdown - JM_TICK_BYTES;
        alloc_countdown = JM_TICK_BYTES;
    }
    return p;
}

/* Takes size bytes off the countdown; true while it lasts.  Unsigned
 * arithmetic, so no size can overflow the signed countdown. */
static inline bool countdown_take(size_t size) {
    alloc_countdown = (int64_t)((uint64_t)alloc_countdown - size);
    return alloc_countdown >= 0;
}

/* The fast path's whole cost: one subtraction and one branch. */
static inline void *sample_tick(void *p, size_t size) {
    if (unlikely(!countdown_take(size))) return sample_slow(p, size);
    return p;
}

/* The jemalloc backend's slow path: the countdown ran out (it was already
 * decreased by the caller's `size`).  An allocation that will be sampled is
 * made page-aligned at once (the free path looks for samples only there), so
 * the sampler never has to move it. */
static inline bool jm_sample_due(void) {
    return alloc_countdown < 0 && alloc_countdown + alloc_countdown_carry < 0;
}

static inline size_t jm_request(size_t size) { return size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size; }

static __attribute__((noinline)) void *jm_slow(bool zero, size_t count, size_t each, size_t size) {
    void *p;
    if (!jm_sample_due())
        p = zero ? jm_call(JM_CALLOC, NULL, count, each) : jm_call(JM_MALLOC, NULL, jm_request(size), 0);
    else
        p = jm_call(zero ? JM_CALLOC_SAMPLED : JM_ALIGNED, NULL, jm_request(size), JM_SAMPLED_ALIGN);
    if (unlikely(p == NULL)) errno = ENOMEM;
    return sample_slow(p, size);
}

void *mb_malloc(size_t size) {
    if (unlikely(jm_active)) {
        /* The countdown first, then a tail call into jemalloc's fast path. */
        if (likely(countdown_take(size))) return mbje_malloc(jm_request(size));
        return jm_slow(false, 0, 0, size);
    }
    void *p = alloc_malloc(size);
    if (unlikely(p == NULL)) errno = ENOMEM;
    return sample_tick(p, size);
}

void mb_free(void *ptr) {
    if (unlikely(jm_active)) jm_free(ptr);
    else alloc_free(ptr);
}

void *mb_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (unlikely(jm_active)) {
        if (total < JM_MIN_REQUEST) count = 1, size = JM_MIN_REQUEST;
        if (likely(countdown_take(total))) return mbje_calloc(count, size);
        return jm_slow(true, count, size, total);
    }
    void *p;
    if (total <= CLASS_MAX) {
        p = alloc_small(total);
        if (p != NULL) memset(p, 0, total);
    } else {
        p = large_alloc(total, OS_PAGE_SIZE, true); /* fresh mappings are zero already */
    }
    if (unlikely(p == NULL)) errno = ENOMEM;
    return sample_tick(p, total);
}

/* Copies up to n bytes from src, stopping at the first unreadable page instead
 * of faulting: src is a pointer we never handed out and know nothing about. */
static size_t copy_readable(void *dst, const void *src, size_t n) {
    long r = os_read_own_memory(dst, src, n);
    if (r >= 0) return (size_t)r;
    /* Not permitted here: copy what lies in src's own page, which is readable
     * if src is. */
    size_t in_page = OS_PAGE_SIZE - ((uintptr_t)src & (OS_PAGE_SIZE - 1));
    if (in_page > n) in_page = n;
    memcpy(dst, src, in_page);
    return in_page;
}

void *mb_realloc(void *ptr, size_t size) {
    if (ptr == NULL) return mb_malloc(size);
    if (size == 0) { /* glibc: frees and returns NULL */
        mb_free(ptr);
        return NULL;
    }
    if (unlikely(jm_active)) {
        bool lasts = countdown_take(size);
        void *r = jm_realloc(ptr, size, jm_sample_due());
        if (unlikely(r == NULL)) errno = ENOMEM;
        return lasts ? r : sample_slow(r, size);
    }
    bool foreign;
    void *q = alloc_realloc(ptr, size, &foreign);
    if (unlikely(foreign)) {
        /* Memory from before we took over, or from another allocator: move it
         * into a block of ours and leave the old one alone. */
        q = alloc_malloc(size);
        if (q != NULL) copy_readable(q, ptr, size);
    }
    if (unlikely(q == NULL)) errno = ENOMEM;
    /* A block resized in place and sampled again replaces its old sample. */
    return sample_tick(q, size);
}

void *mb_reallocarray(void *ptr, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return mb_realloc(ptr, total);
}

/* The aligned family: the block, sampled as malloc's are. */
static void *aligned_sampled(size_t alignment, size_t size) {
    if (unlikely(jm_active)) {
        /* The countdown first, as in malloc: a block about to be sampled is
         * made page-aligned, and the slow path ticks before allocating. */
        bool lasts = countdown_take(size);
        if (jm_sample_due() && alignment < JM_SAMPLED_ALIGN) alignment = JM_SAMPLED_ALIGN;
        void *p = alignment <= MIN_ALIGN ? jm_call(JM_MALLOC, NULL, jm_request(size), 0)
                                         : jm_aligned(size, alignment);
        return lasts ? p : sample_slow(p, size);
    }
    return sample_tick(alloc_aligned(size, alignment), size);
}

static void *aligned_or_enomem(size_t alignment, size_t size) {
    void *p = aligned_sampled(alignment, size);
    if (unlikely(p == NULL)) errno = ENOMEM;
    return p;
}

void *mb_aligned_alloc(size_t alignment, size_t size) {
    if (!is_power_of_two(alignment)) { /* C17 DR 460, glibc >= 2.38 */
        errno = EINVAL;
        return NULL;
    }
    return aligned_or_enomem(alignment, size);
}

void *mb_memalign(size_t alignment, size_t size) {
    /* glibc: a non-power-of-two alignment is rounded up to the next one. */
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_power_of_two(alignment)) {
        size_t a = MIN_ALIGN;
        while (a < alignment) a <<= 1;
        alignment = a;
    }
    return aligned_or_enomem(alignment, size);
}

int mb_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!is_power_of_two(alignment) || alignment < sizeof(void *)) return EINVAL;
    void *p = aligned_sampled(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void *mb_valloc(size_t size) { return aligned_or_enomem(OS_PAGE_SIZE, size); }

void *mb_pvalloc(size_t size) {
    if (size > SIZE_MAX - OS_PAGE_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1);
    return aligned_or_enomem(OS_PAGE_SIZE, rounded ? rounded : OS_PAGE_SIZE);
}

size_t mb_malloc_usable_size(void *ptr) {
    return unlikely(jm_active) ? jm_usable_size(ptr) : alloc_usable_size(ptr);
}

#ifdef MB_DEBUG
/* The Threads: line of /proc/self/status, or 0 when it cannot be read. */
static unsigned process_thread_count(void) {
    char buf[4096];
    if (os_read_small_file("/proc/self/status", buf, sizeof buf) <= 0) return 0;
    const char *line = strstr(buf, "\nThreads:");
    if (line == NULL) return 0;
    unsigned n = 0;
    for (line += 9; *line == ' ' || *line == '\t'; line++) {
    }
    for (; *line >= '0' && *line <= '9'; line++) n = n * 10 + (unsigned)(*line - '0');
    return n;
}
#endif

int mb_malloc_trim(size_t pad) {
    (void)pad;
    size_t released = alloc_release(MEMBUDGET_LEVEL_CRITICAL);
    /* Debug builds check the counter against everything committed, which only
     * holds at a quiescent point: the calling thread is the only one. */
#ifdef MB_DEBUG
    if (process_thread_count() == 1) alloc_check_counter(mmap_charged_bytes(true));
#endif
    return released > 0;
}

static void fill_stats(struct membudget_stats *st) {
    alloc_stats(st, true);
    st->mmap_bytes = mmap_charged_bytes(true);
}

struct mallinfo2 mb_mallinfo2(void) {
    struct membudget_stats st;
    fill_stats(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.small_bytes;                    /* committed small/medium memory */
    mi.hblks = 0;
    mi.hblkhd = st.large_bytes;                   /* large spans */
    mi.uordblks = st.small_live_bytes + (st.large_bytes - st.large_cached_bytes);
    mi.fordblks = st.small_bytes > st.small_live_bytes ? st.small_bytes - st.small_live_bytes : 0;
    mi.fsmblks = st.large_cached_bytes;
    mi.keepcost = 0;
    return mi;
}

struct mallinfo mb_mallinfo(void) {
    struct mallinfo2 m2 = mb_mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    /* The old interface has int fields: saturate as glibc documents. */
#define CLAMP_INT(v) ((v) > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)(v))
    mi.arena = CLAMP_INT(m2.arena);
    mi.hblkhd = CLAMP_INT(m2.hblkhd);
    mi.uordblks = CLAMP_INT(m2.uordblks);
    mi.fordblks = CLAMP_INT(m2.fordblks);
    mi.fsmblks = CLAMP_INT(m2.fsmblks);
#undef CLAMP_INT
    return mi;
}

int mb_mallopt(int param, int value) {
    /* glibc's tunables (arenas, thresholds, trim) have no meaning here; accept
     * them so programs that set them keep working. */
    (void)param, (void)value;
    return 1;
}

void mb_malloc_stats(void) {
    static const char *const names[] = {"counter bytes", "peak bytes", "small bytes",
                                        "in use bytes", "large bytes", "mmap bytes", "threads"};
    struct membudget_stats st;
    fill_stats(&st);
    uint64_t values[] = {st.counter_bytes, st.counter_peak_bytes, st.small_bytes,
                         st.small_live_bytes + st.large_bytes - st.large_cached_bytes,
                         st.large_bytes, st.mmap_bytes, st.threads};
    char buf[512];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f,
               jm_active ? "membudget allocator (jemalloc backend)\n" : "membudget allocator\n");
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        mb_buf_str(&f, names[i]);
        mb_buf_str(&f, ": ");
        mb_buf_u64(&f, values[i]);
        mb_buf_char(&f, '\n');
    }
    os_write_all(2, f.data, f.len);
}

/* ---- the exported ABI: the platform's names for the mb_* entry points ------ */
#ifndef MB_NO_EXPORTS
#include MB_INTERPOSE_H /* the Makefile's platform block: preload/interpose_<os>.h */
#endif
