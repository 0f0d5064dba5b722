/* The malloc family as a test sees it.  Built two ways from one source:
 *  - preload mode (default): plain malloc/free, the test runs under LD_PRELOAD;
 *  - linked mode (-DMBTEST_LINKED): the allocator objects are linked in with
 *    sanitizers and the test calls their internal entry points (mb_*), because a
 *    sanitizer runtime owns the malloc symbol itself. */
#ifndef MEMBUDGET_TESTS_MBTEST_H
#define MEMBUDGET_TESTS_MBTEST_H

#include <stddef.h>
#include <stdlib.h>
#include <malloc.h>
#include "membudget.h"

#ifdef MBTEST_LINKED
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
#define T_MALLOC mb_malloc
#define T_CALLOC mb_calloc
#define T_REALLOC mb_realloc
#define T_REALLOCARRAY mb_reallocarray
#define T_FREE mb_free
#define T_ALIGNED_ALLOC mb_aligned_alloc
#define T_MEMALIGN mb_memalign
#define T_POSIX_MEMALIGN mb_posix_memalign
#define T_VALLOC mb_valloc
#define T_PVALLOC mb_pvalloc
#define T_USABLE_SIZE mb_malloc_usable_size
#define T_TRIM mb_malloc_trim
#define MBTEST_HAVE_API 1
#else
#define T_MALLOC malloc
#define T_CALLOC calloc
#define T_REALLOC realloc
#define T_REALLOCARRAY reallocarray
#define T_FREE free
#define T_ALIGNED_ALLOC aligned_alloc
#define T_MEMALIGN memalign
#define T_POSIX_MEMALIGN posix_memalign
#define T_VALLOC valloc
#define T_PVALLOC pvalloc
#define T_USABLE_SIZE malloc_usable_size
#define T_TRIM malloc_trim
/* The public API resolves when the library is preloaded; weak, so the same test
 * binary can also run without it (then MBTEST_HAVE_API() is false). */
#pragma weak membudget_stats
#pragma weak membudget_release
#pragma weak membudget_footprint
#define MBTEST_HAVE_API (&membudget_stats != NULL)
#endif

#endif
