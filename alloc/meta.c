/* Metadata memory: heap structures, large-span records, the mapping table.
 * Kept apart from user data (a stray write into a user block cannot reach it)
 * and charged to the budget like any other commit.  Small requests come from
 * power-of-two free lists carved out of 64 KiB regions; big ones (tables that
 * grow) are mapped directly and unmapped on free. */
#include <string.h>

#include "alloc/internal.h"
#include "policy/budget.h"

#define META_REGION_BYTES ((size_t)64 << 10) /* charged whole: a small program pays 64 KiB */
#define META_DIRECT_MIN ((size_t)16 << 10)
#define META_BINS 11 /* 16 B .. 16 KiB */

static mb_lock_t meta_lock = MB_LOCK_INIT(LOCK_RANK_META);
static void *meta_bins[META_BINS];
static uint8_t *region_cursor, *region_end;
static uint64_t meta_committed; /* guarded by meta_lock */

static unsigned meta_bin(size_t size) {
    unsigned bin = 0;
    while (((size_t)16 << bin) < size) bin++;
    return bin;
}

void *meta_alloc(size_t size) {
    if (size == 0) size = 1;
    if (size >= META_DIRECT_MIN) {
        size_t bytes = (size + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1);
        if (!budget_charge(bytes)) return NULL;
        void *p = os_map(bytes);
        if (p == NULL) {
            budget_uncharge(bytes);
            return NULL;
        }
        mb_lock(&meta_lock);
        meta_committed += bytes;
        mb_unlock(&meta_lock);
        return p; /* fresh mappings read as zero */
    }
    unsigned bin = meta_bin(size);
    size_t bytes = (size_t)16 << bin;
    mb_lock(&meta_lock);
    void *p = meta_bins[bin];
    if (p != NULL) {
        meta_bins[bin] = *(void **)p;
        mb_unlock(&meta_lock);
        memset(p, 0, bytes);
        return p;
    }
    if (region_cursor == NULL || (size_t)(region_end - region_cursor) < bytes) {
        /* Charge and map outside the lock: a charge may enter the pressure code,
         * which must not run under the innermost lock.  The tail of the old
         * region is abandoned: less than the request, at most 16 KiB (a growing
         * table; heaps are 2 KiB) per 64 KiB. */
        mb_unlock(&meta_lock);
        if (!budget_charge(META_REGION_BYTES)) return NULL;
        uint8_t *region = os_map(META_REGION_BYTES);
        if (region == NULL) {
            budget_uncharge(META_REGION_BYTES);
            return NULL;
        }
        mb_lock(&meta_lock);
        meta_committed += META_REGION_BYTES;
        region_cursor = region;
        region_end = region + META_REGION_BYTES;
    }
    p = region_cursor;
    region_cursor += bytes;
    mb_unlock(&meta_lock);
    return p;
}

void meta_free(void *p, size_t size) {
    if (p == NULL) return;
    if (size == 0) size = 1;
    if (size >= META_DIRECT_MIN) {
        size_t bytes = (size + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1);
        os_unmap(p, bytes);
        budget_uncharge(bytes);
        mb_lock(&meta_lock);
        meta_committed -= bytes;
        mb_unlock(&meta_lock);
        return;
    }
    unsigned bin = meta_bin(size);
    mb_lock(&meta_lock);
    *(void **)p = meta_bins[bin];
    meta_bins[bin] = p;
    mb_unlock(&meta_lock);
}

uint64_t meta_bytes(bool wait) {
    int locked = mb_lock_stats(&meta_lock, wait);
    uint64_t bytes = meta_committed;
    if (locked) mb_unlock(&meta_lock);
    return bytes;
}

void meta_lock_all(void) { mb_lock(&meta_lock); }
void meta_unlock_all(void) { mb_unlock(&meta_lock); }
void meta_reset_locks(void) { mb_lock_reset(&meta_lock); }
