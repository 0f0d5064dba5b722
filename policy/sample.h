/* Allocation sampling (DESIGN §6): one allocation in every MEMBUDGET_SAMPLE
 * bytes, on average, records its backtrace (libunwind) into a fixed table of
 * deduplicated stacks, the allocation sites.  Each site keeps the live samples
 * attributed to it and the bytes and objects they stand for.  A sampled block
 * is kept in a fixed table of addresses, and the allocator flags its page or
 * span, so that its free retires the sample.
 *
 * Intervals are drawn from an exponential distribution of mean R (the sampling
 * rate), as jemalloc and tcmalloc do: an allocation of s bytes is then sampled
 * with probability p = 1 - exp(-s/R), whatever came before it, and a sample
 * stands for s/p bytes and 1/p objects.  The sum over live samples is an
 * unbiased estimate of the live bytes of the site.
 *
 * Rules: nothing here calls malloc or stdio.  The address table and site
 * lookups are lock-free; adding a new site takes the sample lock
 * (LOCK_RANK_SAMPLE), only by trying for a bounded time (a sample that cannot
 * have it goes to the "stack not recorded" site), and never while allocating.
 * A thread-local guard keeps the unwinder's own allocations from being
 * sampled. */
#ifndef MEMBUDGET_POLICY_SAMPLE_H
#define MEMBUDGET_POLICY_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_SAMPLE_MAX_FRAMES 32    /* innermost frames kept per stack */
#define MB_SAMPLE_SITES 16384      /* distinct stacks; later ones go to the overflow site */
#define MB_SAMPLE_LIVE_SLOTS 65536 /* live sampled blocks at once */
/* The site that takes samples whose stack could not be recorded (site table
 * full, or its lock busy for too long).  It has no frames. */
#define MB_SAMPLE_OVERFLOW_SITE MB_SAMPLE_SITES

/* Sets the rate (bytes; 0 turns sampling off) and installs the allocator's
 * free hook.  From the constructor. */
void mb_sample_init(uint64_t sample_bytes);
uint64_t mb_sample_rate(void);

/* Records the allocation *p of `size` bytes, just made by this thread, as a
 * sample, and returns the bytes to allocate before the next one (INT64_MAX when
 * sampling is off).  The caller sets its countdown to INT64_MAX before the
 * call, so allocations made while unwinding are not sampled.  The allocator
 * may move a block it is about to sample (alloc_backend.sample_prepare): *p is then
 * the new block, with the same contents. */
int64_t mb_sample_allocation(void **p, size_t size);

/* A site as the dump reads it (lock-free: counters may be mid-update). */
struct mb_site_view {
    uint64_t est_bytes;        /* live bytes the samples stand for */
    uint64_t est_objects_1024; /* live objects they stand for, times 1024 */
    uint64_t live_samples;     /* samples not yet freed */
    uint64_t live_bytes;       /* their own sizes */
    uint64_t total_samples;    /* samples ever taken here */
    uint32_t depth;
    const uintptr_t *frames; /* return addresses, innermost first */
};
/* Fills *out for site i (0 <= i <= MB_SAMPLE_OVERFLOW_SITE); false when the
 * slot holds no site. */
bool mb_sample_site(size_t i, struct mb_site_view *out);

/* The top site, for the live-statistics page: the recorded site (never the
 * overflow site, which has no stack) whose samples stand for the most live
 * bytes, or MB_SAMPLE_NO_SITE when no recorded site holds a live sample.
 *
 * Lock-free, no allocation, and cheap enough for a monitor tick:
 *  - full: compares every recorded site, through a dense array of their
 *    estimates kept beside the table in the order sites were recorded (its
 *    cost grows with the sites recorded, not with the 16K-slot table, and
 *    reads 8 contiguous bytes a site: measured 1 us for 16 sites, 2-3 us for
 *    1K, 15-25 us with the table full at 14K sites);
 *  - otherwise: compares only `current` (the caller's last answer) with the
 *    leader hint, the last site whose estimate grew past the leader's at a
 *    sample (two loads at each sample keep it).  A leader that shrinks while
 *    no other site grows is only replaced by the next full pass.
 * Counters may be mid-update: the answer is an estimate either way. */
#define MB_SAMPLE_NO_SITE UINT32_MAX
uint32_t mb_sample_top_site(bool full, uint32_t current);

struct mb_sample_stats {
    uint64_t rate_bytes;      /* 0: off */
    uint64_t samples;         /* ever taken */
    uint64_t live_samples;    /* in the address table now */
    uint64_t dropped;         /* not kept: the address table had no room */
    uint64_t unrecorded;      /* kept without their stack (overflow site) */
    uint64_t sites;           /* distinct stacks recorded */
    uint64_t unwind_failures; /* backtraces that came back empty */
};
void mb_sample_stats(struct mb_sample_stats *out);

/* Fork.  First of all (before any allocator lock, since an unwinding thread may
 * be allocating), quiesce: new samples skip the unwinder and fork waits (at
 * most 2 s) until no thread is inside it, so libunwind's own locks are free in
 * the child.  Then the sample lock is taken (rank order, after the allocator's)
 * and released or reset; the child also draws new intervals.  Its samples
 * stay: the memory they describe was copied into it. */
void mb_sample_atfork_quiesce(void);
void mb_sample_atfork_prepare(void);
void mb_sample_atfork_parent(void);
void mb_sample_atfork_child(void);

#endif
