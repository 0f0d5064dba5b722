/* The backend interface: what every allocator behind the ABI implements
 * (DESIGN §2, §11).  The native allocator (alloc/native.c) is one
 * implementation, Debian's jemalloc (alloc/jemalloc.c) another; a third is one
 * new file and one entry in the table of alloc/backend.c.
 *
 * The choice is made once, in the constructor, before main and before any
 * thread of the program exists: alloc_backend_choose copies the chosen
 * implementation into alloc_backend, which holds the native allocator from the
 * first allocation (the dynamic loader's) until then.  Every exported entry
 * point of preload/api.c is a tail call through this table, one indirect jump,
 * so a call pays nothing for the choice: no per-call test of which backend
 * runs.  An IFUNC resolver would do the same with a relocation, but it runs
 * while the C library is relocated, before this library is relocated and
 * before the environment can be read, and the jemalloc backend may fail to
 * start and fall back to the native one: the table, written once by the
 * constructor, is the safer choice. */
#ifndef MEMBUDGET_ALLOC_BACKEND_H
#define MEMBUDGET_ALLOC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/os.h"

struct membudget_stats;

/* What a release gives back.  Its own type: the policy layer maps its
 * policies onto it, and the public API its levels (each with a function that
 * says how). */
enum alloc_release_level {
    /* free memory that stayed free for a while */
    ALLOC_RELEASE_IDLE = 1,
    /* all free memory; other threads' kept memory at their next slow path */
    ALLOC_RELEASE_FREE = 2,
    /* the same, as the last step before a budget death */
    ALLOC_RELEASE_CRITICAL = 3
};

/* One live size class, for the dump's size_classes table. */
struct alloc_class_row {
    uint64_t index, block_size, live_bytes, live_blocks;
};
#define ALLOC_CLASS_ROWS_MAX 256

/* One figure of the backend's own, for the dump's allocator section: a
 * string when text is not NULL, else a number. */
struct alloc_figure {
    const char *key;
    const char *text;
    uint64_t value;
};
#define ALLOC_FIGURES_MAX 16

/* Every entry is set.  The allocation entries follow the allocator layer's
 * convention (alloc/alloc.h): NULL with errno = ENOMEM on failure.  The C
 * library's other contracts (overflow checks, alignment validation,
 * realloc(NULL, n) and realloc(p, 0)) are preload/api.c's, checked before the
 * call. */
struct alloc_backend {
    const char *name; /* MEMBUDGET_BACKEND's value, and the dump's "backend" */
    /* Starts the backend, once, from the constructor: NULL, or why it could
     * not start (the native allocator then stays). */
    const char *(*start)(void);

    /* The malloc family.  Blocks are 16-byte aligned, sampled as allocated,
     * and may be freed by any backend's free after a switch (pointers handed
     * out before it stay valid). */
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t bytes);          /* zeroed; count * size, checked by the caller */
    void *(*realloc)(void *p, size_t size); /* p != NULL, size != 0 */
    void (*free)(void *p);
    void *(*aligned)(size_t size, size_t align); /* align: a power of two */
    size_t (*usable_size)(const void *p);        /* 0 for NULL and pointers not ours */
    /* Whether p is a block of ours; slow, for the start-up check that we are
     * the process's allocator. */
    bool (*owns)(const void *p);

    /* Give free memory back to the OS; return the bytes released.  release:
     * from outside an allocation (membudget_release, malloc_trim), so the
     * calling thread's kept memory goes too.  release_shared: safe from inside
     * an allocation (a budget threshold handler). */
    size_t (*release)(enum alloc_release_level level);
    size_t (*release_shared)(enum alloc_release_level level);

    /* Sampling (policy/sample.h).  sample_prepare: the block about to be
     * recorded (it may be moved where the backend's free looks for samples),
     * or NULL to leave it unsampled.  mark_sampled: once per block recorded,
     * so that its free runs the sample hook (alloc/alloc.h). */
    void *(*sample_prepare)(void *p, size_t size);
    void (*mark_sampled)(void *p);

    /* Statistics.  stats fills what the allocator owns of membudget_stats
     * (out is zeroed; alloc_stats adds the counter).  classes: the size
     * classes with live blocks.  figures: the backend's own figures for the
     * dump.  wait false: the death dump's bounded locking. */
    void (*stats)(struct membudget_stats *out, bool wait);
    size_t (*classes)(struct alloc_class_row *out, size_t cap, bool wait);
    size_t (*figures)(struct alloc_figure *out, size_t cap);
    /* Bytes the counter holds for the backend beyond the native allocator's
     * records, for the debug build's counter check. */
    uint64_t (*charged_bytes)(void);

    /* fork, between the heap registry's lock and the sampler's (alloc/lock.h
     * ranks); the child's runs first of the allocator's. */
    void (*atfork_prepare)(void);
    void (*atfork_parent)(void);
    void (*atfork_child)(void);
};

/* The backend in use.  Hidden, so that an entry is read with one
 * instruction, not through the GOT.  It is the first member of a page of its
 * own (alloc/native.c), read-only once alloc_backend_choose has run. */
extern struct alloc_backend alloc_backend __attribute__((visibility("hidden")));
/* The unit mprotect works in: OS_PAGE_SIZE, unless the platform's pages can
 * be larger (alloc/os_darwin_compat.h: 16 KiB, arm64's). */
#ifndef MB_OS_PROTECT_PAGE
#define MB_OS_PROTECT_PAGE OS_PAGE_SIZE
#endif
union alloc_backend_page {
    struct alloc_backend backend;
    unsigned char page[MB_OS_PROTECT_PAGE];
};
extern union alloc_backend_page alloc_backend_page __attribute__((visibility("hidden")));

/* Starts the backend named (MEMBUDGET_BACKEND) and makes it the one in use:
 * NULL, or why not (the native allocator then stays).  Once, from the
 * constructor. */
const char *alloc_backend_choose(const char *name);
/* The native allocator, the default: the texts that name the backend only
 * when it is another one (malloc_stats, the exit summary) ask this. */
bool alloc_backend_is_default(void);

#endif
