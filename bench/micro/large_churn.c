/* Large-object churn: bursts of 1-8 blocks of 64 KiB to 4 MiB are allocated, filled,
 * checked and freed, over and over, as I/O buffers and decoded images are; between
 * bursts nothing large is alive.  An allocator that hands freed memory back to the OS
 * at once pays a page fault per 4 KiB on every reuse; one that keeps it for a while
 * pays only the fill (DESIGN §2). */
#include "common.h"

#define BURSTS 2500
#define MAX_BURST 8          /* blocks alive at once */
#define MIN_SIZE (64u << 10)
#define MAX_SIZE (4u << 20)

typedef struct {
    uint64_t *data;
    size_t words;
    uint64_t tag;
} block_t;

/* Checks the first, last and a few sampled words of the block. */
static uint64_t block_check(const block_t *b, rng_t *rng) {
    uint64_t sum = 0;
    for (int k = 0; k < 8; k++) {
        size_t i = k == 0 ? 0 : k == 1 ? b->words - 1 : (size_t)(rng_next(rng) % b->words);
        if (b->data[i] != (b->tag ^ (i >> 9))) die("large block content corrupted", i);
        sum += b->data[i];
    }
    return sum;
}

/* Fills the block with a pattern that changes every 4 KiB, touching every page. */
static void block_fill(block_t *b) {
    for (size_t base = 0; base < b->words; base += 512) {
        size_t end = base + 512 < b->words ? base + 512 : b->words;
        uint64_t v = b->tag ^ (base >> 9);
        for (size_t i = base; i < end; i++) b->data[i] = v;
    }
}

int main(void) {
    rng_t rng = {77};
    block_t burst[MAX_BURST];
    uint64_t sum = 0, bytes = 0, blocks = 0;
    for (uint32_t n = 0; n < BURSTS; n++) {
        unsigned k = (unsigned)rng_range(&rng, 1, MAX_BURST);
        for (unsigned j = 0; j < k; j++) {
            /* Sizes spread evenly over the doublings from MIN_SIZE to MAX_SIZE: as
             * many 64-128 KiB blocks as 2-4 MiB ones. */
            size_t low = (size_t)MIN_SIZE << (rng_next(&rng) % 6);
            size_t size = (low + (size_t)(rng_next(&rng) % low)) & ~(size_t)7;
            block_t *b = &burst[j];
            b->data = xmalloc(size);
            b->words = size / 8;
            b->tag = mix64(((uint64_t)n << 8) | j);
            block_fill(b);
            bytes += size;
            blocks++;
        }
        /* Free in an order that varies from burst to burst. */
        unsigned start = (unsigned)(rng_next(&rng) % k);
        for (unsigned j = 0; j < k; j++) {
            block_t *b = &burst[(start + j) % k];
            sum += block_check(b, &rng);
            free(b->data);
        }
    }
    printf("large_churn bursts=%d blocks=%" PRIu64 " bytes=%" PRIu64 " checksum=%016" PRIx64 "\n",
           BURSTS, blocks, bytes, sum);
    return 0;
}
