/* The jemalloc backend (MEMBUDGET_BACKEND=jemalloc, DESIGN §2): the ABI of
 * preload/ served by Debian's jemalloc instead of the native allocator, with
 * everything above the allocator unchanged.
 *
 * jemalloc is linked into the library from Debian's libjemalloc_pic.a with its
 * public names renamed (malloc -> mbje_malloc, ...) and its constructor
 * removed, so it is invisible to the program and stays uninitialized unless
 * this backend is chosen.  Debian's libjemalloc.so.2 cannot be loaded with
 * dlopen() ("cannot allocate memory in static TLS block": it uses
 * initial-exec TLS), and preloading it beside us would make its own
 * operator new/delete the program's.
 *
 * The budget: custom extent hooks on every arena charge what jemalloc commits
 * and uncharge what it decommits or unmaps (dalloc is left out, so jemalloc
 * keeps its virtual memory and decommits instead, as it does by default on
 * Linux; the purge hooks are left out so that every page that stops counting
 * goes through decommit).  The extents of an arena in the moment before it has
 * our hooks are charged the same way through jemalloc's own mmap calls.  Its
 * metadata blocks are mapped 2 MiB at a time and touched as used: the counter
 * holds what of them is resident, measured with mincore(2) every 10 ms at most
 * from the thread ticks.  A hook runs inside jemalloc, under its locks: it never runs the
 * pressure code.  A charge that would cross the next threshold is refused
 * there, jemalloc returns NULL, and the entry point below runs the pressure
 * handler outside jemalloc and retries with its charges approved.
 *
 * Pointers handed out by the native allocator before the switch (the dynamic
 * loader's, the C library's start-up) stay native: free and realloc route them
 * by the chunk bitmap and, if any large span existed at the switch, by the
 * large-span table. */
#ifndef MEMBUDGET_ALLOC_JEMALLOC_H
#define MEMBUDGET_ALLOC_JEMALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal.h"

struct membudget_stats;

/* True once the backend serves allocations; set once, before main.  A build
 * without libjemalloc-dev has the constant false, so the compiler drops every
 * call below that it guards. */
#ifdef MB_HAVE_JEMALLOC
extern bool jm_active;
#else
#define jm_active false
#endif

/* Starts jemalloc and switches the entry points to it.  From the constructor,
 * before any pthread_atfork handler of ours is registered (jemalloc's own
 * handler must run after ours in the prepare phase).  Returns NULL, or why it
 * could not start (the native allocator then stays). */
const char *jm_start(void);
/* "5.3.0-0-g..." or NULL when the backend is not in this build. */
const char *jm_version(void);

/* The entry points, with the C library's contracts left to preload/api.c.
 * malloc and calloc call jemalloc's own fast path (renamed mbje_*) straight
 * from the exported functions while the thread's allocation countdown
 * (alloc_countdown) lasts, and jm_call when it runs out: that path settles
 * what the budget refused, runs the pressure code a fast path left pending,
 * and is the only one where a charge may be refused. */
void *mbje_malloc(size_t size);
void *mbje_calloc(size_t count, size_t size);
void mbje_free(void *p);
void jm_free_slow(void *p);

enum jm_op {
    JM_MALLOC,          /* a = size */
    JM_CALLOC,          /* a = count, b = size */
    JM_CALLOC_SAMPLED,  /* a = bytes, zeroed, page-aligned */
    JM_REALLOC,         /* p, a = size */
    JM_REALLOC_SAMPLED, /* p, a = size, page-aligned */
    JM_ALIGNED          /* a = size, b = alignment */
};
/* Runs op; NULL when it fails.  An allocation about to be sampled is asked
 * page-aligned (the *_SAMPLED ops, or JM_ALIGNED with JM_SAMPLED_ALIGN). */
void *jm_call(enum jm_op op, void *p, size_t a, size_t b);

/* jemalloc's smallest class (8 bytes) is only 8-aligned; every block of ours
 * is 16-aligned (max_align_t), so nothing smaller than 16 is asked for. */
#define JM_MIN_REQUEST 16
/* Sampled blocks are page-aligned (jm_sampled_block), so a free looks for a
 * sample only when the block is. */
#define JM_SAMPLED_ALIGN ((size_t)4096)

/* The native allocator's blocks (handed out before the switch) lie in
 * [native_lo, native_hi): two compares tell jemalloc's from them. */
static inline void jm_free(void *p) {
    uintptr_t a = (uintptr_t)p;
    uintptr_t lo = atomic_load_explicit(&native_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&native_hi, memory_order_relaxed);
    if (__builtin_expect(a - lo < hi - lo || (a & (JM_SAMPLED_ALIGN - 1)) == 0, 0)) {
        jm_free_slow(p);
        return;
    }
    mbje_free(p);
}

/* sample: the block about to be sampled (it stays page-aligned). */
void *jm_realloc(void *p, size_t size, bool sample);
void *jm_aligned(size_t size, size_t align); /* align: power of two > 16 */
void jm_free(void *p);
size_t jm_usable_size(const void *p);
/* A block about to be sampled (size bytes asked): returns it, or a
 * page-aligned copy of it (the old one freed), or NULL when no such copy could
 * be made (then it must not be sampled).  The free path only looks for
 * samples among page-aligned blocks. */
void *jm_sampled_block(void *p, size_t size);
/* Whether p is a block of ours (native or jemalloc); slow (a mallctl), for the
 * start-up check that we really are the process's allocator. */
bool jm_owns(const void *p);

/* A thread's allocation countdown ran out (jm_call runs this first, so at
 * least every JM_TICK_BYTES a thread allocates): flushes the thread cache when
 * asked, sets the hooks on arenas jemalloc created since the last look,
 * measures the metadata, and runs the monitor tick. */
#define JM_TICK_BYTES (256 * 1024)
void jm_tick(void);

/* In a fork child: a metadata measurement the parent had under way is over. */
void jm_atfork_child(void);

/* Releases (membudget_release, the pressure levels): level 1 runs jemalloc's
 * time-based decay; 2 and up flush the calling thread's cache now, have every
 * other thread flush its cache at its next tick, and purge every arena.  The
 * calling thread may always flush its own cache: on this backend the pressure
 * code never runs inside jemalloc (a hook only refuses a charge; jm_call
 * settles it outside).  Returns the bytes decommitted meanwhile. */
size_t jm_release(int level);

/* The figures of membudget_stats from mallctl ("epoch" refreshed). */
void jm_stats(struct membudget_stats *out);
/* jemalloc's own view for the dump: bytes allocated, active, resident, mapped,
 * retained and metadata; false when mallctl failed. */
struct jm_totals {
    uint64_t allocated, active, resident, mapped, retained, metadata;
    uint64_t arenas, arenas_hooked;
    uint64_t charged_bytes;     /* the counter's share for jemalloc's committed extents */
    uint64_t metadata_mapped;   /* jemalloc's metadata blocks, mapped */
    uint64_t metadata_resident; /* ... and resident: the counter's share for them */
};
bool jm_totals(struct jm_totals *out);
/* Per-bin live figures (jemalloc's small size classes): fills up to cap
 * entries and returns how many bins have live regions. */
struct jm_bin {
    uint64_t index, block_size, live_bytes, live_blocks;
};
size_t jm_bins(struct jm_bin *out, size_t cap);
/* Bytes the counter holds for jemalloc (extents and resident metadata), for
 * the debug build's counter check. */
uint64_t jm_charged_bytes(void);
#endif
