/* Size classes: exact 16-byte steps up to 256 bytes, then four classes per
 * doubling up to 1 KiB (worst-case internal waste under 25%), then eight per
 * doubling up to CLASS_MAX (under 12.5%: a 4.2 KiB block, sqlite's page
 * cache's, takes 4608 bytes, not 5120).  Sizes up to CLASS_TABLE_MAX map
 * through a table; larger ones through a bit scan (sizeclass_above_table,
 * alloc/internal.h). */
#include "alloc/internal.h"

uint8_t class_table[CLASS_TABLE_MAX / 16 + 1];
uint32_t class_block_size[CLASS_COUNT];

static uint32_t class_size_compute(unsigned index) {
    if (index < 16) return (index + 1) * 16;
    if (index < 24) {
        unsigned bit = 8 + (index - 16) / 4, step = (index - 16) % 4;
        return (1u << bit) + (step + 1) * (1u << (bit - 2));
    }
    unsigned bit = 10 + (index - 24) / 8, step = (index - 24) % 8;
    return (1u << bit) + (step + 1) * (1u << (bit - 3));
}

/* Called from the first allocation; until then the table maps every size to
 * class 0, whose direct page is empty, so the slow path runs and gets here. */
void sizeclass_init(void) {
    for (unsigned i = 0; i < CLASS_COUNT; i++) class_block_size[i] = class_size_compute(i);
    for (size_t i = 0; i <= CLASS_TABLE_MAX / 16; i++)
        class_table[i] = (uint8_t)sizeclass_compute(i * 16);
    mb_check(class_block_size[CLASS_COUNT - 1] == CLASS_MAX, "class table ends at CLASS_MAX");
}

unsigned sizeclass_for_aligned(size_t size, size_t align) {
    size_t need = size > align ? size : align;
    if (need > CLASS_MAX) return CLASS_COUNT;
    /* Pages start at multiples of their (power-of-two) size, so every block of
     * a class whose size is a multiple of align is aligned; the next power of
     * two always qualifies, so the scan is short. */
    for (unsigned c = sizeclass_of(need); c < CLASS_COUNT; c++)
        if ((class_block_size[c] & (align - 1)) == 0) return c;
    return CLASS_COUNT;
}
