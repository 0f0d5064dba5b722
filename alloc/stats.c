/* The allocator's figures for membudget_stats(), the exit summary and the
 * dump: gathered on demand from the owners' own records, so the fast paths
 * keep no counters. */
#include <string.h>

#include "alloc/internal.h"
#include "membudget.h"
#include "policy/budget.h"

void alloc_stats(struct membudget_stats *out, bool wait) {
    memset(out, 0, sizeof *out);
    alloc_backend.stats(out, wait);
    out->counter_bytes = budget_counter();
    out->counter_peak_bytes = budget_peak();
}

void native_stats(struct membudget_stats *out, bool wait) {
    struct chunk_stats cs;
    struct large_stats ls;
    chunk_stats(&cs, wait);
    large_stats(&ls, wait);
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

_Static_assert(CLASS_COUNT <= ALLOC_CLASS_ROWS_MAX, "a row for every size class");

size_t native_classes(struct alloc_class_row *out, size_t cap, bool wait) {
    struct chunk_stats cs;
    chunk_stats(&cs, wait);
    size_t n = 0;
    for (unsigned c = 0; c < CLASS_COUNT && n < cap; c++)
        if (cs.class_live_blocks[c] != 0)
            out[n++] = (struct alloc_class_row){c, class_block_size[c], cs.class_live_bytes[c],
                                                cs.class_live_blocks[c]};
    return n;
}
