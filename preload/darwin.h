/* What the Darwin files of the ABI layer share (preload/zone_darwin.c,
 * preload/interpose_darwin.h).
 *
 * Thread-local variables on Darwin are allocated by dyld, with malloc, the
 * first time a thread touches one of an image's: our malloc touching ours
 * would call itself.  So each thread is "ready" only once its block of ours
 * exists: a pthread introspection hook touches it as the thread starts (the
 * constructor does it for the thread that loads us) and then sets a pthread
 * key, which needs no allocation.  Until then, a thread's allocations are
 * served by the system's zone; its blocks come back to that zone when freed
 * (free and realloc ask malloc_zone_from_ptr for blocks that are not ours). */
#ifndef MEMBUDGET_PRELOAD_DARWIN_H
#define MEMBUDGET_PRELOAD_DARWIN_H

#include <malloc/malloc.h>
#include <pthread.h>
#include <stdbool.h>

extern pthread_key_t mb_darwin_ready_key __attribute__((visibility("hidden")));
extern _Atomic bool mb_darwin_ready_key_ok __attribute__((visibility("hidden")));

/* The calling thread's thread-local block of ours exists. */
static inline bool mb_darwin_thread_ready(void) {
    return mb_darwin_ready_key_ok && pthread_getspecific(mb_darwin_ready_key) != NULL;
}

/* The zone that was the default before ours: for threads not yet ready. */
malloc_zone_t *mb_darwin_system_zone(void) __attribute__((visibility("hidden")));

/* malloc_good_size: what a block of n bytes can hold (preload/interpose_darwin.h). */
size_t mb_darwin_good_size(size_t n) __attribute__((visibility("hidden")));

#endif
