/* The allocator's types and invariants (DESIGN §2), and its internal map:
 * declarations are grouped under the file that owns them.  Private to alloc/:
 * the layers above include alloc/alloc.h. */
#ifndef MEMBUDGET_ALLOC_INTERNAL_H
#define MEMBUDGET_ALLOC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "alloc/lock.h"
#include "alloc/os.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#ifdef MB_DEBUG
void alloc_check_failed(const char *what, const char *file, int line) __attribute__((noreturn));
#define mb_check(cond, what)                                                       \
    do {                                                                           \
        if (unlikely(!(cond))) alloc_check_failed(what, __FILE__, __LINE__);       \
    } while (0)
#else
#define mb_check(cond, what) ((void)0)
#endif

/* ---- geometry ---------------------------------------------------------- */
#define CHUNK_SHIFT 22 /* 4 MiB chunks, aligned to their size */
#define CHUNK_SIZE ((size_t)1 << CHUNK_SHIFT)
#define CHUNK_MASK (CHUNK_SIZE - 1)
#define SMALL_PAGE_SHIFT 16  /* 64 KiB pages for blocks up to SMALL_MAX */
#define MEDIUM_PAGE_SHIFT 19 /* 512 KiB pages for blocks up to MEDIUM_MAX */
#define BIG_PAGE_SHIFT 21    /* 2 MiB pages for blocks up to CLASS_MAX */
#define CHUNK_PAGES_MAX 64   /* CHUNK_SIZE >> SMALL_PAGE_SHIFT */
#define SMALL_MAX ((size_t)8 << 10)
#define MEDIUM_MAX ((size_t)64 << 10)
#define CLASS_MAX ((size_t)256 << 10) /* above: large spans */
#define MIN_ALIGN ALLOC_MIN_ALIGN
/* Blocks carved from a page per extension: untouched memory stays untouched. */
#define EXTEND_BYTES 4096
/* Page memory is committed and charged in units of this size as the page's
 * free list is extended, so a 2 MiB page holding one block costs 16 KiB, and a
 * program using 30 small classes is charged 480 KiB for them, not 1.9 MiB.
 * The unit is what a charge costs (one budget_charge per unit, from the heap's
 * credit) against how far the counter runs ahead of what is touched. */
#define COMMIT_UNIT ((size_t)16 << 10)
#define ADDRESS_BITS 48

/* ---- size classes (sizeclass.c) ---------------------------------------- */
/* 16-byte steps up to 256; above, each doubling (2^b, 2^(b+1)] starts with a
 * header class of 2^b + 16 bytes, then has 4 classes (up to 1 KiB) or 8 (up
 * to CLASS_MAX; internal waste under 12.5%).  The
 * header class is there because requests cluster just above powers of two:
 * a power-of-two buffer with a header, or a layer over malloc that prefixes
 * its own (sqlite's 8-byte size: 1032 and 4104-byte blocks), would otherwise
 * waste up to an eighth of every block. */
#define CLASS_COUNT 98
#define CLASS_TABLE_MAX 8192 /* sizes up to here map through class_table */
#define CLASS_HEADER_BYTES 16
#define CLASS_FIRST_WIDE 26 /* the first class of the 8-per-doubling range */
extern uint8_t class_table[CLASS_TABLE_MAX / 16 + 1];
extern uint32_t class_block_size[CLASS_COUNT];
void sizeclass_init(void);
/* The class of a size in (2^bit, 2^(bit+1)] with `steps` classes after the
 * header class: 0 for the header class, else 1 + the step. */
static inline unsigned sizeclass_step(size_t size, unsigned bit, unsigned steps_log2) {
    size_t s = size - 1;
    unsigned step = 1u + (unsigned)((s >> (bit - steps_log2)) & ((1u << steps_log2) - 1u));
    return s - ((size_t)1 << bit) < CLASS_HEADER_BYTES ? 0u : step;
}
/* The class of 1 KiB < size <= CLASS_MAX (inline: the malloc fast path's
 * lookup above the table). */
static inline unsigned sizeclass_above_table(size_t size) {
    unsigned bit = 63u - (unsigned)__builtin_clzll(size - 1); /* size in (2^bit, 2^(bit+1)], bit >= 10 */
    return CLASS_FIRST_WIDE + (bit - 10u) * 9u + sizeclass_step(size, bit, 3);
}
/* The class of size <= CLASS_MAX, by arithmetic: the table's source. */
static inline unsigned sizeclass_compute(size_t size) {
    if (size <= 256) return size == 0 ? 0 : (unsigned)((size - 1) >> 4);
    if (size > 1024) return sizeclass_above_table(size);
    unsigned bit = 63u - (unsigned)__builtin_clzll(size - 1); /* 8 or 9 */
    return 16u + (bit - 8u) * 5u + sizeclass_step(size, bit, 2);
}
static inline unsigned sizeclass_of(size_t size) {
    if (likely(size <= CLASS_TABLE_MAX)) return class_table[(size + 15) >> 4];
    return sizeclass_above_table(size);
}
/* The smallest class holding `size` bytes whose blocks are all aligned to
 * `align`; CLASS_COUNT when the request needs a large span. */
unsigned sizeclass_for_aligned(size_t size, size_t align);

/* ---- pages ------------------------------------------------------------- */
/* A free block.  Both words live in the block's first 16 bytes (blocks are at
 * least 16 bytes and 16-byte aligned), so they share one cache line, the line
 * a free writes anyway. */
struct block {
    struct block *next;
    /* block_free_mark(block) while the block is on a free list, cleared when it
     * is handed out: a free that finds the mark is a double free (check.c). */
    uintptr_t free_mark;
};

/* Keys the free mark; random per process, its top bit set, so a mark is never
 * a user-space pointer (a block pointing at itself, as an empty circular list
 * does, cannot look free) and other data matches it by accident with a chance
 * of about 2^-63.  Set once by alloc_init, before the first block exists. */
extern uintptr_t alloc_free_key __attribute__((visibility("hidden")));
static inline uintptr_t block_free_mark(const void *p) { return (uintptr_t)p ^ alloc_free_key; }

struct heap;

/* thread_free tag bits (blocks are 16-byte aligned, so the low bits are free). */
#define TF_FULL ((uintptr_t)1)   /* page sits on its heap's full list */
#define TF_QUEUED ((uintptr_t)2) /* page pushed on its heap's revisit stack */
#define TF_TAGS (TF_FULL | TF_QUEUED)

enum page_state { PAGE_FREE = 0, PAGE_IN_USE = 1 };

struct page {
    /* Hot: the fields the malloc and free fast paths touch share one cache line
     * (the descriptor is 64-byte aligned). */
    /* Owner-only (the thread that owns `heap`): */
    _Alignas(64) struct block *free; /* allocation pops here */
    struct block *local_free;        /* the owner's frees; moved to `free` when it runs dry */
    /* Remote frees push here with one CAS; tags in the low bits (TF_*). */
    _Atomic uintptr_t thread_free;
    _Atomic(struct heap *) heap;
    /* Tells a block's start from any other address in the page without a
     * division (Lemire, Kaser and Kurz's divisibility test): for an offset
     * below 2^32, offset % block_size == 0 exactly when
     * offset * block_magic < block_magic (mod 2^64).  UINT64_MAX / block_size + 1
     * while the page is in use; 0 while it is free, so that every offset fails.
     * Written with block_size. */
    uint64_t block_magic;
    /* Blocks handed out and not yet back on `free`/`local_free`: includes blocks
     * sitting in thread_free.  used == 0 means every block is free.  Written by
     * the owner only; read racily by statistics (hence relaxed atomic). */
    _Atomic uint32_t used;
    uint32_t block_size; /* 0 while the page is free */
    uint32_t capacity;   /* blocks carved so far (lazy extension) */
    uint8_t class_index; /* kept when the page is freed: the class it last held */
    uint8_t on_full; /* on the heap's full list rather than its class queue */
    uint8_t state;   /* enum page_state; changed under the pool lock or by the owner */
    uint8_t index;   /* position in the chunk */
    /* Sampled blocks live on the page (DESIGN §6): their free must retire the
     * sample.  Counted up when a sampled block is handed out (by the owner, or
     * by a realloc in place) and down by the free that retires one (atomic
     * read-modify-writes; at 255 it stays, and the page stays flagged until it
     * is reinitialized, which zeroes it).  Read by any freeing thread
     * (relaxed): 0, the common case, costs a free nothing more. */
    uint8_t sampled;
    /* Bytes from the page start that are committed and charged: grown by the
     * owner in COMMIT_UNITs, zeroed by the scavenger while the page is free. */
    _Atomic uint32_t commit_bytes;
    /* Cold: */
    uint32_t reserved;         /* blocks that fit in the page */
    struct page *next, *prev;  /* the heap's class queue or full list */
    struct page *revisit_next; /* the heap's revisit stack */
    uint64_t free_since_ns;    /* when it went back to the pool */
};

/* ---- chunks (chunk.c) -------------------------------------------------- */
enum chunk_kind { CHUNK_SMALL = 1, CHUNK_MEDIUM = 2, CHUNK_BIG = 3 };
#define CHUNK_KINDS 4

/* A chunk is CHUNK_SIZE bytes aligned to CHUNK_SIZE.  Its first page holds this
 * header (page 0 is never handed out).  free_mask/committed_mask are guarded by
 * the pool lock of its kind. */
struct chunk {
    uint8_t kind;       /* enum chunk_kind */
    uint8_t page_shift; /* *_PAGE_SHIFT of its kind */
    uint16_t page_count;
    /* (1 << page_shift) - 1: an address's offset in its page is one AND away
     * (the free path's block-start test) */
    uintptr_t page_mask;
    uint64_t free_mask;      /* pages not assigned to a heap (bit 0 never set) */
    uint64_t committed_mask; /* free pages with commit_bytes > 0 */
    struct chunk *next_free; /* on the pool's list of chunks with free pages */
    struct chunk *prev_free;
    struct chunk *next_all;
    uint8_t on_free_list;
    struct page pages[CHUNK_PAGES_MAX];
};
#define CHUNK_HEADER_BYTES ((sizeof(struct chunk) + OS_PAGE_SIZE - 1) & ~(OS_PAGE_SIZE - 1))

/* One bit per possible chunk: "is this address inside one of our chunks?" */
extern _Atomic uint64_t chunk_bitmap[((size_t)1 << (ADDRESS_BITS - CHUNK_SHIFT)) / 64];
/* Whether p lies in one of our chunks.  False for NULL: no chunk starts at
 * address 0 (the kernel never maps the first page), so its bit is never set. */
static inline bool chunk_has(const void *p) {
    size_t index = (uintptr_t)p >> CHUNK_SHIFT;
    if (unlikely(index >= ((size_t)1 << (ADDRESS_BITS - CHUNK_SHIFT)))) return false;
    uint64_t word = atomic_load_explicit(&chunk_bitmap[index >> 6], memory_order_relaxed);
    return (word >> (index & 63)) & 1;
}
static inline struct chunk *chunk_of(const void *p) {
    if (!chunk_has(p)) return NULL;
    return (struct chunk *)((uintptr_t)p & ~(uintptr_t)CHUNK_MASK);
}
static inline struct page *page_of(struct chunk *chunk, const void *p) {
    return &chunk->pages[((uintptr_t)p & CHUNK_MASK) >> chunk->page_shift];
}
static inline uint8_t *page_start(const struct page *page) {
    struct chunk *chunk = (struct chunk *)((uintptr_t)page & ~(uintptr_t)CHUNK_MASK);
    return (uint8_t *)chunk + ((size_t)page->index << chunk->page_shift);
}
static inline size_t page_bytes_of_kind(enum chunk_kind kind) {
    return (size_t)1 << (kind == CHUNK_SMALL    ? SMALL_PAGE_SHIFT
                         : kind == CHUNK_MEDIUM ? MEDIUM_PAGE_SHIFT
                                                : BIG_PAGE_SHIFT);
}
static inline enum chunk_kind chunk_kind_of_block(size_t block_size) {
    return block_size <= SMALL_MAX ? CHUNK_SMALL : block_size <= MEDIUM_MAX ? CHUNK_MEDIUM : CHUNK_BIG;
}

/* Takes a free page of the kind from the pool, preferring one whose memory is
 * still committed; NULL when no chunk can be reserved. */
struct page *chunk_page_alloc(enum chunk_kind kind);
/* Gives an empty page back to the pool; its memory stays committed until the
 * scavenger or a release decommits it. */
void chunk_page_free(struct page *page);
/* Decommits pool pages free for at least min_age_ns; returns bytes released. */
size_t chunk_scavenge(uint64_t now_ns, uint64_t min_age_ns);
struct chunk_stats {
    uint64_t chunks, pages_in_use, pages_free_committed, committed_bytes, header_bytes;
    uint64_t live_bytes, released_bytes;
    uint64_t class_live_bytes[CLASS_COUNT], class_live_blocks[CLASS_COUNT];
};
/* wait false: the death dump's bounded locking (mb_lock_stats). */
void chunk_stats(struct chunk_stats *out, bool wait);
void chunk_lock_all(void);
void chunk_unlock_all(void);
void chunk_reset_locks(void);

/* ---- heaps (heap.c) ---------------------------------------------------- */
struct page_queue {
    struct page *first, *last;
};

/* A thread's heap.  Owned by one thread at a time; when the thread exits it is
 * abandoned whole (with its pages) and adopted by the next new thread, so a
 * page's heap pointer stays valid forever: heaps are never freed. */
struct heap {
    struct page *direct[CLASS_COUNT]; /* queue[c].first, or &page_empty */
    struct page_queue queue[CLASS_COUNT];
    struct page_queue full;
    _Atomic(struct page *) revisit; /* full pages that received remote frees */
    struct heap *next_all;
    struct heap *next_abandoned;
    int owned; /* 1 while a live thread owns it */
    pid_t tid;
    uint64_t flush_epoch; /* the last flush_epoch this heap honoured */
    /* Bytes charged to the budget ahead of a page extension and not yet used:
     * the charge (and the pressure callbacks it may run, which may free into
     * this heap) happens while the heap is consistent, never mid-update. */
    _Atomic uint64_t commit_credit;
};

extern struct heap heap_empty; /* the static heap every thread starts with */
extern struct page page_empty; /* a page with no free block */
extern __thread struct heap *tls_heap;

void heap_init_globals(void);
/* size is the request, or SIZE_MAX when class_index was chosen for alignment. */
void *heap_alloc_slow(struct heap *heap, size_t size, unsigned class_index);
void page_empty_local(struct heap *heap, struct page *page);
void page_free_remote(struct page *page, struct block *block);
#ifdef MB_DEBUG
/* Aborts with a message unless p is a live block of the page. */
void page_check_free(struct page *page, void *p);
#endif
/* Collects remote frees and empty pages of abandoned heaps; returns pages freed. */
size_t heap_collect_abandoned(void);
/* Gives back the calling thread's empty pages kept for reuse.  Not from inside
 * an allocation (a budget handler): the heap may be mid-update there. */
void heap_release_local(void);
/* Asks every thread to give back its kept empty pages on its next slow path. */
void heap_request_flush(void);
uint64_t heap_count(bool wait);
uint64_t heap_credit_bytes(void);
uint64_t heap_count_live(bool wait);

/* Allocation sampling (alloc.c): the policy layer records sampled blocks and
 * registers hooks (alloc_set_sample_hooks) that record a sample and retire a
 * record when its block is freed. */
/* Marks the native block at p (just allocated by this thread) as sampled;
 * once per block, since a page counts its sampled blocks. */
void alloc_mark_sampled(void *p);
/* Runs the hook for a block that may be sampled (its page holds sampled blocks
 * and the filter below says maybe); the page's count drops when p was one. */
void alloc_sampled_free_small(struct page *page, void *p);
/* Small sampled blocks by address hash, counting (saturating at 255): a free
 * on a flagged page calls the hook only when its counter is not 0, so the
 * page's other blocks pay one load of this 64 KiB table, not a call. */
#define SAMPLED_FILTER_BITS 16
extern _Atomic uint8_t sampled_filter[(size_t)1 << SAMPLED_FILTER_BITS];
static inline _Atomic uint8_t *sampled_filter_slot(const void *p) {
    uint64_t h = (uint64_t)((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull;
    return &sampled_filter[h >> (64 - SAMPLED_FILTER_BITS)];
}
/* Runs the hook for a sampled span (its flag is cleared by the caller). */
void alloc_sampled_free(void *p);
/* The jemalloc backend's blocks have only the filter: runs the hook for p and,
 * when p was sampled, counts its filter slot down. */
void alloc_sampled_free_filtered(void *p);
/* Counts p's filter slot up (saturating): a block of a backend without pages. */
void alloc_filter_mark(const void *p);

/* ---- misuse checks (check.c) ---------------------------------------------
 * Always on: a pointer given to free, realloc or malloc_usable_size must be the
 * start of a block that is in use.  A free of anything else would corrupt a
 * free list silently, so the process stops with one line on stderr naming the
 * call, the address, the size class and "double free" or "invalid pointer"
 * (written with write(2): no allocation, no stdio), then abort(). */
enum alloc_op { ALLOC_OP_MALLOC, ALLOC_OP_FREE, ALLOC_OP_REALLOC, ALLOC_OP_USABLE_SIZE, ALLOC_OP_TRIM };

void alloc_checks_init(void);
/* p, in an in-use page of ours, failed the fast test of small_check: aborts
 * with the line, or returns when p is a live block after all (its second word
 * held the free mark by accident: the owner looked for it on the page's lists
 * and did not find it). */
void small_misuse(struct page *page, const void *p, enum alloc_op op) __attribute__((cold));
/* Aborts with the line for p, a pointer into the large span at span_start,
 * live, or freed (cached, or unmapped recently) when `freed`. */
void large_misuse_report(const void *p, enum alloc_op op, bool freed, uintptr_t span_start,
                         size_t span_bytes) __attribute__((noreturn, cold));

/* Is p the start of a block of the page, and not marked free?  The offset test
 * reads only the page descriptor's hot line, the mark only the block's first
 * 16 bytes; both lines are touched by a free anyway. */
static inline bool small_looks_live(const struct chunk *chunk, const struct page *page,
                                    const void *p) {
    uint64_t offset = (uintptr_t)p & chunk->page_mask;
    uint64_t magic = page->block_magic;
    return offset * magic < magic && ((const struct block *)p)->free_mark != block_free_mark(p);
}

static inline void small_check(const struct chunk *chunk, struct page *page, const void *p,
                               enum alloc_op op) {
    if (unlikely(!small_looks_live(chunk, page, p))) small_misuse(page, p, op);
}

/* ---- malloc re-entered on one thread (debug builds) -------------------------
 * malloc is not async-signal-safe: a signal handler that allocates while the
 * thread it interrupted is inside malloc or free finds that thread's free lists
 * half updated.  The debug build marks the fast paths and the slow path of the
 * calling thread's heap (not the calls it makes out of a consistent state: the
 * budget, its pressure callbacks, the tick hook, pthread_setspecific) and
 * aborts with one line when an allocation or a free starts inside them. */
#ifdef MB_DEBUG
/* The call the thread is inside (enum alloc_op + 1), or 0. */
extern __thread int alloc_inside __attribute__((tls_model("initial-exec")));
void alloc_reentered(enum alloc_op op) __attribute__((noreturn, cold));
/* A test-only point: a program that defines this function has it called by the
 * debug build from inside every malloc, after the thread is marked inside, so
 * that a test can raise a signal there at a known moment. */
void membudget_debug_inside_malloc(void) __attribute__((weak, visibility("default")));
static inline void alloc_enter(enum alloc_op op) {
    if (unlikely(alloc_inside != 0)) alloc_reentered(op);
    alloc_inside = (int)op + 1;
}
static inline void alloc_leave(void) { alloc_inside = 0; }
/* Around a call out of the allocator from a consistent state: returns what
 * alloc_resume must restore. */
static inline int alloc_pause(void) {
    int inside = alloc_inside;
    alloc_inside = 0;
    return inside;
}
static inline void alloc_resume(int inside) { alloc_inside = inside; }
#else
static inline int alloc_pause(void) { return 0; }
static inline void alloc_resume(int inside) { (void)inside; }
#endif

/* ---- the fast paths, inlined into the native backend (native.c) ----------- */
/* Hands out block, the first of page's free list (the owner's). */
static inline void page_hand_out(struct page *page, struct block *block) {
    page->free = block->next;
    block->free_mark = 0;
    atomic_store_explicit(&page->used, atomic_load_explicit(&page->used, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void *alloc_class(size_t size, unsigned class_index) {
#ifdef MB_DEBUG
    alloc_enter(ALLOC_OP_MALLOC);
    if (membudget_debug_inside_malloc) membudget_debug_inside_malloc();
#endif
    struct heap *heap = tls_heap;
    struct page *page = heap->direct[class_index];
    struct block *block = page->free;
    if (likely(block != NULL)) {
        page_hand_out(page, block);
#ifdef MB_DEBUG
        alloc_leave();
#endif
        return block;
    }
    void *p = heap_alloc_slow(heap, size, class_index);
#ifdef MB_DEBUG
    alloc_leave();
#endif
    return p;
}

static inline void *alloc_small(size_t size) { return alloc_class(size, sizeclass_of(size)); }

/* Puts a checked block on a free list: the owner's local list, or the page's
 * thread_free list when another thread owns the page. */
static inline void free_small_push_marked(struct page *page, struct block *block, uintptr_t mark) {
    block->free_mark = mark;
    struct heap *heap = tls_heap;
    if (likely(atomic_load_explicit(&page->heap, memory_order_relaxed) == heap)) {
        block->next = page->local_free;
        page->local_free = block;
        uint32_t used = atomic_load_explicit(&page->used, memory_order_relaxed) - 1;
        atomic_store_explicit(&page->used, used, memory_order_relaxed);
        if (unlikely(used == 0 || page->on_full)) page_empty_local(heap, page);
    } else {
        page_free_remote(page, block);
    }
}
static inline void free_small_push(struct page *page, struct block *block) {
    free_small_push_marked(page, block, block_free_mark(block));
}

/* The free of a block that failed the fast test, or sits on a page holding
 * sampled blocks, and every free of the debug build (alloc.c). */
void free_small_slow(struct chunk *chunk, struct page *page, void *p);

static inline void free_small(struct chunk *chunk, void *p) {
    struct page *page = page_of(chunk, p);
#ifndef MB_DEBUG
    /* One register for the descriptor: the compiler would otherwise compute
     * its address again for each field (chunk plus scaled index). */
    __asm__("" : "+r"(page));
    /* A page holding sampled blocks costs its other blocks one load of the
     * filter here, not the slow path: the hook runs only where it says maybe
     * (the same loads, in the same order, as free_small_slow's). */
    uintptr_t mark = block_free_mark(p); /* small_looks_live's test, the mark kept */
    uint64_t offset = (uintptr_t)p & chunk->page_mask, magic = page->block_magic;
    if (likely(offset * magic < magic && ((const struct block *)p)->free_mark != mark) &&
        (likely(!__atomic_load_n(&page->sampled, __ATOMIC_RELAXED)) ||
         atomic_load_explicit(sampled_filter_slot(p), memory_order_relaxed) == 0)) {
        free_small_push_marked(page, p, mark);
        return;
    }
#endif
    free_small_slow(chunk, page, p);
}

/* ---- large spans (large.c) --------------------------------------------- */
void *large_alloc(size_t size, size_t align, bool zero);
/* Frees a large span; returns false when p is not the start of a live one. */
bool large_free(void *p);
/* p is neither in a chunk nor the start of a live span: aborts with the line
 * when it points into a span of ours (an interior pointer), into a freed span
 * still cached, or at a span unmapped recently whose pages nobody mapped since
 * (a double free).  Returns when p is not ours: memory from before we took
 * over, or from another allocator, which the caller leaves alone. */
void large_check_unknown(const void *p, enum alloc_op op);
void large_mark_sampled(void *p);
/* The usable size of a large span, or 0 when p is not one of ours. */
size_t large_usable_size(const void *p);
/* Resizes a large span in place or by mremap; NULL (p untouched) when it
 * cannot, or when it must move to grow and a cached span can take it: the
 * caller then copies it into a new block (warm pages, no faults). */
void *large_resize(void *p, size_t new_size);
size_t large_release_cache(uint64_t now_ns, uint64_t min_age_ns);
struct large_stats {
    uint64_t spans, span_bytes, cached, cached_bytes, released_bytes;
};
void large_stats(struct large_stats *out, bool wait);
void large_lock_all(void);
void large_unlock_all(void);
void large_reset_locks(void);

/* ---- metadata (meta.c; meta_alloc, meta_free and meta_lock_all in alloc.h) -- */
uint64_t meta_bytes(bool wait);
void meta_unlock_all(void);
void meta_reset_locks(void);

/* ---- the thread's allocation countdown (alloc.c) ---------------------------
 * Bytes this thread may still allocate before its backend's slow path runs:
 * the next sample, and with the jemalloc backend its tick (jemalloc.c keeps
 * what remains of a sampling interval beyond a tick).  It starts at 0, so a
 * thread's first allocation asks the sampler for its first interval. */
extern __thread int64_t alloc_countdown __attribute__((tls_model("initial-exec")));

/* Takes size bytes off the countdown; true while it lasts.  Unsigned
 * arithmetic, so no size can overflow the signed countdown. */
static inline bool countdown_take(size_t size) {
    alloc_countdown = (int64_t)((uint64_t)alloc_countdown - size);
    return alloc_countdown >= 0;
}

/* The countdown ran out on the allocation p (NULL: it failed) of size bytes:
 * runs the sample hook, which sets the countdown anew, and returns the block,
 * which the hook may have moved.  errno is kept. */
void *alloc_sample_due(void *p, size_t size) __attribute__((noinline, cold));

/* ---- the native allocator's address range --------------------------------
 * Every chunk and large span it ever mapped lies in [native_lo, native_hi): a
 * backend serving after it (jemalloc) tells the native allocator's blocks,
 * handed out before the switch, from its own with two compares. */
extern _Atomic uintptr_t native_lo __attribute__((visibility("hidden"))),
    native_hi __attribute__((visibility("hidden"))); /* read with one instruction each */
void alloc_note_range(const void *p, size_t len);
static inline bool native_in_range(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uintptr_t lo = atomic_load_explicit(&native_lo, memory_order_relaxed);
    return a - lo < atomic_load_explicit(&native_hi, memory_order_relaxed) - lo;
}

/* ---- the native allocator's entry points (alloc.c, stats.c) -------------
 * Without the C library's contracts or sampling (alloc/native.c adds them);
 * the jemalloc backend calls them for blocks from before its switch. */
static inline void *alloc_malloc(size_t size) {
    if (likely(size <= CLASS_MAX)) return alloc_small(size);
    return large_alloc(size, OS_PAGE_SIZE, false);
}
void *alloc_aligned(size_t size, size_t align); /* align: power of two */
void alloc_free(void *p);
size_t alloc_usable_size(const void *p);
/* Sets *foreign (and returns NULL) when p is not ours. */
void *alloc_realloc(void *p, size_t size, bool *foreign);
/* The native backend's releases (alloc/backend.h): IDLE gives back pages idle
 * for a while, FREE and up everything free, including (native_release) the
 * calling thread's kept pages, or (native_release_shared, safe from inside an
 * allocation) the other threads' at their next slow path. */
size_t native_release(enum alloc_release_level level);
size_t native_release_shared(enum alloc_release_level level);
/* The allocator layer's tick, on slow paths: runs the tick hook, then at most
 * every SCAVENGE_INTERVAL_NS the native scavenger, which serves on every
 * backend (a switch leaves the native allocator's earlier blocks with it). */
void alloc_tick(void);
/* The native allocator's locks, taken for fork after the heap registry's. */
void native_atfork_prepare(void);
void native_atfork_parent(void);
void native_atfork_child(void);
/* The native backend's statistics (alloc/backend.h). */
void native_stats(struct membudget_stats *out, bool wait);
size_t native_classes(struct alloc_class_row *out, size_t cap, bool wait);

#endif
