/* mmap, munmap and mremap, wrapped through raw system calls (DESIGN §3).
 *
 * An anonymous mapping created writable and without MAP_NORESERVE is charged in
 * full at mmap and uncharged by exactly the overlap at munmap; MAP_FIXED over
 * an old mapping and mremap keep the record straight.  Reservations
 * (PROT_NONE, MAP_NORESERVE) and file mappings are not charged.  The record is
 * a sorted table of charged ranges in our own metadata; the table lock is held
 * across the system call so that an address the kernel reuses cannot be
 * confused with the range it replaced. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/alloc.h"
#include "policy/budget.h"
#include "preload/preload.h"

struct range {
    uintptr_t start, end;
};

static mb_lock_t mmap_lock = MB_LOCK_INIT(LOCK_RANK_MMAP);
static struct range *ranges; /* sorted by start, disjoint */
static size_t range_count, range_capacity;
static _Atomic size_t range_count_hint; /* lets munmap skip the lock when nothing is charged */
static uint64_t charged_bytes;

static inline uintptr_t page_round_up(uintptr_t x) {
    return (x + OS_PAGE_SIZE - 1) & ~(uintptr_t)(OS_PAGE_SIZE - 1);
}

/* Takes the lock with room for `extra` more ranges; false if none can be had. */
static bool table_lock_with_room(size_t extra) {
    for (;;) {
        mb_lock(&mmap_lock);
        if (range_count + extra <= range_capacity) return true;
        size_t old_capacity = range_capacity;
        mb_unlock(&mmap_lock);
        size_t new_capacity = old_capacity ? old_capacity * 2 : 256;
        struct range *fresh = meta_alloc(new_capacity * sizeof *fresh);
        if (fresh == NULL) return false;
        mb_lock(&mmap_lock);
        struct range *old = NULL;
        if (range_capacity == old_capacity) {
            if (range_count) memcpy(fresh, ranges, range_count * sizeof *fresh);
            old = ranges;
            ranges = fresh;
            range_capacity = new_capacity;
            fresh = NULL;
        }
        mb_unlock(&mmap_lock);
        if (fresh) meta_free(fresh, new_capacity * sizeof *fresh);
        if (old) meta_free(old, old_capacity * sizeof *old);
    }
}

/* The first range that ends after `addr`. */
static size_t table_lower_bound(uintptr_t addr) {
    size_t lo = 0, hi = range_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ranges[mid].end <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static uint64_t table_overlap(uintptr_t start, uintptr_t end) {
    uint64_t bytes = 0;
    for (size_t i = table_lower_bound(start); i < range_count && ranges[i].start < end; i++) {
        uintptr_t s = ranges[i].start > start ? ranges[i].start : start;
        uintptr_t e = ranges[i].end < end ? ranges[i].end : end;
        bytes += e - s;
    }
    return bytes;
}

static void table_update_hint(void) {
    atomic_store_explicit(&range_count_hint, range_count, memory_order_relaxed);
}

/* Forgets [start, end); returns the bytes that were charged there.  Needs room
 * for one more range (a hole punched in the middle splits a range in two). */
static uint64_t table_remove(uintptr_t start, uintptr_t end) {
    uint64_t removed = 0;
    size_t i = table_lower_bound(start);
    while (i < range_count && ranges[i].start < end) {
        struct range r = ranges[i];
        uintptr_t s = r.start > start ? r.start : start;
        uintptr_t e = r.end < end ? r.end : end;
        removed += e - s;
        if (r.start < start && r.end > end) { /* split */
            memmove(&ranges[i + 2], &ranges[i + 1], (range_count - i - 1) * sizeof *ranges);
            ranges[i].end = start;
            ranges[i + 1].start = end;
            ranges[i + 1].end = r.end;
            range_count++;
            break;
        }
        if (r.start < start) {
            ranges[i].end = start;
            i++;
        } else if (r.end > end) {
            ranges[i].start = end;
            i++;
        } else {
            memmove(&ranges[i], &ranges[i + 1], (range_count - i - 1) * sizeof *ranges);
            range_count--;
        }
    }
    charged_bytes -= removed;
    table_update_hint();
    return removed;
}

static void table_insert(uintptr_t start, uintptr_t end) {
    size_t i = table_lower_bound(start);
    memmove(&ranges[i + 1], &ranges[i], (range_count - i) * sizeof *ranges);
    ranges[i].start = start;
    ranges[i].end = end;
    range_count++;
    charged_bytes += end - start;
    table_update_hint();
}

static bool mapping_is_charged(int prot, int flags) {
    return (flags & MAP_ANONYMOUS) && (prot & PROT_WRITE) && !(flags & MAP_NORESERVE);
}

static void *mb_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    bool charge = mapping_is_charged(prot, flags) && len != 0;
    size_t bytes = page_round_up(len);
    if (len != 0 && bytes == 0) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    bool fixed = (flags & MAP_FIXED) != 0;
    if (!charge && !fixed) { /* nothing of ours to record */
        long r = os_mmap(addr, len, prot, flags, fd, off);
        if (os_failed(r)) {
            errno = (int)-r;
            return MAP_FAILED;
        }
        return (void *)r;
    }
    if (charge && !budget_charge(bytes)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    if (!table_lock_with_room(2)) {
        if (charge) budget_uncharge(bytes);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = os_mmap(addr, len, prot, flags, fd, off);
    uint64_t replaced = 0;
    if (!os_failed(r)) {
        if (fixed) replaced = table_remove((uintptr_t)r, (uintptr_t)r + bytes);
        if (charge) table_insert((uintptr_t)r, (uintptr_t)r + bytes);
    }
    mb_unlock(&mmap_lock);
    if (os_failed(r)) {
        if (charge) budget_uncharge(bytes);
        errno = (int)-r;
        return MAP_FAILED;
    }
    if (replaced) budget_uncharge(replaced);
    return (void *)r;
}

static int mb_munmap(void *addr, size_t len) {
    if (atomic_load_explicit(&range_count_hint, memory_order_relaxed) == 0) {
        long r = os_munmap(addr, len);
        if (r < 0) {
            errno = (int)-r;
            return -1;
        }
        return 0;
    }
    if (!table_lock_with_room(1)) {
        errno = ENOMEM;
        return -1;
    }
    long r = os_munmap(addr, len);
    uint64_t removed = 0;
    if (r == 0) removed = table_remove((uintptr_t)addr, (uintptr_t)addr + page_round_up(len));
    mb_unlock(&mmap_lock);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    if (removed) budget_uncharge(removed);
    return 0;
}

/* Unused where the OS has no mremap (the platform's exports, MB_MMAP_EXPORTS_H). */
__attribute__((unused)) static void *mb_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr) {
    uintptr_t old_start = (uintptr_t)old_addr;
    uintptr_t old_bytes = page_round_up(old_len), new_bytes = page_round_up(new_len);
    bool keep_old = (flags & MREMAP_DONTUNMAP) != 0;
    /* Charge a growth before the call, so a budget that says no fails it; the
     * exact figure, known after the call under the lock, settles the estimate. */
    if (!table_lock_with_room(3)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    uint64_t old_charged = old_len ? table_overlap(old_start, old_start + old_bytes) : 0;
    mb_unlock(&mmap_lock);
    bool fully = old_len != 0 && old_charged == old_bytes;
    uint64_t estimate = 0;
    if (fully && keep_old) estimate = new_bytes; /* the old range stays mapped */
    else if (fully && new_bytes > old_bytes) estimate = new_bytes - old_bytes;
    if (estimate && !budget_charge(estimate)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    if (!table_lock_with_room(3)) {
        if (estimate) budget_uncharge(estimate);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = os_mremap(old_addr, old_len, new_len, flags, new_addr);
    uint64_t removed = 0, added = 0;
    if (!os_failed(r) && old_len != 0) {
        old_charged = table_overlap(old_start, old_start + old_bytes);
        fully = old_charged == old_bytes;
        if (!keep_old) removed = table_remove(old_start, old_start + old_bytes);
        if (fully) {
            /* MREMAP_FIXED unmapped whatever was at the target. */
            removed += table_remove((uintptr_t)r, (uintptr_t)r + new_bytes);
            table_insert((uintptr_t)r, (uintptr_t)r + new_bytes);
            added = new_bytes;
        }
    }
    mb_unlock(&mmap_lock);
    if (os_failed(r)) {
        if (estimate) budget_uncharge(estimate);
        errno = (int)-r;
        return MAP_FAILED;
    }
    /* Net change: added - removed; the estimate already covered part of it. */
    int64_t net = (int64_t)added - (int64_t)removed - (int64_t)estimate;
    if (net > 0) budget_charge_committed((size_t)net);
    else if (net < 0) budget_uncharge((size_t)-net);
    return (void *)r;
}

uint64_t mmap_charged_bytes(bool wait) {
    int locked = mb_lock_stats(&mmap_lock, wait);
    uint64_t bytes = charged_bytes;
    if (locked) mb_unlock(&mmap_lock);
    return bytes;
}

void mmap_atfork_prepare(void) { mb_lock(&mmap_lock); }
void mmap_atfork_parent(void) { mb_unlock(&mmap_lock); }
void mmap_atfork_child(void) { mb_lock_reset(&mmap_lock); }

#ifndef MB_NO_EXPORTS
#include MB_MMAP_EXPORTS_H /* the Makefile's platform block: preload/mmap_<os>.h */
#endif
