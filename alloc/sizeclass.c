/* Size classes: exact 16-byte steps up to 256 bytes; above, each doubling
 * opens with a header class of a power of two plus 16 bytes, then has four
 * classes (worst-case internal waste under 25%) up to 1 KiB, eight (under
 * 12.5%) up to CLASS_MAX: a 4.2 KiB block, sqlite's page cache's, takes 4608
 * bytes, not 5120, and its 1032-byte blocks take 1040, not 1152.  Sizes up to
 * CLASS_TABLE_MAX (8 KiB) map through a table of 513 bytes; larger ones
 * through a bit scan (sizeclass_above_table, alloc/internal.h). */
#include "alloc/internal.h"

uint8_t class_table[CLASS_TABLE_MAX / 16 + 1];
uint32_t class_block_size[CLASS_COUNT];

static uint32_t class_size_compute(unsigned index) {
    if (index < 16) return (index + 1) * 16;
    unsigned bit, step, steps_log2;
    if (index < CLASS_FIRST_WIDE) {
        bit = 8 + (index - 16) / 5, step = (index - 16) % 5, steps_log2 = 2;
    } else {
        bit = 10 + (index - CLASS_FIRST_WIDE) / 9, step = (index - CLASS_FIRST_WIDE) % 9, steps_log2 = 3;
    }
    if (step == 0) return (1u << bit) + CLASS_HEADER_BYTES;
    return (1u << bit) + step * (1u << (bit - steps_log2));
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
