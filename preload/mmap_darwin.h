/* mmap and munmap on Darwin: interposed through dyld's __DATA,__interpose
 * section (preload/interpose_darwin.h), so that anonymous mappings of every
 * image are charged as on Linux.  Darwin has no mmap64 and no mremap.
 * Included at the end of preload/mmap.c (MB_MMAP_EXPORTS_H). */
#ifndef MEMBUDGET_PRELOAD_MMAP_DARWIN_H
#define MEMBUDGET_PRELOAD_MMAP_DARWIN_H

struct mb_mmap_interpose {
    const void *replacement;
    const void *replacee;
};
__attribute__((used)) static const struct mb_mmap_interpose mb_interpose_mmap[]
    __attribute__((section("__DATA,__interpose"))) = {
        {(const void *)mb_mmap, (const void *)mmap},
        {(const void *)mb_munmap, (const void *)munmap},
};

#endif
