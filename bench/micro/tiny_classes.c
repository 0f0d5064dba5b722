/* A small program that uses many size classes: a few hundred KiB in ~500
 * blocks of 8 bytes to 4 KiB, spread over every small class, with a quarter
 * freed and refilled once.  Its peak RSS shows what each class in use costs
 * beyond the bytes it holds (a committed unit per class, its metadata). */
#include "common.h"

#define BLOCKS 500
#define MAX_SIZE 4096

int main(void) {
    static void *block[BLOCKS];
    static size_t size[BLOCKS];
    rng_t rng = {1919};
    uint64_t sum = 0, bytes = 0;

    for (int i = 0; i < BLOCKS; i++) {
        /* Sizes spread evenly over log2 so that every class up to 4 KiB is hit. */
        int shift = (int)rng_range(&rng, 3, 11);
        size[i] = ((size_t)1 << shift) + rng_range(&rng, 0, ((size_t)1 << shift) - 1);
        block[i] = xmalloc(size[i]);
        stamp_write(block[i], size[i], (uint64_t)i);
        bytes += size[i];
    }
    for (int i = 0; i < BLOCKS; i += 4) {
        sum += stamp_check(block[i], size[i]);
        free(block[i]);
        size[i] = rng_range(&rng, 8, MAX_SIZE);
        block[i] = xmalloc(size[i]);
        stamp_write(block[i], size[i], (uint64_t)i + BLOCKS);
    }
    for (int i = 0; i < BLOCKS; i++) {
        sum += mix64(stamp_check(block[i], size[i]) ^ size[i]);
        free(block[i]);
    }
    printf("tiny_classes blocks=%d bytes=%" PRIu64 " checksum=%016" PRIx64 "\n", BLOCKS, bytes,
           sum);
    return 0;
}
