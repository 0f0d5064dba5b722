/* The allocator layer's interface to the layers above (DESIGN §1): policy/ and
 * preload/ include this, never alloc/internal.h, which is private to alloc/.
 *
 * Here: start-up and the backend table (alloc/backend.h), releases and
 * statistics (through the table), the hooks the policy layer hangs on the
 * allocator (tick, sampling), fork, and the metadata allocator that the mmap
 * wrappers keep their records in.
 *
 * Errors in this layer: an allocation that fails returns NULL, and the
 * backends' allocation entries also set errno to ENOMEM, since they end the
 * exported call (a tail call: preload/api.c cannot act after them); a backend
 * that cannot start says why, as a sentence; the rest cannot fail (releases
 * and statistics return what they found).  Functions that stand in for
 * another interface keep its convention (jemalloc's extent hooks: true on
 * failure; its mmap and syscall: -1 or MAP_FAILED with errno).  The system
 * calls below this layer (alloc/os.h) return -errno. */
#ifndef MEMBUDGET_ALLOC_ALLOC_H
#define MEMBUDGET_ALLOC_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/backend.h"
#include "alloc/lock.h" /* the ranked lock, which the layers above use too */
#include "alloc/os.h"

/* Every block is aligned to this (max_align_t), malloc(1) included. */
#define ALLOC_MIN_ALIGN 16

/* Initializes the native allocator from static state, without allocating;
 * every allocation path calls it as needed, the constructor first of all. */
void alloc_init(void);

/* Called on allocator slow paths (a page taken or retired, a span mapped,
 * a backend's tick) with the current time; the policy layer hangs its monitor
 * tick here.  The hook must not allocate through the malloc family. */
typedef void (*alloc_tick_fn)(uint64_t now_ns);
void alloc_set_tick_hook(alloc_tick_fn fn);

/* How many bytes the footprint may still grow before it reaches the first
 * pressure threshold (Conservative); 0 at or over it, or once the policy has
 * left Unrestricted; UINT64_MAX without one.  Set by the policy layer; the
 * native allocator keeps freed large spans committed within half of it
 * (alloc/large.c).  Called under allocator locks: it must only read atomics. */
typedef uint64_t (*alloc_headroom_fn)(void);
void alloc_set_headroom_hook(alloc_headroom_fn fn);

/* Sampling (DESIGN §6).  record: the thread's allocation countdown ran out on
 * the allocation *p of size bytes, just made; it may sample it (and move it,
 * through alloc_backend.sample_prepare), and returns the bytes to allocate
 * before the next call (INT64_MAX: never).  Until it is set, a thread looks
 * again every ALLOC_SAMPLE_UNSET_BYTES.  retire: a block marked sampled is
 * being freed; true when it was a sample. */
typedef int64_t (*alloc_sample_fn)(void **p, size_t size);
typedef bool (*alloc_sample_free_fn)(void *p);
void alloc_set_sample_hooks(alloc_sample_fn record, alloc_sample_free_fn retire);
#define ALLOC_SAMPLE_UNSET_BYTES ((int64_t)64 << 10)

/* Every figure of membudget_stats the allocator owns (all but mmap_bytes and
 * the policy's), from the backend in use.  wait false: for the death dump,
 * which must finish even when a lock's holder never returns; each lock is
 * tried for a bounded time, then read without it. */
void alloc_stats(struct membudget_stats *out, bool wait);
/* Debug builds: checks the counter against the sum of what is committed. */
void alloc_check_counter(uint64_t charged_elsewhere);

/* fork: the heap registry's lock (rank 1) comes before the policy's and the
 * mmap table's; the backend's hooks (alloc_backend.atfork_*) after them. */
void heap_atfork_prepare(void);
void heap_atfork_parent(void);
void heap_atfork_child(void);

/* The metadata allocator: zeroed memory of ours, outside the malloc family
 * (the mmap wrappers' table); NULL when out of memory. */
void *meta_alloc(size_t size);
void meta_free(void *p, size_t size);
/* Takes the metadata lock (the debug build's test hooks). */
void meta_lock_all(void);

#endif
