/* Symbol interposition on Linux (alloc/os.h, the platform interface): the
 * malloc family of glibc's ABI, exported under its own names as ELF aliases of
 * the mb_* entry points, so that the dynamic linker binds the program's calls
 * to us first (LD_PRELOAD) at no cost per call.  An alias must sit in the
 * object that defines its target: this list is included at the end of
 * preload/api.c (MB_INTERPOSE_H, set by the Makefile's platform block).  The
 * names match preload/exports.map; mmap, munmap and mremap are exported by
 * preload/mmap.c. */
#ifndef MEMBUDGET_PRELOAD_INTERPOSE_LINUX_H
#define MEMBUDGET_PRELOAD_INTERPOSE_LINUX_H

#define MB_ALIAS(name, target) \
    __typeof__(target) name __attribute__((alias(#target), visibility("default")))

MB_ALIAS(malloc, mb_malloc);
MB_ALIAS(calloc, mb_calloc);
MB_ALIAS(realloc, mb_realloc);
MB_ALIAS(reallocarray, mb_reallocarray);
MB_ALIAS(free, mb_free);
MB_ALIAS(cfree, mb_free);
MB_ALIAS(aligned_alloc, mb_aligned_alloc);
MB_ALIAS(memalign, mb_memalign);
MB_ALIAS(posix_memalign, mb_posix_memalign);
MB_ALIAS(valloc, mb_valloc);
MB_ALIAS(pvalloc, mb_pvalloc);
MB_ALIAS(malloc_usable_size, mb_malloc_usable_size);
MB_ALIAS(malloc_trim, mb_malloc_trim);
MB_ALIAS(mallinfo, mb_mallinfo);
MB_ALIAS(mallinfo2, mb_mallinfo2);
MB_ALIAS(mallopt, mb_mallopt);
MB_ALIAS(malloc_stats, mb_malloc_stats);
MB_ALIAS(__libc_malloc, mb_malloc);
MB_ALIAS(__libc_calloc, mb_calloc);
MB_ALIAS(__libc_realloc, mb_realloc);
MB_ALIAS(__libc_free, mb_free);
MB_ALIAS(__libc_memalign, mb_memalign);
MB_ALIAS(__libc_valloc, mb_valloc);
MB_ALIAS(__libc_pvalloc, mb_pvalloc);
MB_ALIAS(__libc_mallinfo, mb_mallinfo);
MB_ALIAS(__libc_mallopt, mb_mallopt);
MB_ALIAS(__posix_memalign, mb_posix_memalign);

#endif
