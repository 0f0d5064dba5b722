/* Darwin: what the portable sources take from glibc or ELF, given here once
 * for the whole build (the Makefile's darwin block includes this header first
 * in every file of the library, -include).  Only declarations and macros: the
 * definitions are in alloc/os_darwin.c. */
#ifndef MEMBUDGET_ALLOC_OS_DARWIN_COMPAT_H
#define MEMBUDGET_ALLOC_OS_DARWIN_COMPAT_H

#include <crt_externs.h>
#include <execinfo.h>
#include <stddef.h>

/* getenv unless the process is setuid or setgid (issetugid): glibc's
 * secure_getenv, which policy/config.c and policy/dump.c use. */
char *secure_getenv(const char *name) __attribute__((visibility("hidden")));

/* A dynamic library reaches the environment through _NSGetEnviron: Darwin
 * gives `environ` to the main executable only. */
#define environ (*_NSGetEnviron())

/* glibc's mallinfo structures: the library keeps exporting mallinfo and
 * mallinfo2 under their names (plain exports: libSystem has neither, so no
 * program calls them through libSystem). */
struct mallinfo {
    int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct mallinfo2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

/* Linux's mremap flags: Darwin has no mremap (os_remap answers -ENOSYS and
 * the allocator copies); preload/mmap.c's bookkeeping compiles unchanged. */
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MREMAP_DONTUNMAP 4

/* The sampler's backtraces (policy/sample.c): Apple's libunwind has neither
 * unw_backtrace nor caching policies; libSystem's backtrace() walks the frame
 * pointers, which both Darwin ABIs keep, without allocating or locking. */
#define unw_backtrace(buf, n) backtrace((buf), (n))
#define unw_set_caching_policy(space, policy) ((void)(space), (void)(policy), 0)
#define UNW_CACHE_PER_THREAD 0

/* Apple silicon's pages are 16 KiB (x86_64's 4 KiB): the backend table's
 * page (alloc/backend.h) is that large and aligned, so that mprotect makes it
 * read-only and nothing else with it. */
#define MB_OS_PROTECT_PAGE ((size_t)16384)

/* A second name for a data symbol of the same object (alloc/native.c's
 * alloc_backend for alloc_backend_page): Mach-O has no alias attribute, its
 * assembler has symbol assignment. */
#define MB_OS_DATA_ALIAS(type, name, target)                                                       \
    __asm__(".private_extern _" #name "\n_" #name " = _" #target)

#endif
