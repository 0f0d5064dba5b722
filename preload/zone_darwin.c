/* The malloc zone of ours on Darwin, made the default zone, so that what does
 * not call malloc by name comes to us too: malloc_zone_malloc on the default
 * zone, CoreFoundation, Objective-C, malloc_size and malloc_good_size through
 * the zone.  The zone's functions are the mb_* entry points of preload/api.c;
 * its introspection answers enough for leaks(1), vmmap(1) and the fork
 * protocol of libSystem not to fail: it enumerates no blocks (our heap is not
 * laid out as the system's tools expect), checks as sound, and its force_lock
 * does nothing because the library's pthread_atfork handlers (os_atfork) hold
 * every lock of ours across fork already.
 *
 * Registered from a constructor; the system's zones that stood before ours
 * are registered again behind it (malloc_get_all_zones lists the default
 * first), as mimalloc and jemalloc do. */
#include <malloc/malloc.h>
#include <pthread.h>
#include <pthread/introspection.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc/alloc.h"
#include "membudget.h"
#include "preload/darwin.h"
#include "preload/preload.h"

void *mb_malloc(size_t size);
void *mb_calloc(size_t count, size_t size);
void *mb_realloc(void *ptr, size_t size);
void mb_free(void *ptr);
void *mb_memalign(size_t alignment, size_t size);
void *mb_valloc(size_t size);
int mb_malloc_trim(size_t pad);

static size_t zone_size(malloc_zone_t *zone, const void *p) {
    (void)zone;
    return p != NULL ? alloc_backend.usable_size(p) : 0; /* 0: not ours */
}

/* A thread not yet ready (preload/darwin.h) is served by the system's zone. */
static void *zone_malloc(malloc_zone_t *zone, size_t size) {
    (void)zone;
    if (!mb_darwin_thread_ready()) return malloc_zone_malloc(mb_darwin_system_zone(), size);
    return mb_malloc(size);
}

static void *zone_calloc(malloc_zone_t *zone, size_t count, size_t size) {
    (void)zone;
    if (!mb_darwin_thread_ready()) return malloc_zone_calloc(mb_darwin_system_zone(), count, size);
    return mb_calloc(count, size);
}

static void *zone_valloc(malloc_zone_t *zone, size_t size) {
    (void)zone;
    if (!mb_darwin_thread_ready()) return malloc_zone_valloc(mb_darwin_system_zone(), size);
    return mb_valloc(size);
}

static void zone_free(malloc_zone_t *zone, void *p) {
    (void)zone;
    mb_free(p);
}

static void zone_free_definite_size(malloc_zone_t *zone, void *p, size_t size) {
    (void)zone, (void)size;
    mb_free(p);
}

/* Called for blocks of ours (the system looks the zone up by size) or NULL. */
static void *zone_realloc(malloc_zone_t *zone, void *p, size_t size) {
    (void)zone;
    if (p == NULL && !mb_darwin_thread_ready())
        return malloc_zone_malloc(mb_darwin_system_zone(), size);
    return mb_realloc(p, size);
}

static void *zone_memalign(malloc_zone_t *zone, size_t alignment, size_t size) {
    (void)zone;
    if (!mb_darwin_thread_ready())
        return malloc_zone_memalign(mb_darwin_system_zone(), alignment, size);
    return mb_memalign(alignment, size);
}

/* Our zone lives as long as the process. */
static void zone_destroy(malloc_zone_t *zone) { (void)zone; }

static unsigned zone_batch_malloc(malloc_zone_t *zone, size_t size, void **results,
                                  unsigned count) {
    unsigned n = 0;
    while (n < count && (results[n] = zone_malloc(zone, size)) != NULL) n++;
    return n;
}

static void zone_batch_free(malloc_zone_t *zone, void **ptrs, unsigned count) {
    (void)zone;
    for (unsigned i = 0; i < count; i++) mb_free(ptrs[i]);
}

/* The system asks zones to give memory back (memory pressure): as malloc_trim. */
static size_t zone_pressure_relief(malloc_zone_t *zone, size_t goal) {
    (void)zone, (void)goal;
    struct membudget_stats before, after;
    alloc_stats(&before, false);
    mb_malloc_trim(0);
    alloc_stats(&after, false);
    return after.released_bytes > before.released_bytes
               ? (size_t)(after.released_bytes - before.released_bytes)
               : 0;
}

static boolean_t zone_claimed_address(malloc_zone_t *zone, void *p) {
    return zone_size(zone, p) != 0;
}

/* ---- introspection ---------------------------------------------------------- */

/* No block is reported: the tools that walk another task's zones read our
 * heap as empty rather than misreading it. */
static kern_return_t intro_enumerator(task_t task, void *ctx, unsigned type, vm_address_t zone,
                                      memory_reader_t reader, vm_range_recorder_t recorder) {
    (void)task, (void)ctx, (void)type, (void)zone, (void)reader, (void)recorder;
    return KERN_SUCCESS;
}

static size_t intro_good_size(malloc_zone_t *zone, size_t size) {
    (void)zone;
    return mb_darwin_good_size(size);
}

static boolean_t intro_check(malloc_zone_t *zone) {
    (void)zone;
    return 1;
}

static void intro_print(malloc_zone_t *zone, boolean_t verbose) { (void)zone, (void)verbose; }
static void intro_log(malloc_zone_t *zone, void *address) { (void)zone, (void)address; }
static void intro_force_lock(malloc_zone_t *zone) { (void)zone; }
static void intro_force_unlock(malloc_zone_t *zone) { (void)zone; }
static void intro_reinit_lock(malloc_zone_t *zone) { (void)zone; }

static void intro_statistics(malloc_zone_t *zone, malloc_statistics_t *out) {
    (void)zone;
    struct membudget_stats st;
    alloc_stats(&st, false);
    memset(out, 0, sizeof *out);
    uint64_t live = st.small_live_bytes + st.large_bytes - st.large_cached_bytes;
    out->size_in_use = (size_t)live;
    out->max_size_in_use = (size_t)st.counter_peak_bytes;
    out->size_allocated = (size_t)(st.small_bytes + st.large_bytes);
}

static boolean_t intro_zone_locked(malloc_zone_t *zone) {
    (void)zone;
    return 0;
}

static malloc_introspection_t zone_introspection = {
    .enumerator = intro_enumerator,
    .good_size = intro_good_size,
    .check = intro_check,
    .print = intro_print,
    .log = intro_log,
    .force_lock = intro_force_lock,
    .force_unlock = intro_force_unlock,
    .statistics = intro_statistics,
    .zone_locked = intro_zone_locked,
    .reinit_lock = intro_reinit_lock,
};

static malloc_zone_t zone = {
    .size = zone_size,
    .malloc = zone_malloc,
    .calloc = zone_calloc,
    .valloc = zone_valloc,
    .free = zone_free,
    .realloc = zone_realloc,
    .destroy = zone_destroy,
    .zone_name = "membudget",
    .batch_malloc = zone_batch_malloc,
    .batch_free = zone_batch_free,
    .introspect = &zone_introspection,
    .version = 10, /* memalign, free_definite_size, pressure_relief, claimed_address */
    .memalign = zone_memalign,
    .free_definite_size = zone_free_definite_size,
    .pressure_relief = zone_pressure_relief,
    .claimed_address = zone_claimed_address,
};

/* The default zone is the first of malloc_get_all_zones (which, given no
 * task and no reader, returns the process's own list: no allocation). */
static malloc_zone_t *default_zone(void) {
    vm_address_t *zones = NULL;
    unsigned count = 0;
    if (malloc_get_all_zones(0, NULL, &zones, &count) == KERN_SUCCESS && count > 0)
        return (malloc_zone_t *)zones[0];
    return malloc_default_zone();
}

static malloc_zone_t *_Atomic system_zone;

malloc_zone_t *mb_darwin_system_zone(void) {
    malloc_zone_t *z = atomic_load_explicit(&system_zone, memory_order_acquire);
    return z != NULL ? z : default_zone(); /* before ours is registered */
}

/* ---- threads becoming ready (preload/darwin.h) ------------------------------- */

pthread_key_t mb_darwin_ready_key;
_Atomic bool mb_darwin_ready_key_ok;
static __thread volatile int tlv_touch;
static pthread_introspection_hook_t previous_hook;

/* Any access creates the image's whole thread-local block; its allocation
 * goes to the system's zone, since the thread is not ready yet. */
static void make_thread_ready(void) {
    tlv_touch = 1;
    pthread_setspecific(mb_darwin_ready_key, (const void *)1);
}

static void thread_hook(unsigned int event, pthread_t thread, void *addr, size_t size) {
    if (event == PTHREAD_INTROSPECTION_THREAD_START && mb_darwin_ready_key_ok) make_thread_ready();
    if (previous_hook != NULL) previous_hook(event, thread, addr, size);
}

/* Before the library's own constructor (preload/init.c), which allocates. */
__attribute__((constructor(101))) static void zone_install(void) {
    if (pthread_key_create(&mb_darwin_ready_key, NULL) == 0) {
        atomic_store_explicit(&mb_darwin_ready_key_ok, true, memory_order_release);
        make_thread_ready();
        previous_hook = pthread_introspection_hook_install(thread_hook);
    }
    malloc_zone_t *purgeable = malloc_default_purgeable_zone();
    malloc_zone_t *first = default_zone();
    atomic_store_explicit(&system_zone, first, memory_order_release);
    malloc_zone_register(&zone);
    /* Unregistering the default zone moves the last zone into its slot:
     * repeat until that is ours, then the system's follow it. */
    for (int round = 0; round < 64 && first != &zone; round++) {
        malloc_zone_unregister(first);
        malloc_zone_register(first);
        if (purgeable != NULL && purgeable != first) {
            malloc_zone_unregister(purgeable);
            malloc_zone_register(purgeable);
        }
        first = default_zone();
    }
}
