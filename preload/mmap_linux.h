/* mmap, munmap, mmap64 and mremap on Linux: exported under their names
 * (preload/exports.map), included at the end of preload/mmap.c
 * (MB_MMAP_EXPORTS_H, set by the Makefile's platform block). */
#ifndef MEMBUDGET_PRELOAD_MMAP_LINUX_H
#define MEMBUDGET_PRELOAD_MMAP_LINUX_H

MB_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mb_mmap(addr, len, prot, flags, fd, off);
}
MB_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mb_mmap(addr, len, prot, flags, fd, off);
}
MB_EXPORT int munmap(void *addr, size_t len) { return mb_munmap(addr, len); }
MB_EXPORT void *mremap(void *old_addr, size_t old_len, size_t new_len, int flags, ...) {
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    return mb_mremap(old_addr, old_len, new_len, flags, new_addr);
}

#endif
