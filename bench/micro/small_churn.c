/* Single-thread small-object churn: a working set of live objects of random sizes
 * (8-512 bytes) in which random slots are freed and refilled, so allocation and
 * free happen in random order, the pattern of an interpreter or a document tree. */
#include "common.h"

#define SLOTS 65536          /* live objects: ~17 MiB of payload */
#define OPS (36u * 1000 * 1000)
#define MIN_SIZE 8
#define MAX_SIZE 512

int main(void) {
    void **slot = calloc(SLOTS, sizeof *slot);
    uint32_t *slot_size = calloc(SLOTS, sizeof *slot_size);
    if (!slot || !slot_size) die("calloc failed", SLOTS);
    rng_t rng = {42};
    uint64_t sum = 0, frees = 0;

    for (uint32_t op = 0; op < OPS; op++) {
        uint64_t r = rng_next(&rng);
        uint32_t i = (uint32_t)(r % SLOTS);
        if (slot[i]) {
            sum += stamp_check(slot[i], slot_size[i]);
            free(slot[i]);
            slot[i] = NULL;
            frees++;
        }
        /* Refill most of the time; leaving ~1/8 empty lets the live set breathe. */
        if ((r >> 32) % 8 != 0) {
            size_t size = MIN_SIZE + (size_t)((r >> 40) % (MAX_SIZE - MIN_SIZE + 1));
            slot[i] = xmalloc(size);
            slot_size[i] = (uint32_t)size;
            stamp_write(slot[i], size, op);
        }
    }
    uint64_t live = 0;
    for (uint32_t i = 0; i < SLOTS; i++) {
        if (!slot[i]) continue;
        sum += stamp_check(slot[i], slot_size[i]);
        free(slot[i]);
        live++;
    }
    free(slot);
    free(slot_size);
    printf("small_churn ops=%u frees=%" PRIu64 " live_at_end=%" PRIu64 " checksum=%016" PRIx64 "\n",
           OPS, frees, live, sum);
    return 0;
}
