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

/* Release levels for membudget_release() and pressure callbacks, and one
 * notice that only pressure callbacks receive. */
enum membudget_level {
    MEMBUDGET_LEVEL_CONSERVATIVE = 1, /* free pages idle for a while */
    MEMBUDGET_LEVEL_STRICT = 2,       /* all free pages and caches */
    MEMBUDGET_LEVEL_CRITICAL = 3,     /* everything, synchronously */
    /* Not a release level: the process is active and its footprint has just
     * crossed the kill threshold it would have if it were inactive (WebKit's
     * doesExceedInactiveLimitWhileActive).  Nothing is released and nothing
     * fails, but if the process is made inactive (membudget_set_process_state)
     * at this size it is over its new limit.  Sent once per crossing: again
     * only after the footprint has fallen below 90% of that threshold and
     * crossed it once more.  It only applies when the kill threshold comes
     * from the jetsam model (no MEMBUDGET_LIMIT or membudget_set_limit) and the
     * inactive threshold is the lower one.  A callback that picks what to drop
     * by comparing levels should handle this value first: it is numerically
     * above MEMBUDGET_LEVEL_CRITICAL but asks for less.  membudget_release()
     * treats it as MEMBUDGET_LEVEL_CRITICAL. */
    MEMBUDGET_LEVEL_INACTIVE_LIMIT = 4
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
    uint64_t footprint_bytes;    /* counter + baseline, as membudget_footprint() */
    uint64_t baseline_bytes;     /* anonymous memory the counter does not see */
    uint64_t limit_bytes;        /* the kill threshold, as membudget_limit() */
    uint64_t policy;             /* 0 Unrestricted, 1 Conservative, 2 Strict,
                                    3 StrictSynchronous */
};

/* Fills *out with up to `size` bytes of the snapshot; returns the bytes filled. */
size_t membudget_stats(struct membudget_stats *out, size_t size);

/* Returns free memory to the OS at the given level, including the calling
 * thread's cached pages; returns the bytes released. */
size_t membudget_release(int level);

/* The footprint as the budget sees it, in bytes: what the allocator and the
 * application's anonymous mappings committed, plus the baseline (the rest of
 * the process's anonymous memory, as the monitor last measured it). */
size_t membudget_footprint(void);

/* The kill threshold in bytes. */
size_t membudget_limit(void);

/* Sets the kill threshold (and the base of the policy thresholds), over
 * MEMBUDGET_LIMIT; 0 goes back to the configured limit.  Returns 0, or -1 with
 * errno EINVAL for a limit under 1 MiB. */
int membudget_set_limit(size_t bytes);

/* Calls cb(level, arg) when the policy rises: MEMBUDGET_LEVEL_CONSERVATIVE,
 * MEMBUDGET_LEVEL_STRICT, then MEMBUDGET_LEVEL_CRITICAL for StrictSynchronous and
 * again before the process is judged at the kill threshold (unless it was just
 * called for StrictSynchronous); and with MEMBUDGET_LEVEL_INACTIVE_LIMIT, once
 * per crossing, when an active process passes the inactive kill threshold (see
 * enum membudget_level); and at the level `membudget release PID LEVEL` names.
 * The callback runs inside the allocation that crossed (or on the library's
 * thread: MEMBUDGET_MONITOR=thread, `membudget state`, `membudget release`,
 * a crossing found while idle): it may free and allocate
 * (its own allocations are never refused) but should be quick and must not wait
 * for another thread that may be allocating.
 * Returns 0, or -1 with errno EINVAL (NULL) or ENOMEM (table full). */
int membudget_on_pressure(void (*cb)(int level, void *arg), void *arg);

/* Calls cb(arg) just before the process is stopped for exceeding its budget
 * (MEMBUDGET_ACTION=abort), before the report is written.  Same return values. */
int membudget_on_kill(void (*cb)(void *arg), void *arg);

/* The process state and page count of the jetsam model (DESIGN §4); the
 * thresholds are recomputed at once.  active: non-zero for active. */
void membudget_set_process_state(int active);
void membudget_set_page_count(unsigned pages);

/* Writes a report (the death dump's format, reason "request") to path, or to
 * the default report path when path is NULL.  The file must not exist.
 * Returns 0, or -1 with errno set. */
int membudget_dump(const char *path);

#ifdef __cplusplus
}
#endif
#endif
