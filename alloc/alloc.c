/* The native allocator's entry points: routing by size and by owner, realloc,
 * release and scavenging; and what every backend shares: the sampling
 * countdown and hooks, the tick.  The native backend (native.c) adds errno and
 * sampling on top, the API layer (preload/) the rest of the C library's
 * contracts. */
#include <errno.h>
#include <string.h>

#include "alloc/fmt.h"
#include "alloc/internal.h"
#include "policy/budget.h"

/* Pages free this long are given back by the scavenger (DESIGN §2: keep what is
 * reused soon, release what stays free). */
#define SCAVENGE_DELAY_NS (100 * 1000000ull)
#define SCAVENGE_INTERVAL_NS (50 * 1000000ull)
#define LARGE_CACHE_DELAY_NS (500 * 1000000ull)

static _Atomic int init_state; /* 0 not started, 1 running, 2 done */
static _Atomic uint64_t last_scavenge_ns;

void alloc_init(void) {
    if (atomic_load_explicit(&init_state, memory_order_acquire) == 2) return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        alloc_checks_init(); /* before the first block is handed out */
        sizeclass_init();
        heap_init_globals();
        atomic_store_explicit(&last_scavenge_ns, os_now_ns(), memory_order_relaxed);
        atomic_store_explicit(&init_state, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2) os_yield();
}

__thread int64_t alloc_countdown __attribute__((tls_model("initial-exec")));

_Atomic uintptr_t native_lo = UINTPTR_MAX, native_hi;

void alloc_note_range(const void *p, size_t len) {
    uintptr_t lo = (uintptr_t)p, hi = lo + len;
    uintptr_t cur = atomic_load_explicit(&native_lo, memory_order_relaxed);
    while (lo < cur && !atomic_compare_exchange_weak_explicit(&native_lo, &cur, lo,
                                                             memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
    cur = atomic_load_explicit(&native_hi, memory_order_relaxed);
    while (hi > cur && !atomic_compare_exchange_weak_explicit(&native_hi, &cur, hi,
                                                             memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

void *alloc_aligned(size_t size, size_t align) {
    if (align <= MIN_ALIGN) return alloc_malloc(size);
    alloc_init(); /* the aligned class search reads the class table */
    unsigned class_index = sizeclass_for_aligned(size, align);
    if (class_index < CLASS_COUNT) return alloc_class(SIZE_MAX, class_index);
    return large_alloc(size, align, false);
}

void free_small_slow(struct chunk *chunk, struct page *page, void *p) {
#ifdef MB_DEBUG
    alloc_enter(ALLOC_OP_FREE);
#endif
    small_check(chunk, page, p, ALLOC_OP_FREE);
#ifdef MB_DEBUG
    page_check_free(page, p); /* the deeper checks: capacity, the owner's lists */
#endif
    if (unlikely(__atomic_load_n(&page->sampled, __ATOMIC_RELAXED)) &&
        atomic_load_explicit(sampled_filter_slot(p), memory_order_relaxed) != 0)
        alloc_sampled_free_small(page, p);
    free_small_push(page, p);
#ifdef MB_DEBUG
    alloc_leave();
#endif
}

/* NULL, a large span, or a pointer not ours: out of line, so that the small
 * block's free saves no register and makes no call. */
static __attribute__((noinline)) void free_not_small(void *p) {
    if (p == NULL) return;
    if (large_free(p)) return;
    large_check_unknown(p, ALLOC_OP_FREE);
#ifdef MB_DEBUG
    static const char msg[] = "membudget: free() of a pointer the allocator does not own; ignored\n";
    os_write_all(2, msg, sizeof msg - 1);
#endif
}

void alloc_free(void *p) {
    if (likely(chunk_has(p))) {
        free_small((struct chunk *)((uintptr_t)p & ~(uintptr_t)CHUNK_MASK), p);
        return;
    }
    free_not_small(p);
}

size_t alloc_usable_size(const void *p) {
    struct chunk *chunk = chunk_of(p);
    if (chunk != NULL) {
        struct page *page = page_of(chunk, p);
        small_check(chunk, page, p, ALLOC_OP_USABLE_SIZE);
        return __atomic_load_n(&page->block_size, __ATOMIC_RELAXED);
    }
    if (p == NULL) return 0;
    size_t size = large_usable_size(p);
    if (size == 0) large_check_unknown(p, ALLOC_OP_USABLE_SIZE);
    return size;
}

void *alloc_realloc(void *p, size_t size, bool *foreign) {
    *foreign = false;
    struct chunk *chunk = chunk_of(p);
    size_t old_usable;
    if (chunk != NULL) {
        struct page *page = page_of(chunk, p);
        small_check(chunk, page, p, ALLOC_OP_REALLOC);
        old_usable = page->block_size;
        /* Stay in place unless the block would be mostly empty. */
        if (size <= old_usable && (size >= old_usable / 2 || old_usable <= 128)) return p;
    } else {
        if (size > CLASS_MAX) {
            void *q = large_resize(p, size);
            if (q != NULL) return q;
        }
        old_usable = large_usable_size(p);
        if (old_usable == 0) {
            large_check_unknown(p, ALLOC_OP_REALLOC);
            *foreign = true;
            return NULL;
        }
        /* mremap said no (or the budget did: then the copy below fails too). */
    }
    void *q = alloc_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, size < old_usable ? size : old_usable);
    alloc_free(p);
    return q;
}

size_t native_release_shared(enum alloc_release_level level) {
    bool strict = level >= ALLOC_RELEASE_FREE;
    if (strict) heap_request_flush();
    heap_collect_abandoned();
    uint64_t now = os_now_ns();
    size_t released = chunk_scavenge(now, strict ? 0 : SCAVENGE_DELAY_NS);
    released += large_release_cache(now, strict ? 0 : LARGE_CACHE_DELAY_NS);
    return released;
}

size_t native_release(enum alloc_release_level level) {
    if (level >= ALLOC_RELEASE_FREE) heap_release_local();
    return native_release_shared(level);
}

static _Atomic(alloc_sample_fn) sample_hook;
static _Atomic(alloc_sample_free_fn) sample_free_hook;

void alloc_set_sample_hooks(alloc_sample_fn record, alloc_sample_free_fn retire) {
    atomic_store_explicit(&sample_free_hook, retire, memory_order_release);
    atomic_store_explicit(&sample_hook, record, memory_order_release);
}

void *alloc_sample_due(void *p, size_t size) {
    if (p == NULL) return p;
    alloc_sample_fn record = atomic_load_explicit(&sample_hook, memory_order_acquire);
    if (record == NULL) {
        alloc_countdown = ALLOC_SAMPLE_UNSET_BYTES;
        return p;
    }
    int saved_errno = errno; /* the unwinder may set it */
    /* First: the unwinder's own allocations must not come back here. */
    alloc_countdown = INT64_MAX;
    alloc_countdown = record(&p, size);
    errno = saved_errno;
    return p;
}

_Atomic uint8_t sampled_filter[(size_t)1 << SAMPLED_FILTER_BITS];

/* Saturating counters: one that reached 255 stays there. */
static void count_up(uint8_t *count) {
    uint8_t c = __atomic_load_n(count, __ATOMIC_RELAXED);
    while (c != UINT8_MAX && !__atomic_compare_exchange_n(count, &c, (uint8_t)(c + 1), true,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void count_down(uint8_t *count) {
    uint8_t c = __atomic_load_n(count, __ATOMIC_RELAXED);
    while (c != 0 && c != UINT8_MAX &&
           !__atomic_compare_exchange_n(count, &c, (uint8_t)(c - 1), true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
}

void alloc_mark_sampled(void *p) {
    struct chunk *chunk = chunk_of(p);
    if (chunk != NULL) {
        /* The filter first: a free that sees the page flagged finds it set. */
        count_up((uint8_t *)sampled_filter_slot(p));
        count_up(&page_of(chunk, p)->sampled);
    } else if (p != NULL) {
        large_mark_sampled(p);
    }
}

void alloc_filter_mark(const void *p) { count_up((uint8_t *)sampled_filter_slot(p)); }

void alloc_sampled_free_filtered(void *p) {
    alloc_sample_free_fn fn = atomic_load_explicit(&sample_free_hook, memory_order_acquire);
    if (fn != NULL && fn(p)) count_down((uint8_t *)sampled_filter_slot(p));
}

void alloc_sampled_free_small(struct page *page, void *p) {
    alloc_sample_free_fn fn = atomic_load_explicit(&sample_free_hook, memory_order_acquire);
    if (fn == NULL || !fn(p)) return;
    /* The page cannot be reinitialized meanwhile: p is not back on a list yet. */
    count_down(&page->sampled);
    count_down((uint8_t *)sampled_filter_slot(p));
}

void alloc_sampled_free(void *p) {
    alloc_sample_free_fn fn = atomic_load_explicit(&sample_free_hook, memory_order_acquire);
    if (fn != NULL) fn(p);
}

static _Atomic(alloc_tick_fn) tick_hook;

void alloc_set_tick_hook(alloc_tick_fn fn) {
    atomic_store_explicit(&tick_hook, fn, memory_order_release);
}

/* Runs on slow paths (a page taken or retired): at most every
 * SCAVENGE_INTERVAL_NS, one thread gives back what stayed free long enough. */
void alloc_tick(void) {
    uint64_t now = os_now_ns();
    alloc_tick_fn tick = atomic_load_explicit(&tick_hook, memory_order_acquire);
    if (tick != NULL) {
        /* From a consistent state: the hook may allocate (a fork child's
         * first tick starts the library's thread). */
        int inside = alloc_pause();
        tick(now);
        alloc_resume(inside);
    }
    uint64_t last = atomic_load_explicit(&last_scavenge_ns, memory_order_relaxed);
    if (now - last < SCAVENGE_INTERVAL_NS) return;
    if (!atomic_compare_exchange_strong_explicit(&last_scavenge_ns, &last, now,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    heap_collect_abandoned();
    chunk_scavenge(now, SCAVENGE_DELAY_NS);
    large_release_cache(now, LARGE_CACHE_DELAY_NS);
}

void native_atfork_prepare(void) {
    large_lock_all();
    chunk_lock_all();
    meta_lock_all();
}

void native_atfork_parent(void) {
    meta_unlock_all();
    chunk_unlock_all();
    large_unlock_all();
}

void native_atfork_child(void) {
    meta_reset_locks();
    chunk_reset_locks();
    large_reset_locks();
}

/* ---- debug support --------------------------------------------------------- */
#ifdef MB_DEBUG
static __thread unsigned held_ranks;

void lock_rank_acquire(int rank, int check) {
    if (check && (held_ranks >> rank) != 0) alloc_check_failed("lock rank inversion", __FILE__, __LINE__);
    held_ranks |= 1u << rank;
}

void lock_rank_release(int rank) { held_ranks &= ~(1u << rank); }

void alloc_check_failed(const char *what, const char *file, int line) {
    char buf[256];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f, "membudget: internal check failed: ");
    mb_buf_str(&f, what);
    mb_buf_str(&f, " (");
    mb_buf_str(&f, file);
    mb_buf_char(&f, ':');
    mb_buf_u64(&f, (uint64_t)line);
    mb_buf_str(&f, ")\n");
    os_write_all(2, f.data, f.len);
    __builtin_trap();
}
#endif

void alloc_check_counter(uint64_t charged_elsewhere) {
#ifdef MB_DEBUG
    struct chunk_stats cs;
    struct large_stats ls;
    chunk_stats(&cs, true);
    large_stats(&ls, true);
    uint64_t sum = cs.header_bytes + cs.committed_bytes + ls.span_bytes + ls.cached_bytes +
                   meta_bytes(true) + heap_credit_bytes() + charged_elsewhere;
    sum += alloc_backend.charged_bytes();
    uint64_t counter = budget_counter();
    if (sum != counter) {
        char buf[512];
        struct mb_buf f = mb_buf_on(buf, sizeof buf);
        mb_buf_str(&f, "membudget: counter ");
        mb_buf_u64(&f, counter);
        mb_buf_str(&f, " but committed: headers ");
        mb_buf_u64(&f, cs.header_bytes);
        mb_buf_str(&f, " pages ");
        mb_buf_u64(&f, cs.committed_bytes);
        mb_buf_str(&f, " spans ");
        mb_buf_u64(&f, ls.span_bytes);
        mb_buf_str(&f, " cached ");
        mb_buf_u64(&f, ls.cached_bytes);
        mb_buf_str(&f, " meta ");
        mb_buf_u64(&f, meta_bytes(true));
        mb_buf_str(&f, " credit ");
        mb_buf_u64(&f, heap_credit_bytes());
        mb_buf_str(&f, " elsewhere ");
        mb_buf_u64(&f, charged_elsewhere);
        mb_buf_char(&f, '\n');
        os_write_all(2, f.data, f.len);
    }
    mb_check(sum == counter, "budget counter differs from the committed total");
#else
    (void)charged_elsewhere;
#endif
}
