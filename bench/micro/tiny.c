/* The fixed cost of a small program: ~100 small blocks of assorted sizes
 * (16-808 bytes, a few KiB in all), each written, checked and freed.  Its peak RSS
 * is almost all start-up cost: the allocator's libraries, text, metadata and the
 * first page of each size class it touches. */
#include "common.h"

#define BLOCKS 100

int main(void) {
    void *block[BLOCKS];
    size_t size[BLOCKS];
    rng_t rng = {19};
    uint64_t sum = 0, bytes = 0;

    for (int i = 0; i < BLOCKS; i++) {
        size[i] = 16 + 8 * (size_t)rng_range(&rng, 0, 99);
        block[i] = xmalloc(size[i]);
        stamp_write(block[i], size[i], (uint64_t)i * 7919u);
        bytes += size[i];
    }
    for (int i = 0; i < BLOCKS; i++) {
        sum += mix64(stamp_check(block[i], size[i]) ^ size[i]);
        free(block[i]);
    }
    printf("tiny blocks=%d bytes=%" PRIu64 " checksum=%016" PRIx64 "\n", BLOCKS, bytes, sum);
    return 0;
}
