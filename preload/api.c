/* The malloc family with the C library's contracts, written once for every
 * backend: overflow checks, alignment rules, glibc's realloc(NULL, n) and
 * realloc(p, 0), and errno for what is decided here; then the backend in use
 * (alloc/backend.h), which sets errno when an allocation fails and is safe
 * with pointers we never handed out.  The mb_* functions carry the behaviour;
 * the exported names are aliases of them, so a sanitizer build can link the
 * same code without exporting malloc (-DMB_NO_EXPORTS). */
#include <errno.h>
#if __has_include(<malloc.h>) /* glibc's mallinfo; elsewhere the platform's header has it */
#include <malloc.h>
#endif
#include <stdbool.h>
#include <string.h>

#include "alloc/alloc.h"
#include "alloc/fmt.h"
#include "membudget.h"
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

/* ---- the malloc family ------------------------------------------------------
 * The contracts first, then a tail call through the backend table
 * (alloc/backend.h): one indirect jump, whichever backend serves.  The
 * backends set errno to ENOMEM when an allocation fails. */

__attribute__((aligned(64))) void *mb_malloc(size_t size) { return alloc_backend.malloc(size); }

__attribute__((aligned(64))) void mb_free(void *ptr) { alloc_backend.free(ptr); }

void *mb_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_backend.calloc(total);
}

void *mb_realloc(void *ptr, size_t size) {
    if (ptr == NULL) return mb_malloc(size);
    if (size == 0) { /* glibc: frees and returns NULL */
        mb_free(ptr);
        return NULL;
    }
    return alloc_backend.realloc(ptr, size);
}

void *mb_reallocarray(void *ptr, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return mb_realloc(ptr, total);
}

void *mb_aligned_alloc(size_t alignment, size_t size) {
    if (!is_power_of_two(alignment)) { /* C17 DR 460, glibc >= 2.38 */
        errno = EINVAL;
        return NULL;
    }
    return alloc_backend.aligned(size, alignment);
}

void *mb_memalign(size_t alignment, size_t size) {
    /* glibc: a non-power-of-two alignment is rounded up to the next one. */
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_power_of_two(alignment)) {
        size_t a = ALLOC_MIN_ALIGN;
        while (a < alignment) a <<= 1;
        alignment = a;
    }
    return alloc_backend.aligned(size, alignment);
}

/* Reports failure in its result alone: errno stays as it was. */
int mb_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!is_power_of_two(alignment) || alignment < sizeof(void *)) return EINVAL;
    int saved_errno = errno;
    void *p = alloc_backend.aligned(size, alignment);
    if (p == NULL) {
        errno = saved_errno;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void *mb_valloc(size_t size) { return alloc_backend.aligned(size, OS_PAGE_SIZE); }

void *mb_pvalloc(size_t size) {
    if (size > SIZE_MAX - OS_PAGE_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1);
    return alloc_backend.aligned(rounded ? rounded : OS_PAGE_SIZE, OS_PAGE_SIZE);
}

size_t mb_malloc_usable_size(void *ptr) { return alloc_backend.usable_size(ptr); }

int mb_malloc_trim(size_t pad) {
    (void)pad;
    size_t released = alloc_backend.release(ALLOC_RELEASE_CRITICAL);
    /* Debug builds check the counter against everything committed, which only
     * holds at a quiescent point: the calling thread is the only one. */
#ifdef MB_DEBUG
    if (os_thread_count() == 1) alloc_check_counter(mmap_charged_bytes(true));
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
    mb_buf_str(&f, "membudget allocator");
    if (!alloc_backend_is_default()) {
        mb_buf_str(&f, " (");
        mb_buf_str(&f, alloc_backend.name);
        mb_buf_str(&f, " backend)");
    }
    mb_buf_char(&f, '\n');
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
