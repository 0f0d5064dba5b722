/* The allocator's figures for membudget_stats(), the exit summary and, later,
 * the dump: gathered on demand from the owners' own records, so the fast paths
 * keep no counters. */
#include <string.h>

#include "alloc/internal.h"
#include "alloc/jemalloc.h"
#include "membudget.h"
#include "policy/budget.h"


void alloc_stats(struct membudget_stats *out, bool wait) {
    if (jm_active) {
        jm_stats(out);
        out->counter_bytes = budget_counter();
        out->counter_peak_bytes = budget_peak();
        return;
    }
    struct chunk_stats cs;
    struct large_stats ls;
    chunk_stats(&cs, wait);
    large_stats(&ls, wait);
    memset(out, 0, sizeof *out);
    out->counter_bytes = budget_counter();
    out->counter_peak_bytes = budget_peak();
    out->small_bytes = cs.committed_bytes + cs.header_bytes;
    out->small_live_bytes = cs.live_bytes;
    out->large_bytes = ls.span_bytes + ls.cached_bytes;
    out->large_cached_bytes = ls.cached_bytes;
    out->meta_bytes = meta_bytes(wait);
    out->pages_in_use = cs.pages_in_use;
    out->pages_free = cs.pages_free_committed;
    out->chunks = cs.chunks;
    out->threads = heap_count(wait);
    out->threads_live = heap_count_live(wait);
    out->released_bytes = cs.released_bytes + ls.released_bytes;
}

void alloc_class_stats(uint64_t *live_bytes, uint64_t *live_blocks, bool wait) {
    struct chunk_stats cs;
    chunk_stats(&cs, wait);
    memcpy(live_bytes, cs.class_live_bytes, sizeof cs.class_live_bytes);
    memcpy(live_blocks, cs.class_live_blocks, sizeof cs.class_live_blocks);
}
