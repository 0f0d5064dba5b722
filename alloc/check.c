/* The always-on checks of the pointers the program gives back (free, realloc,
 * malloc_usable_size), and the one line that reports a misuse before abort().
 * The fast test lives in internal.h (small_looks_live); this file decides what
 * a pointer that failed it is.  Nothing here allocates or uses stdio: it runs
 * inside free, possibly with the heap's lists already damaged. */
#include <stdlib.h>

#include "alloc/fmt.h"
#include "alloc/internal.h"

uintptr_t alloc_free_key = (uintptr_t)0x9a3c5e7f1b2d4c6bull;

void alloc_checks_init(void) {
    uint64_t random = 0;
    if (!os_random(&random, sizeof random)) {
        /* No entropy yet: the clock and the address-space layout. */
        uint64_t x = os_now_ns() ^ (uintptr_t)&random ^ ((uintptr_t)&alloc_free_key << 16);
        x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdull;
        random = x ^ (x >> 33);
    }
    alloc_free_key ^= random;
    alloc_free_key |= (uintptr_t)1 << 63;
}

static const char *const op_names[] = {
    [ALLOC_OP_MALLOC] = "malloc()",
    [ALLOC_OP_FREE] = "free()",
    [ALLOC_OP_REALLOC] = "realloc()",
    [ALLOC_OP_USABLE_SIZE] = "malloc_usable_size()",
    [ALLOC_OP_TRIM] = "malloc_trim()",
};

/* "membudget: double free of 0x... in free(): " or
 * "membudget: invalid pointer 0x... in free(): "; the caller adds the detail. */
static void report_start(struct mb_buf *f, const void *p, enum alloc_op op, bool double_free) {
    mb_buf_str(f, double_free ? "membudget: double free of " : "membudget: invalid pointer ");
    mb_buf_hex(f, (uintptr_t)p);
    mb_buf_str(f, " in ");
    mb_buf_str(f, op_names[op]);
    mb_buf_str(f, ": ");
}

static void __attribute__((noreturn)) report_end(struct mb_buf *f) {
    mb_buf_char(f, '\n');
    os_write_all(2, f->data, f->len);
    abort();
}

/* Is p on the list starting at b?  The walk stays inside the page and stops
 * after more links than the page has blocks: the list may be damaged. */
static bool list_holds(const struct block *b, const void *p, uintptr_t lo, uintptr_t hi,
                       uint32_t limit) {
    for (uint32_t n = 0; b != NULL && n <= limit; b = b->next, n++) {
        if (b == p) return true;
        if ((uintptr_t)b < lo || (uintptr_t)b >= hi || ((uintptr_t)b & (MIN_ALIGN - 1)) != 0)
            return false;
    }
    return false;
}

/* A block start of an in-use page whose second word is the free mark: is it
 * really free?  The owner can tell for sure, since only it changes the page's
 * lists (remote frees only push onto thread_free); another thread trusts the
 * mark, which other data matches with a chance of about 2^-63. */
static bool marked_block_is_free(struct page *page, const void *p) {
    if (atomic_load_explicit(&page->heap, memory_order_relaxed) != tls_heap) return true;
    uintptr_t lo = (uintptr_t)page_start(page);
    uintptr_t hi = lo + (size_t)page->reserved * page->block_size;
    uint32_t limit = page->reserved;
    uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
    return list_holds(page->free, p, lo, hi, limit) ||
           list_holds(page->local_free, p, lo, hi, limit) ||
           list_holds((const struct block *)(tf & ~TF_TAGS), p, lo, hi, limit);
}

void small_misuse(struct page *page, const void *p, enum alloc_op op) {
    struct chunk *chunk = (struct chunk *)((uintptr_t)page & ~(uintptr_t)CHUNK_MASK);
    uint64_t offset = (uintptr_t)p & chunk->page_mask;
    uint32_t block_size = __atomic_load_n(&page->block_size, __ATOMIC_RELAXED);
    char buf[256];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    if (block_size == 0) {
        /* No block of the page is in use: p was freed already (its page then
         * emptied and went back to the pool), or it never was a block. */
        uint32_t last = class_block_size[__atomic_load_n(&page->class_index, __ATOMIC_RELAXED)];
        bool freed = page->index != 0 && offset % last == 0 &&
                     ((const struct block *)p)->free_mark == block_free_mark(p);
        report_start(&f, p, op, freed && op != ALLOC_OP_USABLE_SIZE);
        if (freed) {
            mb_buf_str(&f, "a block of size class ");
            mb_buf_u64(&f, last);
            mb_buf_str(&f, " bytes, in a page with no block in use");
        } else {
            mb_buf_str(&f, page->index == 0 ? "inside a chunk header"
                                            : "inside a page with no block in use");
            mb_buf_str(&f, " (size class 0)");
        }
        report_end(&f);
    }
    if (offset % block_size != 0) {
        report_start(&f, p, op, false);
        mb_buf_u64(&f, offset % block_size);
        mb_buf_str(&f, " bytes into a block of size class ");
        mb_buf_u64(&f, block_size);
        mb_buf_str(&f, " bytes");
        report_end(&f);
    }
    if (offset / block_size >= __atomic_load_n(&page->capacity, __ATOMIC_RELAXED)) {
        report_start(&f, p, op, false);
        mb_buf_str(&f, "a block of size class ");
        mb_buf_u64(&f, block_size);
        mb_buf_str(&f, " bytes never handed out");
        report_end(&f);
    }
    /* A block start, marked free. */
    if (!marked_block_is_free(page, p)) return;
    report_start(&f, p, op, op != ALLOC_OP_USABLE_SIZE);
    mb_buf_str(&f, op == ALLOC_OP_USABLE_SIZE ? "a free block of size class "
                                              : "a block of size class ");
    mb_buf_u64(&f, block_size);
    mb_buf_str(&f, op == ALLOC_OP_USABLE_SIZE ? " bytes" : " bytes, already free");
    report_end(&f);
}

void large_misuse_report(const void *p, enum alloc_op op, bool freed, uintptr_t span_start,
                         size_t span_bytes) {
    char buf[256];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    uintptr_t offset = (uintptr_t)p - span_start;
    /* A freed range may have been merged with its cached neighbours: any page
     * start in it may have been a span's first byte. */
    bool double_free = freed && ((uintptr_t)p & (OS_PAGE_SIZE - 1)) == 0;
    report_start(&f, p, op, double_free && op != ALLOC_OP_USABLE_SIZE);
    if (double_free) {
        mb_buf_str(&f, "a large span, already freed (size ");
        mb_buf_u64(&f, span_bytes);
        mb_buf_str(&f, " bytes)");
    } else {
        mb_buf_u64(&f, offset);
        mb_buf_str(&f,
                   freed ? " bytes into a freed large span of " : " bytes into a large span of ");
        mb_buf_u64(&f, span_bytes);
        mb_buf_str(&f, " bytes");
    }
    report_end(&f);
}

#ifdef MB_DEBUG
__thread int alloc_inside __attribute__((tls_model("initial-exec")));

void alloc_reentered(enum alloc_op op) {
    char buf[256];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f, "membudget: ");
    mb_buf_str(&f, op_names[op]);
    mb_buf_str(&f, " entered while this thread is inside ");
    mb_buf_str(&f, op_names[alloc_inside - 1]);
    mb_buf_str(&f,
               " (a signal handler that allocates?): the malloc family is not async-signal-safe");
    report_end(&f);
}
#endif
