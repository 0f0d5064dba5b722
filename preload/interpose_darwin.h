/* Symbol interposition on Darwin (alloc/os.h, the platform interface): dyld's
 * __DATA,__interpose section.  Each tuple names a replacement and the function
 * it replaces; when the library is inserted (DYLD_INSERT_LIBRARIES), dyld
 * binds every other image's calls of the replacee to the replacement, while
 * the library's own calls still reach libSystem.  Included at the end of
 * preload/api.c (MB_INTERPOSE_H, set by the Makefile's darwin block); mmap and
 * munmap are in preload/mmap_darwin.h, the malloc zone (malloc_zone_*,
 * CoreFoundation, Objective-C) in preload/zone_darwin.c.
 *
 * The ABI of preload/exports.map, name by name:
 *   interposed   malloc calloc realloc reallocarray free valloc posix_memalign
 *                aligned_alloc, and Darwin's own malloc_size malloc_good_size
 *                reallocf reallocarrayf
 *   exported     cfree memalign pvalloc malloc_usable_size malloc_trim mallinfo
 *                mallinfo2 mallopt malloc_stats: libSystem has none of them,
 *                so only a program linked against us calls them
 *   not on Darwin  __libc_* and __posix_memalign (glibc's internal names),
 *                mmap64 and mremap (no such calls)
 *
 * Blocks allocated by the system's zone before the library started (dyld and
 * libSystem's initializers run first) may come back to free, realloc and
 * malloc_size: they go to the zone that owns them. */
#ifndef MEMBUDGET_PRELOAD_INTERPOSE_DARWIN_H
#define MEMBUDGET_PRELOAD_INTERPOSE_DARWIN_H

#include <malloc/malloc.h>
#include <stdlib.h>

#include "preload/darwin.h"

struct mb_interpose {
    const void *replacement;
    const void *replacee;
};
#define MB_INTERPOSE(replacement, replacee)                                                        \
    __attribute__((used)) static const struct mb_interpose mb_interpose_##replacee                 \
        __attribute__((section("__DATA,__interpose"))) = {(const void *)(replacement),             \
                                                          (const void *)(replacee)}

/* The allocating entry points: a thread not yet ready (preload/darwin.h) is
 * served by the system's zone. */
static void *mb_darwin_malloc(size_t size) {
    if (!mb_darwin_thread_ready()) return malloc_zone_malloc(mb_darwin_system_zone(), size);
    return mb_malloc(size);
}

static void *mb_darwin_calloc(size_t count, size_t size) {
    if (!mb_darwin_thread_ready()) return malloc_zone_calloc(mb_darwin_system_zone(), count, size);
    return mb_calloc(count, size);
}

static void *mb_darwin_valloc(size_t size) {
    if (!mb_darwin_thread_ready()) return malloc_zone_valloc(mb_darwin_system_zone(), size);
    return mb_valloc(size);
}

static int mb_darwin_posix_memalign(void **out, size_t alignment, size_t size) {
    if (mb_darwin_thread_ready()) return mb_posix_memalign(out, alignment, size);
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = malloc_zone_memalign(mb_darwin_system_zone(), alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

static void *mb_darwin_aligned_alloc(size_t alignment, size_t size) {
    if (mb_darwin_thread_ready()) return mb_aligned_alloc(alignment, size);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return malloc_zone_memalign(mb_darwin_system_zone(), alignment, size);
}

/* The system zone that owns p, for a block that is not ours; NULL when none
 * does (then p is ours, or not a heap block at all). */
static malloc_zone_t *foreign_zone(const void *p) {
    if (p == NULL || alloc_backend.usable_size(p) != 0) return NULL;
    return malloc_zone_from_ptr(p);
}

static void mb_darwin_free(void *p) {
    malloc_zone_t *zone = foreign_zone(p);
    if (zone != NULL) malloc_zone_free(zone, p);
    else mb_free(p);
}

static void *mb_darwin_realloc(void *p, size_t size) {
    if (p == NULL) return mb_darwin_malloc(size);
    malloc_zone_t *zone = foreign_zone(p);
    if (zone == NULL) return mb_realloc(p, size);
    if (!mb_darwin_thread_ready()) return malloc_zone_realloc(zone, p, size);
    /* A block of the system's: ours from now on. */
    size_t old = malloc_size(p);
    void *q = mb_malloc(size ? size : 1);
    if (q == NULL) return NULL;
    memcpy(q, p, old < size ? old : size);
    malloc_zone_free(zone, p);
    return q;
}

static void *mb_darwin_reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return mb_darwin_realloc(p, total);
}

/* reallocarrayf: reallocarray that frees the old block when it fails. */
static void *mb_darwin_reallocarrayf(void *p, size_t count, size_t size) {
    void *q = mb_darwin_reallocarray(p, count, size);
    if (q == NULL && p != NULL && count != 0 && size != 0) mb_darwin_free(p);
    return q;
}

/* libSystem's reallocarray and reallocarrayf carry the $DARWIN_EXTSN suffix
 * and the SDK's headers do not declare them. */
void *sys_reallocarray(void *p, size_t count, size_t size) __asm__("_reallocarray$DARWIN_EXTSN");
void *sys_reallocarrayf(void *p, size_t count, size_t size) __asm__("_reallocarrayf$DARWIN_EXTSN");

/* BSD's reallocf: frees the old block when the new one cannot be had. */
static void *mb_darwin_reallocf(void *p, size_t size) {
    void *q = mb_darwin_realloc(p, size);
    if (q == NULL && p != NULL && size != 0) mb_darwin_free(p);
    return q;
}

static size_t mb_darwin_malloc_size(const void *p) {
    size_t n = p != NULL ? alloc_backend.usable_size(p) : 0;
    return n != 0 || p == NULL ? n : malloc_size(p);
}

/* The size malloc(n) really gives: what a block of n bytes can hold. */
size_t mb_darwin_good_size(size_t n) {
    if (!mb_darwin_thread_ready()) return malloc_good_size(n);
    void *p = mb_malloc(n ? n : 1);
    if (p == NULL) return n;
    size_t usable = alloc_backend.usable_size(p);
    mb_free(p);
    return usable;
}

MB_INTERPOSE(mb_darwin_malloc, malloc);
MB_INTERPOSE(mb_darwin_calloc, calloc);
MB_INTERPOSE(mb_darwin_realloc, realloc);
MB_INTERPOSE(mb_darwin_reallocarray, sys_reallocarray);
MB_INTERPOSE(mb_darwin_reallocarrayf, sys_reallocarrayf);
MB_INTERPOSE(mb_darwin_reallocf, reallocf);
MB_INTERPOSE(mb_darwin_free, free);
MB_INTERPOSE(mb_darwin_valloc, valloc);
MB_INTERPOSE(mb_darwin_posix_memalign, posix_memalign);
MB_INTERPOSE(mb_darwin_aligned_alloc, aligned_alloc);
MB_INTERPOSE(mb_darwin_malloc_size, malloc_size);
MB_INTERPOSE(mb_darwin_good_size, malloc_good_size);

/* The names libSystem lacks, exported for programs linked against us. */
#define MB_EXPORT_AS(ret, name, params, call)                                                      \
    ret name params __attribute__((visibility("default")));                                        \
    ret name params { return call; }
MB_EXPORT_AS(void, cfree, (void *p), mb_darwin_free(p))
MB_EXPORT_AS(void *, memalign, (size_t alignment, size_t size), mb_memalign(alignment, size))
MB_EXPORT_AS(void *, pvalloc, (size_t size), mb_pvalloc(size))
MB_EXPORT_AS(size_t, malloc_usable_size, (void *p), mb_malloc_usable_size(p))
MB_EXPORT_AS(int, malloc_trim, (size_t pad), mb_malloc_trim(pad))
MB_EXPORT_AS(struct mallinfo, mallinfo, (void), mb_mallinfo())
MB_EXPORT_AS(struct mallinfo2, mallinfo2, (void), mb_mallinfo2())
MB_EXPORT_AS(int, mallopt, (int param, int value), mb_mallopt(param, value))
MB_EXPORT_AS(void, malloc_stats, (void), mb_malloc_stats())
#undef MB_EXPORT_AS

#endif
