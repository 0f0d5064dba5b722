/* The native backend (alloc/backend.h): the native allocator's entry points
 * with errno and sampling, as the exported functions of preload/api.c reach
 * them through the backend table.  The fast paths (alloc/internal.h) are
 * inlined here, so that a malloc is one indirect jump from the exported symbol
 * into native_malloc, then the code a direct call would run. */
#include <errno.h>
#include <string.h>

#include "alloc/internal.h"

/* A failed allocation sets errno (alloc/alloc.h). */
static inline void *enomem_if_null(void *p) {
    if (unlikely(p == NULL)) errno = ENOMEM;
    return p;
}

/* The sampling countdown's whole cost on the fast path: one subtraction and
 * one branch. */
static inline void *sample_tick(void *p, size_t size) {
    if (unlikely(!countdown_take(size))) return alloc_sample_due(p, size);
    return p;
}

/* Everything but a pop from a class's direct page with the countdown lasting:
 * large spans, the heap's slow path, the sample.  Out of line, so that the
 * fast path below saves no register and makes no call. */
static __attribute__((noinline)) void *native_malloc_slow(size_t size) {
    return sample_tick(enomem_if_null(alloc_malloc(size)), size);
}

#ifndef MB_DEBUG
/* The class's direct page is empty and the countdown lasted (and is taken):
 * the heap's slow path, straight. */
static __attribute__((noinline)) void *native_refill(struct heap *heap, size_t size,
                                                     unsigned class_index) {
    return enomem_if_null(heap_alloc_slow(heap, size, class_index));
}
#endif

/* The fast path: the class (a table lookup up to CLASS_TABLE_MAX, a bit scan
 * above), the thread's heap, the countdown and a pop.  The countdown is taken
 * here only when it lasts; when it runs out, the slow path takes the bytes off
 * it itself (exactly once) and samples. */
static void *native_malloc(size_t size) {
#ifndef MB_DEBUG /* the debug build's re-entry marks are alloc_class's */
    unsigned class_index;
    if (likely(size <= CLASS_TABLE_MAX))
        class_index = class_table[(size + 15) >> 4];
    else if (size <= CLASS_MAX)
        class_index = sizeclass_above_table(size);
    else
        return native_malloc_slow(size);
    struct heap *heap = tls_heap;
    struct page *page = heap->direct[class_index];
    struct block *block = page->free;
    int64_t left = (int64_t)((uint64_t)alloc_countdown - size);
    if (likely(left >= 0)) {
        alloc_countdown = left;
        if (likely(block != NULL)) {
            page_hand_out(page, block);
            return block;
        }
        return native_refill(heap, size, class_index);
    }
#endif
    return native_malloc_slow(size);
}

static void *native_calloc(size_t bytes) {
    void *p;
    if (bytes <= CLASS_MAX) {
        p = alloc_small(bytes);
        if (p != NULL) memset(p, 0, bytes);
    } else {
        p = large_alloc(bytes, OS_PAGE_SIZE, true); /* fresh mappings are zero already */
    }
    return sample_tick(enomem_if_null(p), bytes);
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

static void *native_realloc(void *p, size_t size) {
    bool foreign;
    void *q = alloc_realloc(p, size, &foreign);
    if (unlikely(foreign)) {
        /* Memory from before we took over, or from another allocator: move it
         * into a block of ours and leave the old one alone. */
        q = alloc_malloc(size);
        if (q != NULL) copy_readable(q, p, size);
    }
    /* A block resized in place and sampled again replaces its old sample. */
    return sample_tick(enomem_if_null(q), size);
}

static void *native_aligned(size_t size, size_t align) {
    return sample_tick(enomem_if_null(alloc_aligned(size, align)), size);
}

static bool native_owns(const void *p) {
    return chunk_of(p) != NULL || (p != NULL && large_usable_size(p) != 0);
}

static const char *native_start(void) { return NULL; } /* serving from the first allocation */

static void *native_sample_prepare(void *p, size_t size) {
    (void)size;
    return p; /* every native block can be marked where it is */
}

static size_t native_figures(struct alloc_figure *out, size_t cap) {
    (void)out, (void)cap;
    return 0;
}

static uint64_t native_charged_bytes(void) { return 0; }

#define NATIVE_BACKEND                                                                             \
    {                                                                                              \
        .name = "native", .start = native_start, .malloc = native_malloc, .calloc = native_calloc, \
        .realloc = native_realloc, .free = alloc_free, .aligned = native_aligned,                  \
        .usable_size = alloc_usable_size, .owns = native_owns, .release = native_release,          \
        .release_shared = native_release_shared, .sample_prepare = native_sample_prepare,          \
        .mark_sampled = alloc_mark_sampled, .stats = native_stats, .classes = native_classes,      \
        .figures = native_figures, .charged_bytes = native_charged_bytes,                          \
        .atfork_prepare = native_atfork_prepare, .atfork_parent = native_atfork_parent,            \
        .atfork_child = native_atfork_child,                                                       \
    }

const struct alloc_backend alloc_backend_native = NATIVE_BACKEND;

/* The table in use (alloc/backend.h): the native allocator from the first
 * allocation on, until the constructor chooses (alloc/backend.c).  It has a
 * page of its own, which the choice then makes read-only: every entry point
 * jumps through it, so a stray write must not be able to redirect them. */
union alloc_backend_page alloc_backend_page __attribute__((aligned(MB_OS_PROTECT_PAGE))) = {
    .backend = NATIVE_BACKEND};
#ifdef MB_OS_DATA_ALIAS /* the platform's way, where it has no alias attribute */
MB_OS_DATA_ALIAS(struct alloc_backend, alloc_backend, alloc_backend_page);
#else
extern struct alloc_backend alloc_backend __attribute__((alias("alloc_backend_page")));
#endif
