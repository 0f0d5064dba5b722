/* Chunks and the page pool.  Chunks are reserved from the OS CHUNK_SIZE-aligned
 * and never unmapped (their pages are decommitted instead), so a chunk header,
 * and every page descriptor in it, stays valid for the life of the process.
 * A page is charged to the budget when its memory is committed and uncharged
 * when the scavenger gives it back with madvise. */
#include <string.h>

#include "alloc/internal.h"
#include "policy/budget.h"

_Atomic uint64_t chunk_bitmap[((size_t)1 << (ADDRESS_BITS - CHUNK_SHIFT)) / 64];

struct pool {
    mb_lock_t lock;
    /* Chunks with at least one free page: warm ones at the head, chunks whose
     * free pages were all decommitted at the tail. */
    struct chunk *free_head, *free_tail;
    _Atomic(struct chunk *) all_head; /* every chunk; append-only */
    uint64_t chunks;
    uint64_t released_bytes;
};

static struct pool pools[CHUNK_KINDS] = {
    [CHUNK_SMALL] = {.lock = MB_LOCK_INIT(LOCK_RANK_POOL_SMALL)},
    [CHUNK_MEDIUM] = {.lock = MB_LOCK_INIT(LOCK_RANK_POOL_MEDIUM)},
    [CHUNK_BIG] = {.lock = MB_LOCK_INIT(LOCK_RANK_POOL_BIG)},
};

static void free_list_push(struct pool *pool, struct chunk *chunk) {
    chunk->prev_free = NULL;
    chunk->next_free = pool->free_head;
    if (pool->free_head) pool->free_head->prev_free = chunk;
    else pool->free_tail = chunk;
    pool->free_head = chunk;
    chunk->on_free_list = 1;
}

static void free_list_append(struct pool *pool, struct chunk *chunk) {
    chunk->next_free = NULL;
    chunk->prev_free = pool->free_tail;
    if (pool->free_tail) pool->free_tail->next_free = chunk;
    else pool->free_head = chunk;
    pool->free_tail = chunk;
    chunk->on_free_list = 1;
}

static void free_list_remove(struct pool *pool, struct chunk *chunk) {
    if (chunk->prev_free) chunk->prev_free->next_free = chunk->next_free;
    else pool->free_head = chunk->next_free;
    if (chunk->next_free) chunk->next_free->prev_free = chunk->prev_free;
    else pool->free_tail = chunk->prev_free;
    chunk->next_free = chunk->prev_free = NULL;
    chunk->on_free_list = 0;
}

static struct chunk *chunk_create(enum chunk_kind kind) {
    if (!budget_charge(CHUNK_HEADER_BYTES)) return NULL;
    struct chunk *chunk = os_map_aligned(CHUNK_SIZE, CHUNK_SIZE);
    if (chunk == NULL) {
        budget_uncharge(CHUNK_HEADER_BYTES);
        return NULL;
    }
    alloc_note_range(chunk, CHUNK_SIZE);
    /* Only the header's pages are ever touched here; the rest stays untouched
     * until a page is handed out. */
    chunk->kind = (uint8_t)kind;
    chunk->page_shift = (uint8_t)__builtin_ctzll(page_bytes_of_kind(kind));
    chunk->page_count = (uint16_t)(CHUNK_SIZE >> chunk->page_shift);
    chunk->page_mask = ((uintptr_t)1 << chunk->page_shift) - 1;
    chunk->free_mask = (chunk->page_count == 64 ? ~(uint64_t)0 : ((uint64_t)1 << chunk->page_count) - 1) &
                       ~(uint64_t)1;
    for (unsigned i = 0; i < chunk->page_count; i++) chunk->pages[i].index = (uint8_t)i;
    size_t index = (uintptr_t)chunk >> CHUNK_SHIFT;
    atomic_fetch_or_explicit(&chunk_bitmap[index >> 6], (uint64_t)1 << (index & 63),
                             memory_order_release);
    return chunk;
}

static bool chunk_has_warm(const struct chunk *chunk) {
    return (chunk->free_mask & chunk->committed_mask) != 0;
}

/* Chunks with warm (committed) free pages are kept ahead of those whose free
 * pages are all cold, so the head chunk has a warm page whenever one exists;
 * the scavenger can leave a chunk without warm pages among them, hence a short
 * look beyond the head.  Taking a cold page while a warm one waits elsewhere
 * would commit memory the process already has. */
#define WARM_LOOK 8
static struct chunk *warm_chunk(struct chunk *head) {
    struct chunk *chunk = head;
    for (unsigned i = 0; chunk != NULL && i < WARM_LOOK; i++, chunk = chunk->next_free)
        if (chunk_has_warm(chunk)) return chunk;
    return head;
}

struct page *chunk_page_alloc(enum chunk_kind kind) {
    struct pool *pool = &pools[kind];
    mb_lock(&pool->lock);
    struct chunk *chunk = pool->free_head;
    if (chunk == NULL) {
        mb_unlock(&pool->lock);
        struct chunk *fresh = chunk_create(kind);
        if (fresh == NULL) return NULL;
        mb_lock(&pool->lock);
        fresh->next_all = atomic_load_explicit(&pool->all_head, memory_order_relaxed);
        atomic_store_explicit(&pool->all_head, fresh, memory_order_release);
        pool->chunks++;
        free_list_push(pool, fresh);
        chunk = pool->free_head;
    }
    chunk = warm_chunk(chunk);
    mb_check(chunk->free_mask != 0, "chunk on the free list without a free page");
    /* Prefer a page that is still committed: reuse warm memory first. */
    uint64_t warm = chunk->free_mask & chunk->committed_mask;
    unsigned index = (unsigned)__builtin_ctzll(warm ? warm : chunk->free_mask);
    uint64_t bit = (uint64_t)1 << index;
    chunk->free_mask &= ~bit;
    chunk->committed_mask &= ~bit;
    if (chunk->free_mask == 0) {
        free_list_remove(pool, chunk);
    } else if (!chunk_has_warm(chunk) && chunk != pool->free_tail) {
        /* Its last warm page is gone: behind the chunks that still have one. */
        free_list_remove(pool, chunk);
        free_list_append(pool, chunk);
    }
    struct page *page = &chunk->pages[index];
    page->state = PAGE_IN_USE;
    mb_unlock(&pool->lock);
    return page;
}

void chunk_page_free(struct page *page) {
    struct chunk *chunk = (struct chunk *)((uintptr_t)page & ~(uintptr_t)CHUNK_MASK);
    struct pool *pool = &pools[chunk->kind];
    uint64_t now = os_now_ns();
    uint64_t bit = (uint64_t)1 << page->index;
    mb_lock(&pool->lock);
    mb_check(page->state == PAGE_IN_USE, "page freed twice to the pool");
    page->state = PAGE_FREE;
    page->block_size = 0;
    page->block_magic = 0;
    page->free_since_ns = now;
    chunk->free_mask |= bit;
    if (atomic_load_explicit(&page->commit_bytes, memory_order_relaxed) != 0)
        chunk->committed_mask |= bit;
    /* A chunk with a warm page goes to the head of the list: the next page
     * handed out is this warm one, not a cold page elsewhere that would need
     * committing again. */
    if (chunk_has_warm(chunk)) {
        if (chunk->on_free_list) free_list_remove(pool, chunk);
        free_list_push(pool, chunk);
    } else if (!chunk->on_free_list) {
        free_list_append(pool, chunk);
    }
    mb_unlock(&pool->lock);
}

/* Decommits runs of neighbouring free pages with one madvise per run.  The
 * pages are taken out of the free mask while the syscall runs, so no thread
 * can be handed a page whose memory is being dropped, and no lock is held
 * across the syscall. */
static size_t pool_scavenge(struct pool *pool, uint64_t now, uint64_t min_age) {
    size_t released = 0;
    for (struct chunk *chunk = atomic_load_explicit(&pool->all_head, memory_order_acquire);
         chunk != NULL; chunk = chunk->next_all) {
        mb_lock(&pool->lock);
        uint64_t victims = 0, candidates = chunk->free_mask & chunk->committed_mask;
        while (candidates) {
            unsigned i = (unsigned)__builtin_ctzll(candidates);
            candidates &= candidates - 1;
            if (now - chunk->pages[i].free_since_ns >= min_age) victims |= (uint64_t)1 << i;
        }
        chunk->free_mask &= ~victims;
        /* Invariant: a chunk on the free list has a free page. */
        if (chunk->free_mask == 0 && chunk->on_free_list) free_list_remove(pool, chunk);
        mb_unlock(&pool->lock);
        if (victims == 0) continue;
        size_t bytes = 0;
        uint64_t rest = victims;
        while (rest) {
            /* A run of neighbouring victims: from the first page's start to the
             * committed end of the last one. */
            unsigned first = (unsigned)__builtin_ctzll(rest), last = first;
            while (last + 1 < 64 && (rest >> (last + 1)) & 1) last++;
            struct page *tail = &chunk->pages[last];
            uint8_t *start = (uint8_t *)chunk + ((size_t)first << chunk->page_shift);
            uint8_t *end = page_start(tail) + atomic_load_explicit(&tail->commit_bytes, memory_order_relaxed);
            os_decommit(start, (size_t)(end - start));
            for (unsigned i = first; i <= last; i++) {
                bytes += atomic_load_explicit(&chunk->pages[i].commit_bytes, memory_order_relaxed);
                atomic_store_explicit(&chunk->pages[i].commit_bytes, 0, memory_order_relaxed);
            }
            rest &= last >= 63 ? 0 : ~((uint64_t)0) << (last + 1);
        }
        mb_lock(&pool->lock);
        chunk->committed_mask &= ~victims;
        chunk->free_mask |= victims;
        if (!chunk->on_free_list) free_list_append(pool, chunk);
        pool->released_bytes += bytes;
        mb_unlock(&pool->lock);
        budget_uncharge(bytes);
        released += bytes;
    }
    return released;
}

size_t chunk_scavenge(uint64_t now_ns, uint64_t min_age_ns) {
    size_t released = 0;
    for (int kind = CHUNK_SMALL; kind < CHUNK_KINDS; kind++)
        released += pool_scavenge(&pools[kind], now_ns, min_age_ns);
    return released;
}

void chunk_stats(struct chunk_stats *out, bool wait) {
    memset(out, 0, sizeof *out);
    for (int kind = CHUNK_SMALL; kind < CHUNK_KINDS; kind++) {
        struct pool *pool = &pools[kind];
        int locked = mb_lock_stats(&pool->lock, wait);
        out->chunks += pool->chunks;
        out->header_bytes += pool->chunks * CHUNK_HEADER_BYTES;
        out->released_bytes += pool->released_bytes;
        for (struct chunk *chunk = atomic_load_explicit(&pool->all_head, memory_order_acquire);
             chunk != NULL; chunk = chunk->next_all) {
            out->pages_free_committed +=
                (uint64_t)__builtin_popcountll(chunk->free_mask & chunk->committed_mask);
            for (unsigned i = 1; i < chunk->page_count; i++) {
                struct page *page = &chunk->pages[i];
                out->committed_bytes += atomic_load_explicit(&page->commit_bytes, memory_order_relaxed);
                if (page->state != PAGE_IN_USE) continue;
                out->pages_in_use++;
                /* block_size and used belong to the owner: a racy but harmless
                 * read, good enough for statistics. */
                uint32_t block_size = __atomic_load_n(&page->block_size, __ATOMIC_RELAXED);
                uint8_t class_index = __atomic_load_n(&page->class_index, __ATOMIC_RELAXED);
                uint32_t used = atomic_load_explicit(&page->used, memory_order_relaxed);
                if (block_size == 0 || class_index >= CLASS_COUNT) continue;
                out->live_bytes += (uint64_t)used * block_size;
                out->class_live_bytes[class_index] += (uint64_t)used * block_size;
                out->class_live_blocks[class_index] += used;
            }
        }
        if (locked) mb_unlock(&pool->lock);
    }
}

void chunk_lock_all(void) {
    for (int kind = CHUNK_SMALL; kind < CHUNK_KINDS; kind++) mb_lock(&pools[kind].lock);
}

void chunk_unlock_all(void) {
    for (int kind = CHUNK_KINDS - 1; kind >= CHUNK_SMALL; kind--) mb_unlock(&pools[kind].lock);
}

void chunk_reset_locks(void) {
    for (int kind = CHUNK_SMALL; kind < CHUNK_KINDS; kind++) mb_lock_reset(&pools[kind].lock);
}
