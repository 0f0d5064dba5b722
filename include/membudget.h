/* membudget — a memory budget for an unmodified process.
 *
 * These calls are for programs that want to cooperate with the budget: read the
 * footprint, release caches, inspect the allocator.  They work whether
 * libmembudget.so is preloaded (LD_PRELOAD) or linked (-lmembudget).  Every call
 * is cheap and none of them allocates. */
#ifndef MEMBUDGET_H
#define MEMBUDGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMBUDGET_VERSION "0.1.0"

/* Release levels for membudget_release() and pressure callbacks. */
enum membudget_level {
    MEMBUDGET_LEVEL_CONSERVATIVE = 1, /* free pages idle for a while */
    MEMBUDGET_LEVEL_STRICT = 2,       /* all free pages and caches */
    MEMBUDGET_LEVEL_CRITICAL = 3      /* everything, synchronously */
};

/* A snapshot of the allocator's own figures.  Fields are appended over time;
 * membudget_stats() fills at most `size` bytes, so older callers keep working. */
struct membudget_stats {
    uint64_t counter_bytes;      /* committed bytes charged to the budget */
    uint64_t counter_peak_bytes; /* the highest counter seen */
    uint64_t small_bytes;        /* committed small/medium pages (in use or cached) */
    uint64_t small_live_bytes;   /* bytes in blocks handed out and not yet freed */
    uint64_t large_bytes;        /* committed large spans, including the reuse cache */
    uint64_t large_cached_bytes; /* large spans kept for reuse */
    uint64_t mmap_bytes;         /* the application's charged anonymous mappings */
    uint64_t meta_bytes;         /* allocator metadata */
    uint64_t pages_in_use;       /* small/medium pages holding blocks */
    uint64_t pages_free;         /* committed pages waiting for reuse or release */
    uint64_t chunks;             /* chunks reserved from the OS */
    uint64_t threads;            /* thread heaps ever created */
    uint64_t threads_live;       /* thread heaps owned by a running thread */
    uint64_t released_bytes;     /* bytes returned to the OS so far */
};

/* Fills *out with up to `size` bytes of the snapshot; returns the bytes filled. */
size_t membudget_stats(struct membudget_stats *out, size_t size);

/* Returns free memory to the OS at the given level; returns the bytes released. */
size_t membudget_release(int level);

/* The footprint as the budget sees it, in bytes. */
size_t membudget_footprint(void);

#ifdef __cplusplus
}
#endif
#endif
