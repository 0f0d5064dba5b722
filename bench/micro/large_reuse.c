/* Large blocks replaced at random: up to 20 blocks of 5-25 MiB are kept alive, and
 * 2,000 times a random one is freed and replaced by a new block of a random size,
 * which is zeroed (every page written) and stamped.  An allocator that returns a
 * freed span to the OS at once pays a page fault per 4 KiB on every replacement;
 * one that keeps freed spans committed reuses warm pages. */
#include "common.h"

#define SLOTS 20
#define REPLACEMENTS 2000
#define MIN_SIZE ((size_t)5 << 20)
#define MAX_SIZE ((size_t)25 << 20)

typedef struct {
    unsigned char *data;
    size_t size;
    uint64_t tag;
} block_t;

/* Called through a volatile pointer: the compiler must not fuse malloc and memset
 * into calloc, which an allocator could serve from untouched fresh pages. */
static void *(*volatile zero_block)(void *, int, size_t) = memset;

static void block_new(block_t *b, rng_t *rng, uint64_t tag) {
    b->size = rng_range(rng, MIN_SIZE, MAX_SIZE) & ~(size_t)7;
    b->data = xmalloc(b->size);
    zero_block(b->data, 0, b->size);
    b->tag = tag;
    stamp_write(b->data, b->size, tag);
}

/* The stamp and a zero word in the middle: the block kept its contents. */
static uint64_t block_check(const block_t *b) {
    uint64_t mid;
    memcpy(&mid, b->data + b->size / 2, sizeof mid);
    uint64_t tag = stamp_check(b->data, b->size);
    if (tag != b->tag || mid != 0)
        die("large block content corrupted", b->size);
    return tag ^ b->size;
}

int main(void) {
    rng_t rng = {19};
    block_t slot[SLOTS] = {{0}};
    uint64_t sum = 0, bytes = 0;
    for (unsigned n = 0; n < REPLACEMENTS; n++) {
        block_t *b = &slot[rng_next(&rng) % SLOTS];
        if (b->data != NULL) {
            sum += block_check(b);
            free(b->data);
        }
        block_new(b, &rng, mix64(n + 1));
        bytes += b->size;
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i].data == NULL) continue;
        sum += block_check(&slot[i]);
        free(slot[i].data);
    }
    printf("large_reuse replacements=%d bytes=%" PRIu64 " checksum=%016" PRIx64 "\n",
           REPLACEMENTS, bytes, sum);
    return 0;
}
