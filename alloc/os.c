/* What the platform interface (alloc/os.h) builds on its own calls, the same
 * on every OS. */
#include "alloc/os.h"

#include <sys/mman.h>

void *os_map(size_t len) {
    long r = os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return os_failed(r) ? NULL : (void *)r;
}

void *os_map_aligned(size_t len, size_t align) {
    if (align <= OS_PAGE_SIZE) return os_map(len);
    if (len + align < len) return NULL;
    /* Over-map by the alignment and trim both ends: two extra munmaps, but only
     * on the rare path of a new chunk or an over-aligned large span. */
    size_t span = len + align - OS_PAGE_SIZE;
    char *raw = os_map(span);
    if (raw == NULL) return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - len;
    if (head) os_munmap(raw, head);
    if (tail) os_munmap((char *)start + len, tail);
    return (void *)start;
}

void os_unmap(void *addr, size_t len) { os_munmap(addr, len); }
