/* Large objects (above CLASS_MAX): page-aligned spans mapped directly, known
 * by a hash table of their start addresses (which also answers "is this ours?"
 * for any page-aligned pointer outside our chunks), with a cache of freed spans
 * so that a program that frees and reallocates big buffers does not pay an
 * mmap/munmap pair and a page fault per page every time.
 *
 * How much the cache keeps (cache_limit_locked): cached spans stay committed
 * and charged, so they count in the footprint.  While the footprint is under
 * the Conservative threshold the cache may hold half of the room left under
 * it (the policy layer tells it, alloc_set_headroom_hook), and no more than
 * the gap between the live large bytes and their recent peak (plus an
 * eighth): a program whose large data shrinks gets its memory back, one that
 * replaces blocks reuses their pages, and the footprint stays within what the
 * program itself held a moment ago.  At or over the threshold nothing is
 * kept; a policy rise and a release trim the cache to that rule at once.
 *
 * Budget rule, as everywhere: no charge is made while large_lock is held. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/internal.h"
#include "policy/budget.h"

#define LARGE_CACHE_SLOTS 32
#define LARGE_BUCKETS_MIN 256
/* The recent peak of the live large bytes: the higher of this window's and
 * the last one's. */
#define LARGE_PEAK_WINDOW_NS (1000 * 1000000ull)

struct span {
    uintptr_t addr; /* the user pointer: the start of the mapping */
    size_t size;    /* mapped bytes */
    uint64_t freed_ns;
    struct span *next;
    bool sampled; /* holds a sampled block: its free retires the sample */
};

static mb_lock_t large_lock = MB_LOCK_INIT(LOCK_RANK_LARGE);
static struct span **buckets;
static size_t bucket_count, span_count, span_bytes;
static struct span *cache[LARGE_CACHE_SLOTS];
static size_t cache_count, cache_bytes;
static uint64_t released_bytes;
static size_t peak_now, peak_prev; /* live span bytes: this window's peak, the last one's */
static uint64_t peak_window_ns;
static _Atomic(alloc_headroom_fn) headroom_hook;

void alloc_set_headroom_hook(alloc_headroom_fn fn) {
    atomic_store_explicit(&headroom_hook, fn, memory_order_release);
}

/* Starts a new peak window when the current one is over (frees advance it:
 * the peak seen since the last one stays the recent peak for one window). */
static void peak_advance_locked(uint64_t now) {
    if (now - peak_window_ns < LARGE_PEAK_WINDOW_NS) return;
    peak_prev = peak_now;
    peak_now = span_bytes;
    peak_window_ns = now;
}

/* The bytes the cache may hold now, with `incoming` bytes (charged, about to
 * be freed) not yet in it and `pending` bytes about to be charged: the smaller
 * of half the room under the Conservative threshold that the cache and the
 * incoming span leave, and the live bytes' distance to their recent peak plus
 * an eighth of that peak. */
static size_t cache_limit_locked(size_t incoming, size_t pending) {
    size_t recent = peak_now > peak_prev ? peak_now : peak_prev;
    size_t allowed = recent + recent / 8;
    size_t limit = allowed > span_bytes ? allowed - span_bytes : 0;
    alloc_headroom_fn hook = atomic_load_explicit(&headroom_hook, memory_order_acquire);
    if (hook != NULL) {
        uint64_t headroom = hook();
        if (headroom <= pending) return 0; /* at or over the threshold: keep nothing */
        headroom -= pending;
        uint64_t room = headroom + cache_bytes + incoming;
        if (room < headroom) room = UINT64_MAX; /* saturate */
        if (room / 2 < limit) limit = (size_t)(room / 2);
    }
    return limit;
}

/* The last LARGE_UNMAPPED_SLOTS ranges unmapped (a ring, guarded by
 * large_lock): a free of an address in one of them is a double free as long
 * as nobody mapped its page since, which large_check_unknown asks the kernel. */
#define LARGE_UNMAPPED_SLOTS 64
static struct {
    uintptr_t addr;
    size_t size;
} unmapped[LARGE_UNMAPPED_SLOTS];
static unsigned unmapped_next;

static void unmapped_note(uintptr_t addr, size_t size) {
    mb_lock(&large_lock);
    unmapped[unmapped_next].addr = addr;
    unmapped[unmapped_next].size = size;
    unmapped_next = (unmapped_next + 1) % LARGE_UNMAPPED_SLOTS;
    mb_unlock(&large_lock);
}

static inline size_t bucket_of(uintptr_t addr, size_t count) {
    return (size_t)(((addr >> 12) * 0x9e3779b97f4a7c15ull) >> 32) & (count - 1);
}

static struct span *hash_find(uintptr_t addr, struct span ***link_out) {
    if (bucket_count == 0) return NULL;
    struct span **link = &buckets[bucket_of(addr, bucket_count)];
    for (; *link != NULL; link = &(*link)->next) {
        if ((*link)->addr == addr) {
            if (link_out) *link_out = link;
            return *link;
        }
    }
    return NULL;
}

static void hash_insert_locked(struct span *span) {
    struct span **head = &buckets[bucket_of(span->addr, bucket_count)];
    span->next = *head;
    *head = span;
    span_count++;
    span_bytes += span->size;
    if (span_bytes > peak_now) peak_now = span_bytes;
}

static struct span *hash_remove_locked(uintptr_t addr) {
    struct span **link;
    struct span *span = hash_find(addr, &link);
    if (span == NULL) return NULL;
    *link = span->next;
    span->next = NULL;
    span_count--;
    span_bytes -= span->size;
    return span;
}

/* Makes sure the table can take one more span at a load factor of at most 1.
 * The new table is allocated outside the lock (meta_alloc may charge). */
static bool hash_reserve(void) {
    for (;;) {
        mb_lock(&large_lock);
        size_t count = bucket_count;
        if (count != 0 && span_count + 1 <= count) return true; /* returns locked */
        mb_unlock(&large_lock);
        size_t new_count = count ? count * 2 : LARGE_BUCKETS_MIN;
        struct span **fresh = meta_alloc(new_count * sizeof *fresh);
        if (fresh == NULL) return false;
        mb_lock(&large_lock);
        if (bucket_count != count) { /* another thread grew it meanwhile */
            mb_unlock(&large_lock);
            meta_free(fresh, new_count * sizeof *fresh);
            continue;
        }
        struct span **old = buckets;
        for (size_t i = 0; i < count; i++) {
            for (struct span *s = old[i], *next; s != NULL; s = next) {
                next = s->next;
                struct span **head = &fresh[bucket_of(s->addr, new_count)];
                s->next = *head;
                *head = s;
            }
        }
        buckets = fresh;
        bucket_count = new_count;
        mb_unlock(&large_lock);
        if (old) meta_free(old, count * sizeof *old);
    }
}

/* The smallest cached span that holds `need`, else the largest one.  The
 * caller trims a span too big, or grows one too small with mremap: either
 * costs one call, where a fresh span costs one page fault per page. */
static struct span *cache_take_locked(size_t need) {
    size_t best = LARGE_CACHE_SLOTS;
    for (size_t i = 0; i < cache_count; i++) {
        size_t size = cache[i]->size;
        if (best == LARGE_CACHE_SLOTS) {
            best = i;
            continue;
        }
        size_t current = cache[best]->size;
        bool fits = size >= need, current_fits = current >= need;
        if ((fits && (!current_fits || size < current)) || (!fits && !current_fits && size > current))
            best = i;
    }
    if (best == LARGE_CACHE_SLOTS) return NULL;
    struct span *span = cache[best];
    cache[best] = cache[--cache_count];
    cache_bytes -= span->size;
    return span;
}

static void span_destroy(struct span *span) {
    unmapped_note(span->addr, span->size);
    os_unmap((void *)span->addr, span->size);
    budget_uncharge(span->size);
    meta_free(span, sizeof *span);
}

/* Keeps [addr, addr + size), a piece cut off a cached span, in the cache as a
 * span of its own: its pages are warm.  Unmaps it when no record can be had or
 * the cache is full. */
static void cache_put_piece(uintptr_t addr, size_t size, uint64_t now) {
    struct span *piece = meta_alloc(sizeof *piece);
    if (piece != NULL) {
        piece->addr = addr;
        piece->size = size;
        piece->freed_ns = now;
        piece->sampled = false;
        piece->next = NULL;
        mb_lock(&large_lock);
        if (cache_count < LARGE_CACHE_SLOTS) {
            cache[cache_count++] = piece;
            cache_bytes += size;
            mb_unlock(&large_lock);
            return;
        }
        released_bytes += size;
        mb_unlock(&large_lock);
        meta_free(piece, sizeof *piece);
    }
    unmapped_note(addr, size);
    os_unmap((void *)addr, size);
    budget_uncharge(size);
}

/* Takes the cached span idle longest, or none when the cache is empty. */
static struct span *cache_take_oldest_locked(void) {
    if (cache_count == 0) return NULL;
    size_t oldest = 0;
    for (size_t i = 1; i < cache_count; i++)
        if (cache[i]->freed_ns < cache[oldest]->freed_ns) oldest = i;
    struct span *span = cache[oldest];
    cache[oldest] = cache[--cache_count];
    cache_bytes -= span->size;
    return span;
}

/* Takes the cached span that starts right where [addr, addr + size) ends. */
static struct span *cache_take_adjacent_locked(uintptr_t end) {
    for (size_t i = 0; i < cache_count; i++) {
        struct span *span = cache[i];
        if (span->addr != end) continue;
        cache[i] = cache[--cache_count];
        cache_bytes -= span->size;
        return span;
    }
    return NULL;
}

/* Whether a cached span holds `need` bytes: a span that cannot grow in place is
 * then copied into its resident pages rather than grown by mremap into fresh
 * ones, each of which costs a fault worth several times copying its bytes. */
static bool cache_holds_locked(size_t need) {
    for (size_t i = 0; i < cache_count; i++)
        if (cache[i]->size >= need) return true;
    return false;
}

/* Before `need` fresh bytes are charged: drops the spans idle longest until
 * the cache fits its limit with those bytes counted, so that a charge reaches
 * the Conservative threshold only with the cache empty, never because of it. */
static void cache_make_room(size_t need) {
    for (;;) {
        mb_lock(&large_lock);
        struct span *victim = NULL;
        if (cache_count > 0 && cache_bytes > cache_limit_locked(0, need)) {
            victim = cache_take_oldest_locked();
            released_bytes += victim->size;
        }
        mb_unlock(&large_lock);
        if (victim == NULL) return;
        span_destroy(victim);
    }
}

static size_t round_to_pages(size_t size) {
    if (size > SIZE_MAX - OS_PAGE_SIZE) return 0;
    return (size + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1);
}

void *large_alloc(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX) return NULL;
    if (size == 0) size = 1; /* an over-aligned request for nothing still gets a page */
    size_t need = round_to_pages(size);
    if (need == 0) return NULL;
    struct span *span = NULL;
    if (align <= OS_PAGE_SIZE) {
        mb_lock(&large_lock);
        span = cache_take_locked(need);
        mb_unlock(&large_lock);
        if (span != NULL && span->size >= need && span->size - need > need / 4) {
            /* Too big: the rest stays cached, warm, for the next request (or
             * for this span to grow back into). */
            cache_put_piece(span->addr + need, span->size - need, os_now_ns());
            span->size = need;
        } else if (span != NULL && span->size < need) {
            long r = -1;
            if (budget_charge(need - span->size)) {
                r = os_remap((void *)span->addr, span->size, need);
                if (os_failed(r)) budget_uncharge(need - span->size);
            }
            if (os_failed(r)) {
                span_destroy(span); /* no budget or no address space: start afresh */
                span = NULL;
            } else {
                size_t old_size = span->size;
                if ((uintptr_t)r != span->addr) unmapped_note(span->addr, old_size);
                span->addr = (uintptr_t)r;
                span->size = need;
                alloc_note_range((void *)r, need);
                if (zero) memset((void *)span->addr, 0, old_size); /* the grown tail is fresh */
                zero = false;
            }
        }
        if (span != NULL && zero) memset((void *)span->addr, 0, size);
    }
    if (span == NULL) {
        alloc_tick();
        cache_make_room(need);
        span = meta_alloc(sizeof *span);
        if (span == NULL) return NULL;
        if (!budget_charge(need)) {
            meta_free(span, sizeof *span);
            return NULL;
        }
        void *addr = os_map_aligned(need, align < OS_PAGE_SIZE ? OS_PAGE_SIZE : align);
        if (addr == NULL) {
            budget_uncharge(need);
            meta_free(span, sizeof *span);
            return NULL;
        }
        span->addr = (uintptr_t)addr;
        span->size = need;
        alloc_note_range(addr, need);
    }
    span->sampled = false;
    if (!hash_reserve()) {
        span_destroy(span);
        return NULL;
    }
    hash_insert_locked(span);
    mb_unlock(&large_lock);
    return (void *)span->addr;
}

void large_mark_sampled(void *p) {
    mb_lock(&large_lock);
    struct span *span = hash_find((uintptr_t)p, NULL);
    if (span != NULL) span->sampled = true;
    mb_unlock(&large_lock);
}

bool large_free(void *p) {
    if (((uintptr_t)p & (OS_PAGE_SIZE - 1)) != 0) return false;
    uint64_t now = os_now_ns();
    struct span *victim = NULL;
    mb_lock(&large_lock);
    struct span *span = hash_remove_locked((uintptr_t)p);
    if (span == NULL) {
        mb_unlock(&large_lock);
        return false;
    }
    if (span->sampled) {
        /* Retire the sample before the span can be reused. */
        span->sampled = false;
        mb_unlock(&large_lock);
        alloc_sampled_free(p);
        mb_lock(&large_lock);
    }
    /* Keep it for reuse within the cache's limit; make room by evicting the
     * span that has been idle longest.  The scavenger drops spans idle for a
     * while, and a policy rise or budget pressure trims the cache. */
    peak_advance_locked(now);
    size_t cache_limit = cache_limit_locked(span->size, 0);
    /* Coalesce with cached neighbours (pieces split off earlier), so the cache
     * holds a few large warm spans rather than many small ones. */
    struct span *merged[2] = {NULL, NULL};
    struct span *after = cache_take_adjacent_locked(span->addr + span->size);
    if (after != NULL) {
        span->size += after->size;
        merged[0] = after;
    }
    for (size_t i = 0; i < cache_count; i++) {
        struct span *before = cache[i];
        if (before->addr + before->size != span->addr) continue;
        cache[i] = cache[--cache_count];
        cache_bytes -= before->size;
        span->addr = before->addr;
        span->size += before->size;
        merged[1] = before;
        break;
    }
    if (merged[0] || merged[1]) {
        mb_unlock(&large_lock);
        for (int i = 0; i < 2; i++)
            if (merged[i]) meta_free(merged[i], sizeof *merged[i]);
        mb_lock(&large_lock);
    }
    victim = span;
    /* Evict down to the limit, with room for this span when it fits: the
     * limit shrinks as the footprint nears the threshold. */
    bool keep = span->size <= cache_limit;
    size_t want = keep ? span->size : 0;
    while (cache_count > 0 && ((keep && cache_count == LARGE_CACHE_SLOTS) ||
                               cache_bytes + want > cache_limit)) {
        struct span *evicted = cache_take_oldest_locked();
        released_bytes += evicted->size;
        mb_unlock(&large_lock);
        span_destroy(evicted);
        mb_lock(&large_lock);
    }
    if (keep && cache_count < LARGE_CACHE_SLOTS && cache_bytes + span->size <= cache_limit) {
        span->freed_ns = now;
        cache[cache_count++] = span;
        cache_bytes += span->size;
        victim = NULL;
    }
    if (victim) released_bytes += victim->size;
    mb_unlock(&large_lock);
    if (victim) span_destroy(victim);
    return true;
}

size_t large_usable_size(const void *p) {
    if (((uintptr_t)p & (OS_PAGE_SIZE - 1)) != 0) return 0;
    mb_lock(&large_lock);
    struct span *span = hash_find((uintptr_t)p, NULL);
    size_t size = span ? span->size : 0;
    mb_unlock(&large_lock);
    return size;
}

/* Grows the live span in place to `need` bytes (or a little more) into a
 * cached piece that follows it: no call, no fault.  *spare: a record the
 * piece no longer needs, freed by the caller once unlocked. */
static bool grow_into_tail_locked(struct span *span, size_t need, struct span **spare) {
    struct span *tail = cache_take_adjacent_locked(span->addr + span->size);
    if (tail == NULL) return false;
    if (span->size + tail->size < need) { /* too small to help: back it goes */
        cache[cache_count++] = tail;
        cache_bytes += tail->size;
        return false;
    }
    size_t combined = span->size + tail->size;
    if (combined - need > need / 4) {
        /* Take what is needed; the rest stays cached (in the slot the piece
         * just left, under the same record). */
        tail->addr = span->addr + need;
        tail->size = combined - need;
        cache[cache_count++] = tail;
        cache_bytes += tail->size;
        tail = NULL;
        combined = need;
    }
    span_bytes += combined - span->size;
    span->size = combined;
    *spare = tail;
    return true;
}

void *large_resize(void *p, size_t new_size) {
    if (new_size > PTRDIFF_MAX) return NULL;
    size_t need = round_to_pages(new_size);
    if (need == 0) return NULL;
    mb_lock(&large_lock);
    struct span *span = hash_find((uintptr_t)p, NULL);
    if (span == NULL) {
        mb_unlock(&large_lock);
        return NULL;
    }
    if (need <= span->size && need >= span->size / 2) {
        mb_unlock(&large_lock);
        return p;
    }
    /* A span that grows by realloc is likely to grow again (string builders,
     * vectors): grow it by at least a quarter, so appends do not cost an mremap
     * each.  The waste stays within the quarter the size classes allow. */
    if (need > span->size) {
        size_t step = round_to_pages(span->size + span->size / 4);
        if (step > need) need = step;
    }
    if (need > span->size) {
        struct span *spare = NULL;
        if (grow_into_tail_locked(span, need, &spare)) {
            mb_unlock(&large_lock);
            if (spare != NULL) meta_free(spare, sizeof *spare);
            return p;
        }
        if (cache_holds_locked(need)) {
            /* Moving into warm pages beats growing into fresh ones: the
             * caller (alloc_realloc) copies into a new block, which
             * large_alloc takes from the cache. */
            mb_unlock(&large_lock);
            return NULL;
        }
    }
    hash_remove_locked((uintptr_t)p);
    bool sampled = span->sampled;
    span->sampled = false;
    mb_unlock(&large_lock);
    if (sampled) alloc_sampled_free(p); /* the block moves or changes: the record ends */
    size_t old = span->size;
    if (need > old && !budget_charge(need - old)) goto restore;
    long r = os_remap(p, old, need);
    if (os_failed(r)) {
        if (need > old) budget_uncharge(need - old);
        goto restore;
    }
    if (need < old) budget_uncharge(old - need);
    if ((uintptr_t)r != (uintptr_t)p) unmapped_note((uintptr_t)p, old);
    span->addr = (uintptr_t)r;
    span->size = need;
    alloc_note_range((void *)r, need);
    p = (void *)r;
    if (!hash_reserve()) {
        /* Cannot record it: give the memory back rather than lose track. */
        span_destroy(span);
        return NULL;
    }
    hash_insert_locked(span);
    mb_unlock(&large_lock);
    return p;
restore:
    mb_lock(&large_lock);
    hash_insert_locked(span); /* the slot it left is still there */
    mb_unlock(&large_lock);
    return NULL;
}

size_t large_release_cache(uint64_t now_ns, uint64_t min_age_ns) {
    size_t released = 0;
    for (;;) {
        struct span *victim = NULL;
        mb_lock(&large_lock);
        for (size_t i = 0; i < cache_count; i++) {
            if (now_ns - cache[i]->freed_ns >= min_age_ns) {
                victim = cache[i];
                cache[i] = cache[--cache_count];
                cache_bytes -= victim->size;
                break;
            }
        }
        /* Then down to the limit the headroom and the recent peak allow now:
         * nothing once the policy has left Unrestricted. */
        if (victim == NULL && cache_bytes > cache_limit_locked(0, 0)) victim = cache_take_oldest_locked();
        if (victim != NULL) released_bytes += victim->size;
        mb_unlock(&large_lock);
        if (victim == NULL) return released;
        released += victim->size;
        span_destroy(victim);
    }
}

void large_check_unknown(const void *p, enum alloc_op op) {
    uintptr_t a = (uintptr_t)p;
    uintptr_t lo = atomic_load_explicit(&native_lo, memory_order_relaxed);
    if (a - lo >= atomic_load_explicit(&native_hi, memory_order_relaxed) - lo) return;
    uintptr_t start = 0;
    size_t size = 0;
    bool live = false, cached = false, unmapped_hit = false;
    mb_lock(&large_lock);
    for (size_t i = 0; i < bucket_count && !live; i++) {
        for (struct span *s = buckets[i]; s != NULL; s = s->next) {
            if (a - s->addr < s->size) {
                start = s->addr, size = s->size, live = true;
                break;
            }
        }
    }
    for (size_t i = 0; i < cache_count && !live && !cached; i++) {
        if (a - cache[i]->addr < cache[i]->size)
            start = cache[i]->addr, size = cache[i]->size, cached = true;
    }
    /* The newest first: an address unmapped twice was last one of these. */
    for (unsigned k = 1; k <= LARGE_UNMAPPED_SLOTS && !live && !cached && !unmapped_hit; k++) {
        unsigned i = (unmapped_next + LARGE_UNMAPPED_SLOTS - k) % LARGE_UNMAPPED_SLOTS;
        if (unmapped[i].size != 0 && a - unmapped[i].addr < unmapped[i].size)
            start = unmapped[i].addr, size = unmapped[i].size, unmapped_hit = true;
    }
    mb_unlock(&large_lock);
    if (live || cached) large_misuse_report(p, op, cached, start, size);
    /* Mapped again since, by someone else: not ours any more. */
    if (unmapped_hit && !os_page_mapped(p)) large_misuse_report(p, op, true, start, size);
}

void large_stats(struct large_stats *out, bool wait) {
    int locked = mb_lock_stats(&large_lock, wait);
    out->spans = span_count;
    out->span_bytes = span_bytes;
    out->cached = cache_count;
    out->cached_bytes = cache_bytes;
    out->released_bytes = released_bytes;
    if (locked) mb_unlock(&large_lock);
}

void large_lock_all(void) { mb_lock(&large_lock); }
void large_unlock_all(void) { mb_unlock(&large_lock); }
void large_reset_locks(void) { mb_lock_reset(&large_lock); }
