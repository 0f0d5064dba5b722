/* Thread heaps and the page life cycle.
 *
 * Each thread allocates from its own heap, found through initial-exec TLS.  A
 * thread starts with the static empty heap, whose pages have no free block, so
 * the fast path needs no "initialized?" test: the first allocation falls into
 * the slow path, which initializes the allocator and gives the thread a heap.
 *
 * Pages keep three free lists: `free` (allocation pops, no atomics),
 * `local_free` (the owner's frees) and `thread_free` (other threads' frees,
 * one CAS).  A page with nothing left goes on the heap's full list and is
 * tagged TF_FULL; the first remote free into it tags it TF_QUEUED and pushes it
 * on the heap's revisit stack, which the owner drains on its next slow path. */
#include <string.h>

#include "alloc/internal.h"
#include "policy/budget.h"

struct page page_empty;
struct heap heap_empty = {.direct = {[0 ... CLASS_COUNT - 1] = &page_empty}};
__thread struct heap *tls_heap __attribute__((tls_model("initial-exec"))) = &heap_empty;

static mb_lock_t heaps_lock = MB_LOCK_INIT(LOCK_RANK_HEAPS);
static struct heap *heaps_all;       /* every heap ever made; guarded by heaps_lock */
static struct heap *heaps_abandoned; /* heaps whose thread exited */
static uint64_t heaps_total, heaps_owned;
static _Atomic uint64_t flush_epoch;

/* ---- page queues ------------------------------------------------------- */

static void queue_remove(struct page_queue *q, struct page *page) {
    if (page->prev) page->prev->next = page->next;
    else q->first = page->next;
    if (page->next) page->next->prev = page->prev;
    else q->last = page->prev;
    page->next = page->prev = NULL;
}

static void queue_push_front(struct page_queue *q, struct page *page) {
    page->prev = NULL;
    page->next = q->first;
    if (q->first) q->first->prev = page;
    else q->last = page;
    q->first = page;
}

static void queue_push_back(struct page_queue *q, struct page *page) {
    page->next = NULL;
    page->prev = q->last;
    if (q->last) q->last->next = page;
    else q->first = page;
    q->last = page;
}

static void heap_update_direct(struct heap *heap, unsigned class_index) {
    struct page *first = heap->queue[class_index].first;
    heap->direct[class_index] = first ? first : &page_empty;
}

/* ---- pages --------------------------------------------------------------- */

static inline void page_used_sub(struct page *page, uint32_t n) {
    uint32_t used = atomic_load_explicit(&page->used, memory_order_relaxed);
    mb_check(used >= n, "page used count underflow (double free?)");
    atomic_store_explicit(&page->used, used - n, memory_order_relaxed);
}

#ifdef MB_DEBUG
static void page_check_block(struct page *page, struct block *block) {
    uint8_t *start = page_start(page);
    uintptr_t off = (uintptr_t)block - (uintptr_t)start;
    mb_check((uint8_t *)block >= start && off < (size_t)page->capacity * page->block_size,
             "free-list block outside its page");
    mb_check(off % page->block_size == 0, "free-list block not on a block boundary");
}

void page_check_free(struct page *page, void *p) {
    uint32_t block_size = __atomic_load_n(&page->block_size, __ATOMIC_RELAXED);
    mb_check(page->state == PAGE_IN_USE && block_size != 0,
             "free() of a pointer into a free page (double free or invalid pointer)");
    uintptr_t off = (uintptr_t)p - (uintptr_t)page_start(page);
    mb_check(off % block_size == 0, "free() of a pointer that is not the start of a block");
    mb_check(off < (size_t)page->capacity * block_size, "free() of a block never handed out");
    if (atomic_load_explicit(&page->heap, memory_order_relaxed) == tls_heap) {
        for (struct block *b = page->free; b; b = b->next) mb_check(b != p, "double free");
        for (struct block *b = page->local_free; b; b = b->next) mb_check(b != p, "double free");
    }
}
#endif

static void page_init(struct page *page, struct heap *heap, unsigned class_index) {
    uint32_t block_size = class_block_size[class_index];
    size_t page_bytes = page_bytes_of_kind(chunk_kind_of_block(block_size));
    page->free = page->local_free = NULL;
    atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
    atomic_store_explicit(&page->used, 0, memory_order_relaxed);
    page->capacity = 0;
    page->reserved = (uint32_t)(page_bytes / block_size);
    __atomic_store_n(&page->class_index, (uint8_t)class_index, __ATOMIC_RELAXED);
    __atomic_store_n(&page->block_size, block_size, __ATOMIC_RELAXED);
    page->block_magic = UINT64_MAX / block_size + 1;
    page->on_full = 0;
    __atomic_store_n(&page->sampled, 0, __ATOMIC_RELAXED);
    page->next = page->prev = page->revisit_next = NULL;
    atomic_store_explicit(&page->heap, heap, memory_order_release);
}

/* The blocks the next extension of the page carves. */
static uint32_t page_extend_count(const struct page *page) {
    uint32_t count = EXTEND_BYTES / page->block_size;
    if (count == 0) count = 1;
    if (count > page->reserved - page->capacity) count = page->reserved - page->capacity;
    return count;
}

/* Bytes the next extension must commit (and charge) first. */
static size_t page_extend_need(const struct page *page) {
    size_t end = (size_t)(page->capacity + page_extend_count(page)) * page->block_size;
    size_t committed = atomic_load_explicit(&page->commit_bytes, memory_order_relaxed);
    if (end <= committed) return 0;
    return ((end + COMMIT_UNIT - 1) & ~(COMMIT_UNIT - 1)) - committed;
}

/* Threads the next few blocks of the page onto its free list, paying for the
 * memory they need from the heap's credit (page_extend_need() bytes, which the
 * caller made sure are there). */
static void page_extend(struct heap *heap, struct page *page) {
    uint32_t block_size = page->block_size;
    uint32_t count = page_extend_count(page);
    size_t need = page_extend_need(page);
    if (need) {
        uint64_t credit = atomic_load_explicit(&heap->commit_credit, memory_order_relaxed);
        mb_check(credit >= need, "page extension without credit");
        atomic_store_explicit(&heap->commit_credit, credit - need, memory_order_relaxed);
        atomic_store_explicit(&page->commit_bytes,
                              atomic_load_explicit(&page->commit_bytes, memory_order_relaxed) +
                                  (uint32_t)need,
                              memory_order_relaxed);
    }
    uint8_t *first = page_start(page) + (size_t)page->capacity * block_size;
    struct block *tail = page->free;
    for (uint32_t i = count; i-- > 0;) {
        struct block *b = (struct block *)(first + (size_t)i * block_size);
        b->next = tail;
        tail = b;
    }
    page->free = tail;
    page->capacity += count;
}

/* Splices a list taken from thread_free onto the allocation list. */
static void page_take_remote(struct page *page, uintptr_t tf) {
    struct block *head = (struct block *)(tf & ~TF_TAGS);
    if (head == NULL) return;
    uint32_t count = 1;
    struct block *tail = head;
    for (; tail->next; tail = tail->next) {
#ifdef MB_DEBUG
        page_check_block(page, tail);
#endif
        count++;
    }
    tail->next = page->free;
    page->free = head;
    page_used_sub(page, count);
}

/* Takes the blocks other threads freed into the page, keeping the tag bits. */
static void page_collect_remote(struct page *page) {
    uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    while (tf & ~TF_TAGS) {
        if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, tf & TF_TAGS,
                                                  memory_order_acquire, memory_order_relaxed)) {
            page_take_remote(page, tf);
            return;
        }
    }
}

/* Moves the owner's frees to the allocation list. */
static void page_collect_local(struct page *page) {
    if (page->local_free == NULL) return;
    if (page->free == NULL) {
        page->free = page->local_free;
    } else {
        struct block *tail = page->local_free;
        while (tail->next) tail = tail->next;
        tail->next = page->free;
        page->free = page->local_free;
    }
    page->local_free = NULL;
}

static struct page_queue *page_queue_of(struct heap *heap, struct page *page) {
    return page->on_full ? &heap->full : &heap->queue[page->class_index];
}

/* Hands an empty page back to the pool. */
static void page_retire(struct heap *heap, struct page *page) {
    unsigned class_index = page->class_index;
    queue_remove(page_queue_of(heap, page), page);
    if (!page->on_full) heap_update_direct(heap, class_index);
    page->on_full = 0;
    page->free = page->local_free = NULL;
    atomic_store_explicit(&page->heap, NULL, memory_order_relaxed);
    chunk_page_free(page);
}

/* A page came off the full list: to the back of its class queue, so the page
 * in use stays in use and this one gathers more free blocks before its turn
 * (to the front, a page with one free block would bounce straight back). */
static void page_unfull(struct heap *heap, struct page *page) {
    queue_remove(&heap->full, page);
    page->on_full = 0;
    queue_push_back(&heap->queue[page->class_index], page);
    heap_update_direct(heap, page->class_index);
}

/* Whether an empty page is cheap enough to keep as its class's last one: no
 * more committed than a small page, so that a heap holds at most that much
 * idle memory per class. */
static bool page_keep_bytes_ok(const struct page *page) {
    return atomic_load_explicit(&page->commit_bytes, memory_order_relaxed) <= ((uint32_t)1 << SMALL_PAGE_SHIFT);
}

static bool page_is_alone(struct heap *heap, struct page *page) {
    struct page_queue *q = &heap->queue[page->class_index];
    return q->first == page && q->last == page;
}

/* Drains the revisit stack: full pages that other threads freed into. */
static void heap_process_revisit(struct heap *heap) {
    if (atomic_load_explicit(&heap->revisit, memory_order_relaxed) == NULL) return;
    struct page *page = atomic_exchange_explicit(&heap->revisit, NULL, memory_order_acquire);
    while (page) {
        struct page *next = page->revisit_next;
        /* One exchange takes the blocks and clears both tags. */
        uintptr_t tf = atomic_exchange_explicit(&page->thread_free, 0, memory_order_acquire);
        mb_check((tf & TF_TAGS) == TF_TAGS, "revisited page not tagged full and queued");
        page_take_remote(page, tf);
        page_unfull(heap, page);
        page = next;
    }
}

/* Tags a page that has no free block as full.  Fails when a remote free got
 * there first; the caller then collects it. */
static bool page_try_mark_full(struct page *page) {
    uintptr_t expected = 0;
    return atomic_compare_exchange_strong_explicit(&page->thread_free, &expected, TF_FULL,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

static size_t heap_collect(struct heap *heap, bool keep_one);

/* ---- the slow path ------------------------------------------------------- */

static struct heap *heap_acquire(void);

static inline void *page_pop(struct page *page) {
    struct block *block = page->free;
    page->free = block->next;
    block->free_mark = 0;
    atomic_store_explicit(&page->used,
                          atomic_load_explicit(&page->used, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return block;
}

void *heap_alloc_slow(struct heap *heap, size_t size, unsigned class_index) {
    if (unlikely(heap == &heap_empty)) {
        int inside = alloc_pause(); /* arming the exit hook may allocate */
        alloc_init();
        heap = heap_acquire();
        alloc_resume(inside);
        if (heap == NULL) return NULL;
        /* Before initialization the class table maps every size to class 0. */
        if (size != SIZE_MAX) class_index = sizeclass_of(size);
    }
    struct page_queue *q = &heap->queue[class_index];
    size_t shortfall;
retry:;
    uint64_t epoch = atomic_load_explicit(&flush_epoch, memory_order_relaxed);
    if (unlikely(heap->flush_epoch != epoch)) {
        heap->flush_epoch = epoch;
        heap_collect(heap, false);
    }
    heap_process_revisit(heap);
    uint64_t credit = atomic_load_explicit(&heap->commit_credit, memory_order_relaxed);
    struct page *page = q->first, *next;
    for (; page != NULL; page = next) {
        next = page->next;
        page_collect_local(page);
        if (page->free == NULL) page_collect_remote(page);
        if (page->free == NULL && page->capacity < page->reserved) {
            size_t need = page_extend_need(page);
            if (need > credit) {
                shortfall = need - credit;
                goto charge;
            }
            page_extend(heap, page);
        }
        if (page->free != NULL) break;
        if (page_try_mark_full(page)) {
            queue_remove(q, page);
            page->on_full = 1;
            queue_push_front(&heap->full, page);
        } else {
            page_collect_remote(page);
            if (page->free != NULL) break;
        }
    }
    if (page == NULL) {
        heap_update_direct(heap, class_index);
        /* Consistent: the tick and a new chunk's charge may call out. */
        int inside = alloc_pause();
        alloc_tick();
        page = chunk_page_alloc(chunk_kind_of_block(class_block_size[class_index]));
        alloc_resume(inside);
        if (page == NULL) return NULL;
        page_init(page, heap, class_index);
        queue_push_front(q, page);
        size_t need = page_extend_need(page);
        if (need > credit) {
            shortfall = need - credit;
            goto charge; /* the new page waits, empty, at the head of the queue */
        }
        page_extend(heap, page);
    } else if (page != q->first) {
        queue_remove(q, page);
        queue_push_front(q, page);
    }
    heap_update_direct(heap, class_index);
    return page_pop(page);

charge:
    /* The heap is consistent here: the charge may run pressure callbacks that
     * free into it or allocate from it.  Then look again from the start. */
    heap_update_direct(heap, class_index);
    int inside = alloc_pause();
    bool charged = budget_charge(shortfall);
    alloc_resume(inside);
    if (!charged) return NULL;
    atomic_store_explicit(&heap->commit_credit,
                          atomic_load_explicit(&heap->commit_credit, memory_order_relaxed) + shortfall,
                          memory_order_relaxed);
    goto retry;
}

/* The owner freed the last block of a page, or freed into a full page. */
void page_empty_local(struct heap *heap, struct page *page) {
    if (page->on_full) {
        /* Back to the class queue, unless a remote free already queued the
         * page for revisiting (then the revisit does it). */
        uintptr_t expected = TF_FULL;
        if (!atomic_compare_exchange_strong_explicit(&page->thread_free, &expected, 0,
                                                     memory_order_acq_rel, memory_order_relaxed))
            return;
        page_unfull(heap, page);
    }
    if (atomic_load_explicit(&page->used, memory_order_relaxed) != 0) return;
    /* Keep the last page of a class: a loop that frees and allocates one block
     * must not bounce a page through the pool.  Not a page with more committed
     * than a small page (big blocks, or a medium page that held many): it goes
     * back to the pool, where the next page any heap takes is this warm one,
     * and the scavenger gives it back if nobody does.  Kept, each thread would
     * hold up to a block of 256 KiB idle in every class it ever used. */
    if (page_is_alone(heap, page) && page_keep_bytes_ok(page)) return;
    page_retire(heap, page);
    int inside = alloc_pause();
    alloc_tick();
    alloc_resume(inside);
}

void page_free_remote(struct page *page, struct block *block) {
    uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed), desired;
    do {
        block->next = (struct block *)(old & ~TF_TAGS);
        desired = (uintptr_t)block | (old & TF_TAGS);
        if ((old & TF_TAGS) == TF_FULL) desired |= TF_QUEUED;
    } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &old, desired,
                                                    memory_order_acq_rel, memory_order_acquire));
    if ((old & TF_TAGS) != TF_FULL) return;
    /* This free turned a full page usable: tell the owner, once. */
    struct heap *heap = atomic_load_explicit(&page->heap, memory_order_acquire);
    struct page *head = atomic_load_explicit(&heap->revisit, memory_order_relaxed);
    do {
        page->revisit_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&heap->revisit, &head, page,
                                                    memory_order_release, memory_order_relaxed));
}

/* Collects every page of a heap and retires the empty ones (all of them when
 * keep_one is false).  The caller owns the heap. */
static size_t heap_collect(struct heap *heap, bool keep_one) {
    size_t retired = 0;
    heap_process_revisit(heap);
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        struct page *page = heap->queue[c].first, *next;
        for (; page != NULL; page = next) {
            next = page->next;
            page_collect_local(page);
            page_collect_remote(page);
            if (atomic_load_explicit(&page->used, memory_order_relaxed) != 0) continue;
            if (keep_one && page_is_alone(heap, page)) continue;
            page_retire(heap, page);
            retired++;
        }
    }
    return retired;
}

/* ---- heap ownership ------------------------------------------------------ */

static void heap_thread_exit(void *value);

void heap_init_globals(void) {
    os_thread_exit_init(heap_thread_exit);
}

static struct heap *heap_acquire(void) {
    struct heap *fresh = NULL;
    mb_lock(&heaps_lock);
    if (heaps_abandoned == NULL) {
        /* meta_alloc may charge the budget: never under heaps_lock. */
        mb_unlock(&heaps_lock);
        fresh = meta_alloc(sizeof *fresh);
        if (fresh == NULL) return NULL;
        for (unsigned c = 0; c < CLASS_COUNT; c++) fresh->direct[c] = &page_empty;
        mb_lock(&heaps_lock);
        fresh->next_all = heaps_all;
        heaps_all = fresh;
        heaps_total++;
    }
    struct heap *heap = fresh;
    if (heap == NULL) {
        heap = heaps_abandoned;
        heaps_abandoned = heap->next_abandoned;
    }
    heap->next_abandoned = NULL;
    heap->owned = 1;
    heap->tid = os_gettid();
    heaps_owned++;
    mb_unlock(&heaps_lock);
    /* TLS first: arming the exit hook may itself allocate. */
    tls_heap = heap;
    os_thread_exit_arm(heap);
    return heap;
}

static void heap_abandon_locked(struct heap *heap) {
    heap->owned = 0;
    heap->tid = 0;
    heap->next_abandoned = heaps_abandoned;
    heaps_abandoned = heap;
    heaps_owned--;
}

static void heap_thread_exit(void *value) {
    struct heap *heap = value;
    if (heap == NULL || heap != tls_heap) return;
    heap_collect(heap, false);
    uint64_t credit = atomic_exchange_explicit(&heap->commit_credit, 0, memory_order_relaxed);
    if (credit) budget_uncharge(credit);
    tls_heap = &heap_empty;
    mb_lock(&heaps_lock);
    heap_abandon_locked(heap);
    mb_unlock(&heaps_lock);
}

size_t heap_collect_abandoned(void) {
    size_t retired = 0;
    mb_lock(&heaps_lock);
    /* Holding heaps_lock makes us the owner of every abandoned heap. */
    for (struct heap *heap = heaps_abandoned; heap != NULL; heap = heap->next_abandoned)
        retired += heap_collect(heap, false);
    mb_unlock(&heaps_lock);
    return retired;
}

void heap_request_flush(void) { atomic_fetch_add_explicit(&flush_epoch, 1, memory_order_relaxed); }

void heap_release_local(void) {
    struct heap *heap = tls_heap;
    if (heap == &heap_empty) return;
#ifdef MB_DEBUG
    alloc_enter(ALLOC_OP_TRIM);
#endif
    heap_collect(heap, false);
#ifdef MB_DEBUG
    alloc_leave();
#endif
}

uint64_t heap_count(bool wait) {
    int locked = mb_lock_stats(&heaps_lock, wait);
    uint64_t n = heaps_total;
    if (locked) mb_unlock(&heaps_lock);
    return n;
}

uint64_t heap_credit_bytes(void) {
    uint64_t bytes = 0;
    mb_lock(&heaps_lock);
    for (struct heap *heap = heaps_all; heap != NULL; heap = heap->next_all)
        bytes += atomic_load_explicit(&heap->commit_credit, memory_order_relaxed);
    mb_unlock(&heaps_lock);
    return bytes;
}

uint64_t heap_count_live(bool wait) {
    int locked = mb_lock_stats(&heaps_lock, wait);
    uint64_t n = heaps_owned;
    if (locked) mb_unlock(&heaps_lock);
    return n;
}

void heap_atfork_prepare(void) { mb_lock(&heaps_lock); }
void heap_atfork_parent(void) { mb_unlock(&heaps_lock); }

/* In the child only the forking thread survives: every other owned heap is
 * abandoned, to be adopted by the child's future threads. */
void heap_atfork_child(void) {
    mb_lock_reset(&heaps_lock);
    mb_lock(&heaps_lock);
    for (struct heap *heap = heaps_all; heap != NULL; heap = heap->next_all) {
        if (heap->owned && heap != tls_heap) heap_abandon_locked(heap);
        else if (heap == tls_heap) heap->tid = os_gettid();
    }
    mb_unlock(&heaps_lock);
}
