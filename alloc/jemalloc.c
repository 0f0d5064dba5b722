/* The jemalloc backend: entry points, extent hooks, releases and statistics
 * (alloc/jemalloc.h says how it fits).  The mbje_* functions are Debian's
 * jemalloc, linked in with its public names renamed (see the Makefile). */
#include "alloc/jemalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "alloc/fmt.h"

#include "alloc/internal.h"
#include "alloc/os_linux.h" /* the jemalloc backend is Linux-only */
#include "membudget.h"
#include "policy/budget.h"

#ifdef MB_HAVE_JEMALLOC
bool jm_active;
#endif

#ifndef MB_HAVE_JEMALLOC
/* A build without libjemalloc-dev: jm_active is the constant false
 * (alloc/jemalloc.h), so nothing but these two is ever called. */
const char *jm_start(void) { return "this build has no jemalloc (built without libjemalloc-dev)"; }
const char *jm_version(void) { return NULL; }
#else

#include <jemalloc/jemalloc.h> /* types and flag macros only: the functions are renamed */

void *mbje_realloc(void *p, size_t size);
void *mbje_mallocx(size_t size, int flags);
void *mbje_rallocx(void *p, size_t size, int flags);
size_t mbje_malloc_usable_size(const void *p);
int mbje_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int mbje_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
int mbje_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                      size_t newlen);
/* jemalloc's own calls to mmap and munmap come here (renamed in its objects). */
void *mbje_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int mbje_sys_munmap(void *addr, size_t len);

/* ---- the counter's share ------------------------------------------------------
 * What the hooks and jemalloc's own mappings hold charged, kept beside the
 * counter for statistics and the debug build's check. */
static _Atomic uint64_t charged_bytes;  /* committed extents and jemalloc's own mappings */
static _Atomic uint64_t released_total; /* decommitted or unmapped so far */

/* This thread's pending refusal: the largest charge refused during the current
 * call, and whether the pressure handler approved the retry. */
static __thread size_t refused_bytes __attribute__((tls_model("initial-exec")));
static __thread bool approved __attribute__((tls_model("initial-exec")));
/* Set when the thread's first allocation has returned.  Before
 * that no charge of the thread is refused: jemalloc sets up the thread's cache
 * in its first call and, if that allocation fails, goes on with a cache it
 * never initialized (and crashes later); a refused charge would be that
 * failure.  The threshold it crossed is handled at the next charge. */
static __thread bool thread_ready __attribute__((tls_model("initial-exec")));
/* Threads whose first call into jemalloc has returned and that have not
 * exited: the dump's threads_live, counted here rather than read from
 * jemalloc's per-arena nthreads, which counts only threads bound to an arena
 * (a thread jemalloc serves in its reentrant or minimal state uses arena 0
 * without binding), so that the figure means what it means on the native
 * backend and does not depend on how jemalloc placed the threads. */
static _Atomic uint64_t threads_live;
static pthread_key_t thread_key;
static bool thread_key_ok;

static void thread_exited(void *value) {
    (void)value;
    atomic_fetch_sub_explicit(&threads_live, 1, memory_order_relaxed);
}

/* The thread's first call into jemalloc has returned. */
static __attribute__((noinline, cold)) void thread_started(void) {
    thread_ready = true; /* first: pthread_setspecific may allocate (keys >= 32) */
    atomic_fetch_add_explicit(&threads_live, 1, memory_order_relaxed);
    if (thread_key_ok) pthread_setspecific(thread_key, &thread_ready);
}
/* The thread is in jm_call, which can settle a refusal; the fast paths of
 * malloc and calloc (a tail call into jemalloc) cannot.  A charge made there
 * that crosses a threshold stands, and the thread's next allocation takes the
 * slow path (its countdown is cut short), where the pressure code runs first:
 * the fast paths serve at most JM_TICK_BYTES per call, so that allocation is
 * the overshoot, as the native allocator's commit unit is. */
static __thread bool refusable __attribute__((tls_model("initial-exec")));
static __thread bool pending __attribute__((tls_model("initial-exec")));

static bool charge(size_t bytes) {
    if (approved || !thread_ready) {
        budget_charge_committed(bytes);
    } else if (!budget_try_charge(bytes)) {
        if (refusable) {
            if (bytes > refused_bytes) refused_bytes = bytes;
            return false;
        }
        budget_charge_committed(bytes);
        pending = true;
        if (alloc_countdown >= 0) {
            alloc_countdown_carry += alloc_countdown + 1;
            alloc_countdown = -1;
        }
    }
    atomic_fetch_add_explicit(&charged_bytes, bytes, memory_order_relaxed);
    return true;
}

/* Undoes a charge whose commit did not happen. */
static void unwind_charge(size_t bytes) {
    atomic_fetch_sub_explicit(&charged_bytes, bytes, memory_order_relaxed);
    budget_uncharge(bytes);
}

static void uncharge(size_t bytes) {
    unwind_charge(bytes);
    atomic_fetch_add_explicit(&released_total, bytes, memory_order_relaxed);
}

/* ---- extent hooks ----------------------------------------------------------- */

/* ---- metadata ------------------------------------------------------------------
 * jemalloc's metadata (its bases) comes in blocks of huge pages it asks
 * committed and aligned to 2 MiB, touches as it uses them and keeps while the
 * arena lives: charging a block whole would count megabytes never touched.
 * The counter holds what of them is resident instead, measured with mincore(2)
 * at most every META_REFRESH_NS from the thread ticks, outside jemalloc. */
#define BASE_ALIGN ((size_t)2 << 20)
#define META_RANGES 512
#define META_REFRESH_NS (10 * 1000000ull)
struct meta_range {
    _Atomic uintptr_t start;
    _Atomic size_t len; /* 0: a free slot */
};
static struct meta_range meta_ranges[META_RANGES];
static _Atomic unsigned meta_used;        /* slots ever taken */
static _Atomic uint64_t metadata_mapped;  /* bytes in the ranges */
static _Atomic uint64_t metadata_charged; /* resident bytes the counter holds */
static _Atomic uint64_t meta_last_ns;
static _Atomic int meta_busy;

/* Runs inside jemalloc (it holds a base lock): records the block.  With the
 * table full the block is charged whole, as jemalloc counts it. */
static void meta_add(void *p, size_t len) {
    atomic_fetch_add_explicit(&metadata_mapped, len, memory_order_relaxed);
    unsigned i = atomic_fetch_add_explicit(&meta_used, 1, memory_order_relaxed);
    if (i >= META_RANGES) {
        atomic_store_explicit(&meta_used, META_RANGES, memory_order_relaxed);
        for (i = 0; i < META_RANGES; i++) { /* a slot freed by an unmap */
            size_t zero = 0;
            if (atomic_load_explicit(&meta_ranges[i].len, memory_order_relaxed) == 0 &&
                atomic_compare_exchange_strong(&meta_ranges[i].len, &zero, (size_t)-1))
                break;
        }
        if (i == META_RANGES) {
            budget_charge_committed(len);
            atomic_fetch_add_explicit(&metadata_charged, len, memory_order_relaxed);
            return;
        }
    }
    atomic_store_explicit(&meta_ranges[i].start, (uintptr_t)p, memory_order_relaxed);
    atomic_store_explicit(&meta_ranges[i].len, len, memory_order_release);
}

/* jemalloc unmaps metadata only right after mapping it: the probe of its
 * start-up, and the trimmed ends of an aligned block. */
static void meta_remove(void *p, size_t len) {
    atomic_fetch_sub_explicit(&metadata_mapped, len, memory_order_relaxed);
    uintptr_t lo = (uintptr_t)p, hi = lo + len;
    unsigned n = atomic_load_explicit(&meta_used, memory_order_relaxed);
    for (unsigned i = 0; i < n && i < META_RANGES; i++) {
        uintptr_t start = atomic_load_explicit(&meta_ranges[i].start, memory_order_relaxed);
        size_t rlen = atomic_load_explicit(&meta_ranges[i].len, memory_order_acquire);
        if (rlen == 0 || rlen == (size_t)-1 || lo < start || hi > start + rlen) continue;
        if (lo == start) { /* the head, or all of it */
            atomic_store_explicit(&meta_ranges[i].start, hi, memory_order_relaxed);
            atomic_store_explicit(&meta_ranges[i].len, rlen - len, memory_order_release);
        } else if (hi == start + rlen) { /* the tail */
            atomic_store_explicit(&meta_ranges[i].len, rlen - len, memory_order_release);
        }
        return;
    }
}

/* Resident pages of [start, start + len), or 0 when it cannot be told. */
static uint64_t resident_bytes(uintptr_t start, size_t len) {
    static unsigned char vec[4096]; /* under meta_busy */
    uint64_t resident = 0;
    while (len > 0) {
        size_t pages = len / OS_PAGE_SIZE < sizeof vec ? len / OS_PAGE_SIZE : sizeof vec;
        if (pages == 0) break;
        if (os_failed(os_syscall6(SYS_mincore, (long)start, (long)(pages * OS_PAGE_SIZE),
                                  (long)vec, 0, 0, 0)))
            return 0;
        for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
        start += pages * OS_PAGE_SIZE;
        len -= pages * OS_PAGE_SIZE;
    }
    return resident * OS_PAGE_SIZE;
}

/* Brings the counter's metadata share to what is resident now. */
static uint64_t meta_measured; /* the share meta_refresh charged; under meta_busy */

static void meta_refresh(uint64_t now, bool force) {
    uint64_t last = atomic_load_explicit(&meta_last_ns, memory_order_relaxed);
    if (!force && now - last < META_REFRESH_NS) return;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&meta_busy, &idle, 1)) return;
    atomic_store_explicit(&meta_last_ns, now, memory_order_relaxed);
    uint64_t total = 0;
    unsigned n = atomic_load_explicit(&meta_used, memory_order_relaxed);
    for (unsigned i = 0; i < n && i < META_RANGES; i++) {
        size_t len = atomic_load_explicit(&meta_ranges[i].len, memory_order_acquire);
        if (len == 0 || len == (size_t)-1) continue;
        total += resident_bytes(atomic_load_explicit(&meta_ranges[i].start, memory_order_relaxed), len);
    }
    if (total > meta_measured) budget_charge_committed(total - meta_measured);
    else budget_uncharge(meta_measured - total);
    /* Unsigned: the difference wraps to a subtraction when the share shrank. */
    atomic_fetch_add_explicit(&metadata_charged, total - meta_measured, memory_order_relaxed);
    meta_measured = total;
    atomic_store_explicit(&meta_busy, 0, memory_order_release);
}

static void *hook_alloc(extent_hooks_t *hooks, void *new_addr, size_t size, size_t alignment,
                        bool *zero, bool *commit, unsigned arena_ind) {
    (void)hooks, (void)arena_ind;
    bool metadata = *commit && alignment == BASE_ALIGN && new_addr == NULL;
    bool charged = *commit && !metadata;
    if (charged && !charge(size)) return NULL;
    void *p;
    if (new_addr != NULL) {
        /* Only exactly there: a kernel without MAP_FIXED_NOREPLACE takes it as
         * a hint, and a mapping elsewhere is given back. */
        long r = os_mmap(new_addr, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        p = os_failed(r) ? NULL : (void *)r;
        if (p != NULL && p != new_addr) {
            os_unmap(p, size);
            p = NULL;
        }
    } else {
        p = os_map_aligned(size, alignment);
    }
    if (p == NULL) {
        if (charged) unwind_charge(size);
        return NULL;
    }
    if (metadata) meta_add(p, size);
    *zero = true; /* fresh anonymous memory; *commit stays as asked */
    return p;
}

static void hook_destroy(extent_hooks_t *hooks, void *addr, size_t size, bool committed,
                         unsigned arena_ind) {
    (void)hooks, (void)arena_ind;
    os_unmap(addr, size);
    if (committed) uncharge(size);
}

/* Our decommit leaves pages readable and writable (it only drops their
 * contents), so committing is the charge alone, except in the few reservations
 * an arena made with the default hooks (jemalloc believes the system does not
 * overcommit, so those are PROT_NONE where uncommitted): those ranges are
 * recorded by mbje_sys_mmap, and made writable here. */
#define NONE_RANGES 256
static struct {
    _Atomic uintptr_t start, end; /* end 0: a free slot */
} none_ranges[NONE_RANGES];
static _Atomic unsigned none_used;

static void none_add(uintptr_t start, size_t len) {
    unsigned i = atomic_fetch_add_explicit(&none_used, 1, memory_order_relaxed);
    if (i >= NONE_RANGES) { /* every commit makes its range writable from now on */
        atomic_store_explicit(&none_used, NONE_RANGES, memory_order_relaxed);
        atomic_store_explicit(&none_ranges[NONE_RANGES - 1].start, 0, memory_order_relaxed);
        atomic_store_explicit(&none_ranges[NONE_RANGES - 1].end, UINTPTR_MAX, memory_order_release);
        return;
    }
    atomic_store_explicit(&none_ranges[i].start, start, memory_order_relaxed);
    atomic_store_explicit(&none_ranges[i].end, start + len, memory_order_release);
}

static bool none_overlaps(uintptr_t start, size_t len) {
    unsigned n = atomic_load_explicit(&none_used, memory_order_acquire);
    for (unsigned i = 0; i < n && i < NONE_RANGES; i++) {
        uintptr_t end = atomic_load_explicit(&none_ranges[i].end, memory_order_acquire);
        if (start < end && atomic_load_explicit(&none_ranges[i].start, memory_order_relaxed) < start + len)
            return true;
    }
    return false;
}

static bool hook_commit(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
                        size_t length, unsigned arena_ind) {
    (void)hooks, (void)size, (void)arena_ind;
    if (!charge(length)) return true;
    uintptr_t start = (uintptr_t)addr + offset;
    if (none_overlaps(start, length) &&
        os_failed(os_syscall6(SYS_mprotect, (long)start, (long)length, PROT_READ | PROT_WRITE, 0,
                              0, 0))) {
        unwind_charge(length);
        return true;
    }
    return false;
}

static bool hook_decommit(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
                          size_t length, unsigned arena_ind) {
    (void)hooks, (void)size, (void)arena_ind;
    if (os_failed(os_madvise((char *)addr + offset, length, MADV_DONTNEED))) return true;
    uncharge(length);
    return false;
}

/* Anonymous mappings split and merge freely. */
static bool hook_split(extent_hooks_t *hooks, void *addr, size_t size, size_t size_a,
                       size_t size_b, bool committed, unsigned arena_ind) {
    (void)hooks, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed,
        (void)arena_ind;
    return false;
}

static bool hook_merge(extent_hooks_t *hooks, void *addr_a, size_t size_a, void *addr_b,
                       size_t size_b, bool committed, unsigned arena_ind) {
    (void)hooks, (void)addr_a, (void)size_a, (void)addr_b, (void)size_b, (void)committed,
        (void)arena_ind;
    return false;
}

static extent_hooks_t hooks = {
    .alloc = hook_alloc,
    .dalloc = NULL, /* keep the virtual memory, decommit instead */
    .destroy = hook_destroy,
    .commit = hook_commit,
    .decommit = hook_decommit,
    .purge_lazy = NULL, /* every page that stops counting is decommitted */
    .purge_forced = NULL,
    .split = hook_split,
    .merge = hook_merge,
};

/* ---- jemalloc's own mappings ---------------------------------------------------
 * The first base (metadata, which keeps the default hooks) and the extents of
 * an arena in the moment between its creation and our hooks.  jemalloc is told
 * the system does not overcommit (mbje_sys_syscall), so its default hooks map
 * extents PROT_NONE, commit with a read-write mapping over them (MAP_FIXED)
 * and decommit with a PROT_NONE one: those are charged and uncharged here,
 * under the same rule as the hooks (a charge that crosses a threshold is
 * refused and settled outside jemalloc).  A new read-write mapping is metadata
 * (a base block, or the probe of jemalloc's start-up) and, as in hook_alloc,
 * only counted; jemalloc unmaps nothing else (the probe, and the trimmed ends
 * of a base block's aligned mapping). */
void *mbje_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    bool anonymous = (flags & MAP_ANONYMOUS) != 0;
    bool commits = anonymous && (prot & PROT_WRITE) && (flags & MAP_FIXED);
    if (commits && !charge(len)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = os_mmap(addr, len, prot, flags, fd, off);
    if (os_failed(r)) {
        if (commits) unwind_charge(len);
        errno = (int)-r;
        return MAP_FAILED;
    }
    if (anonymous && prot == PROT_NONE && (flags & MAP_FIXED)) uncharge(len); /* a decommit */
    else if (anonymous && prot == PROT_NONE) none_add((uintptr_t)r, len);   /* a reservation */
    else if (anonymous && (prot & PROT_WRITE) && !(flags & MAP_FIXED))
        meta_add((void *)r, len);
    return (void *)r;
}

int mbje_sys_munmap(void *addr, size_t len) {
    long r = os_munmap(addr, len);
    if (os_failed(r)) {
        errno = (int)-r;
        return -1;
    }
    meta_remove(addr, len);
    return 0;
}

/* jemalloc's syscall(2): all pass through, except that the overcommit setting
 * cannot be read, which jemalloc takes as "no overcommit" (see above). */
long mbje_sys_syscall(long nr, ...);
long mbje_sys_syscall(long nr, ...) {
    va_list ap;
    va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    static const char overcommit[] = "/proc/sys/vm/overcommit_memory";
    const char *path = nr == SYS_open ? (const char *)a[0] : nr == SYS_openat ? (const char *)a[1] : NULL;
    if (path != NULL && strcmp(path, overcommit) == 0) {
        errno = EACCES;
        return -1;
    }
    long r = os_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (os_failed(r)) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- mallctl by MIB ------------------------------------------------------------ */

enum {
    MIB_ARENA_HOOKS, /* arena.<i>.extent_hooks */
    MIB_ARENA_INIT,  /* arena.<i>.initialized */
    MIB_NARENAS,     /* arenas.narenas */
    MIB_TCACHE_FLUSH,
    MIB_COUNT
};
static const char *const mib_names[MIB_COUNT] = {
    "arena.0.extent_hooks", "arena.0.initialized", "arenas.narenas",
    "thread.tcache.flush",
};
static size_t mibs[MIB_COUNT][4];
static size_t mib_lens[MIB_COUNT];

static int ctl_by_mib(int which, size_t index, void *oldp, size_t *oldlen, void *newp,
                      size_t newlen) {
    size_t mib[4];
    memcpy(mib, mibs[which], sizeof mib);
    if (which == MIB_ARENA_HOOKS || which == MIB_ARENA_INIT) mib[1] = index;
    return mbje_mallctlbymib(mib, mib_lens[which], oldp, oldlen, newp, newlen);
}

/* ---- arenas and their hooks ------------------------------------------------------
 * jemalloc creates arenas as threads need them (and its huge arena at the first
 * very large allocation), with the default hooks; setting ours on an arena not
 * yet created would create it.  So: arena 0 at start-up, then every other
 * arena from jemalloc's arena-creation hook, before the allocation that
 * created it is served from it.  An arena hooked only at a later tick would
 * serve its first extents through the default hooks; with MALLOC_CONF
 * retain:false those are committed mappings,
 * which this file takes for metadata (not charged), then decommitted through
 * ours, which uncharged what was never charged: the counter wrapped below
 * zero.  The tick still scans for an arena the creation hook could not hook. */
extern void (*je_test_hooks_arena_new_hook)(void);
static _Atomic uint64_t hooked[MALLCTL_ARENAS_ALL / 64];
static _Atomic unsigned hooked_count;
static _Atomic unsigned created_count; /* arenas made after arena 0 */

static void scan_arenas(void);

/* Runs inside jemalloc in the thread that created the arena, under its arenas
 * lock, once the arena is in jemalloc's table: counts it and hooks it.  The
 * scan takes jemalloc's ctl lock, which this backend never holds while it
 * waits for the arenas lock (its mallctl calls create no arena: hook_arena
 * sets hooks only on arenas already there), so the order cannot deadlock. */
static void on_arena_created(void) {
    atomic_fetch_add_explicit(&created_count, 1, memory_order_relaxed);
    scan_arenas();
}

static bool arenas_unhooked(void) {
    return atomic_load_explicit(&hooked_count, memory_order_relaxed) <
           1 + atomic_load_explicit(&created_count, memory_order_relaxed);
}

static bool is_hooked(unsigned i) {
    return (atomic_load_explicit(&hooked[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

static void hook_arena(unsigned i) {
    if (i >= MALLCTL_ARENAS_ALL || is_hooked(i)) return;
    extent_hooks_t *ours = &hooks, *old = NULL;
    size_t len = sizeof old;
    if (ctl_by_mib(MIB_ARENA_HOOKS, i, &old, &len, &ours, sizeof ours) != 0) return;
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (!(atomic_fetch_or_explicit(&hooked[i / 64], bit, memory_order_relaxed) & bit))
        atomic_fetch_add_explicit(&hooked_count, 1, memory_order_relaxed);
}

static unsigned arena_count(void) {
    unsigned n = 0;
    size_t len = sizeof n;
    if (ctl_by_mib(MIB_NARENAS, 0, &n, &len, NULL, 0) != 0) return 0;
    return n < MALLCTL_ARENAS_ALL ? n : MALLCTL_ARENAS_ALL;
}

static void refresh(void);

static void scan_arenas(void) {
    refresh(); /* "arena.<i>.initialized" is as of the last epoch */
    unsigned n = arena_count();
    for (unsigned i = 0; i < n; i++) {
        if (is_hooked(i)) continue;
        bool initialized = false;
        size_t len = sizeof initialized;
        if (ctl_by_mib(MIB_ARENA_INIT, i, &initialized, &len, NULL, 0) == 0 && initialized)
            hook_arena(i);
    }
}

/* A scan refreshes jemalloc's statistics: at most one per HOOK_SCAN_NS, so an
 * arena that cannot be hooked does not make every tick pay for it. */
#define HOOK_SCAN_NS (10 * 1000000ull)
static _Atomic uint64_t last_scan_ns;

static void hook_new_arenas(void) {
    if (!arenas_unhooked()) return;
    uint64_t now = os_now_ns(), last = atomic_load_explicit(&last_scan_ns, memory_order_relaxed);
    if (now - last < HOOK_SCAN_NS ||
        !atomic_compare_exchange_strong_explicit(&last_scan_ns, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    scan_arenas();
}

/* ---- start-up ------------------------------------------------------------------ */

static bool native_large; /* native large spans existed at the switch */

const char *jm_version(void) { return JEMALLOC_VERSION; }

const char *jm_start(void) {
    /* jemalloc initializes here, while the native allocator still serves what
     * its start-up allocates (dlsym, pthread_atfork). */
    const char *version = NULL;
    size_t len = sizeof version;
    if (mbje_mallctl("version", &version, &len, NULL, 0) != 0) return "jemalloc did not start";
    for (int i = 0; i < MIB_COUNT; i++) {
        mib_lens[i] = 4;
        if (mbje_mallctlnametomib(mib_names[i], mibs[i], &mib_lens[i]) != 0)
            return "jemalloc lacks a control this backend needs";
    }
    /* pthread_key_create takes no lock of ours and does not allocate. */
    thread_key_ok = pthread_key_create(&thread_key, thread_exited) == 0;
    je_test_hooks_arena_new_hook = on_arena_created;
    scan_arenas(); /* arena 0, and any other jemalloc made while starting */
    if (!is_hooked(0)) return "jemalloc refused the extent hooks";
    unsigned others = atomic_load_explicit(&hooked_count, memory_order_relaxed) - 1;
    atomic_fetch_add_explicit(&created_count, others, memory_order_relaxed);
    struct large_stats ls;
    large_stats(&ls, true);
    native_large = ls.spans > 0;
    __atomic_store_n(&jm_active, true, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- entry points ----------------------------------------------------------------- */

static void *run_op(enum jm_op op, void *p, size_t a, size_t b) {
    switch (op) {
    case JM_MALLOC: return mbje_malloc(a);
    case JM_CALLOC: return mbje_calloc(a, b);
    case JM_REALLOC: return mbje_realloc(p, a);
    case JM_REALLOC_SAMPLED: return mbje_rallocx(p, a, MALLOCX_ALIGN(JM_SAMPLED_ALIGN));
    case JM_ALIGNED: return mbje_mallocx(a, MALLOCX_ALIGN(b));
    case JM_CALLOC_SAMPLED: return mbje_mallocx(a, MALLOCX_ALIGN(JM_SAMPLED_ALIGN) | MALLOCX_ZERO);
    }
    return NULL;
}

/* jemalloc returned NULL.  When a hook refused a charge, run the pressure
 * handler for it here, outside jemalloc, and try again with the charges
 * approved: the handler may have released memory, or decided that the
 * allocation fails (MEMBUDGET_ACTION=fail, a request beyond ramSize). */
static __attribute__((noinline, cold)) void *retry(enum jm_op op, void *p, size_t a, size_t b) {
    size_t need = refused_bytes;
    refused_bytes = 0;
    if (need == 0) return NULL; /* jemalloc's own failure */
    if (!budget_charge(need)) return NULL;
    budget_uncharge(need);
    approved = true;
    void *q = run_op(op, p, a, b);
    approved = false;
    refused_bytes = 0;
    return q;
}

void *jm_call(enum jm_op op, void *p, size_t a, size_t b) {
    /* The thread's countdown ran out: the tick first, so that what it learns
     * (a new baseline, new arenas) counts for this allocation. */
    if (alloc_countdown < 0) jm_tick();
    if (unlikely(pending)) {
        /* A fast path crossed a threshold: the pressure code, before more. */
        pending = false;
        if (!budget_charge(0)) return NULL;
    }
    refusable = thread_ready;
    void *q = run_op(op, p, a, b);
    refusable = false;
    if (unlikely(!thread_ready)) thread_started();
    if (unlikely(q == NULL)) q = retry(op, p, a, b);
    return q;
}

void *jm_aligned(size_t size, size_t align) {
    return jm_call(JM_ALIGNED, NULL, size != 0 ? size : 1, align); /* mallocx wants a size */
}

/* Is p the native allocator's (handed out before the switch)?  Two compares
 * for a block of jemalloc's, which is outside the native address range. */
static inline bool native_owns(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uintptr_t lo = atomic_load_explicit(&native_lo, memory_order_relaxed);
    if (likely(a - lo >= atomic_load_explicit(&native_hi, memory_order_relaxed) - lo)) return false;
    return chunk_of(p) != NULL || (native_large && large_usable_size(p) != 0);
}

/* A sampled block is page-aligned (jm_sampled_block moves a small one there),
 * so only page-aligned blocks (jemalloc's large ones, and the first of each
 * slab) look at the filter when freed. */
static inline bool sampled(const void *p) {
    return ((uintptr_t)p & (JM_SAMPLED_ALIGN - 1)) == 0 &&
           atomic_load_explicit(sampled_filter_slot(p), memory_order_relaxed) != 0;
}

void *jm_sampled_block(void *p, size_t size) {
    if (((uintptr_t)p & (JM_SAMPLED_ALIGN - 1)) == 0 || native_owns(p)) return p;
    size_t n = size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size;
    void *q = jm_call(JM_ALIGNED, NULL, n, JM_SAMPLED_ALIGN);
    if (q == NULL) return NULL;
    memcpy(q, p, size);
    mbje_free(p);
    return q;
}

void jm_free_slow(void *p) {
    if (native_owns(p)) {
        alloc_free(p);
        return;
    }
    if (sampled(p)) alloc_sampled_free_filtered(p);
    mbje_free(p);
}

size_t jm_usable_size(const void *p) {
    if (p == NULL) return 0;
    if (unlikely(native_owns(p))) return alloc_usable_size(p);
    return mbje_malloc_usable_size(p);
}

bool jm_owns(const void *p) {
    if (p == NULL) return false;
    if (native_owns(p)) return true;
    unsigned arena;
    size_t len = sizeof arena;
    return mbje_mallctl("arenas.lookup", &arena, &len, &p, sizeof p) == 0;
}

void *jm_realloc(void *p, size_t size, bool sample) {
    if (unlikely(native_owns(p))) {
        /* Move it into jemalloc. */
        size_t old = alloc_usable_size(p);
        size_t n = size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size;
        void *q = sample ? jm_call(JM_ALIGNED, NULL, n, JM_SAMPLED_ALIGN) : jm_call(JM_MALLOC, NULL, n, 0);
        if (q == NULL) return NULL;
        memcpy(q, p, old < size ? old : size);
        alloc_free(p);
        return q;
    }
    size = size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size;
    bool was_sampled = sampled(p);
    /* A sampled block was given a page of its own (jm_sampled_block): it stays
     * in place while it fits, and stays page-aligned when it moves. */
    if (unlikely(was_sampled) && size <= mbje_malloc_usable_size(p)) return p;
    void *q = jm_call(was_sampled || sample ? JM_REALLOC_SAMPLED : JM_REALLOC, p, size, 0);
    /* Moved: the old block is gone, and so is its sample. */
    if (unlikely(was_sampled) && q != NULL && q != p) alloc_sampled_free_filtered(p);
    return q;
}

void jm_atfork_child(void) {
    atomic_store_explicit(&meta_busy, 0, memory_order_relaxed);
    /* Only the forking thread goes on in the child. */
    atomic_store_explicit(&threads_live, thread_ready ? 1 : 0, memory_order_relaxed);
}

/* ---- ticks and releases --------------------------------------------------------------- */

static _Atomic uint64_t flush_epoch;
static __thread uint64_t seen_epoch __attribute__((tls_model("initial-exec")));

static void flush_thread_cache(void) { ctl_by_mib(MIB_TCACHE_FLUSH, 0, NULL, NULL, NULL, 0); }

void jm_tick(void) {
    if (!jm_active) return;
    uint64_t epoch = atomic_load_explicit(&flush_epoch, memory_order_relaxed);
    if (unlikely(seen_epoch != epoch)) {
        seen_epoch = epoch;
        flush_thread_cache();
    }
    if (unlikely(arenas_unhooked())) hook_new_arenas();
    meta_refresh(os_now_ns(), false);
    alloc_maybe_scavenge(); /* the monitor tick, and what native memory became free */
}

size_t jm_release(int level) {
    uint64_t before = atomic_load_explicit(&released_total, memory_order_relaxed);
    hook_new_arenas(); /* so that purges go through our decommit */
    if (level >= MEMBUDGET_LEVEL_STRICT) {
        atomic_fetch_add_explicit(&flush_epoch, 1, memory_order_relaxed);
        /* Before the purge, so that what the cache held is purged too.  At the
         * kill threshold this thread runs the release callbacks, and what they
         * free lands in its cache (every small block, and large ones up to
         * tcache_max): left there, shrink-or-die would measure the footprint
         * with the callbacks' memory still committed and die of it. */
        seen_epoch = atomic_load_explicit(&flush_epoch, memory_order_relaxed);
        flush_thread_cache();
    }
    char name[32] = "arena.4096.decay";
    if (level >= MEMBUDGET_LEVEL_STRICT) memcpy(name + 11, "purge", 6);
    /* Purging may split extents, which can map metadata: never refuse that. */
    bool was_approved = approved;
    approved = true;
    mbje_mallctl(name, NULL, NULL, NULL, 0);
    approved = was_approved;
    return atomic_load_explicit(&released_total, memory_order_relaxed) - before;
}

/* ---- statistics ---------------------------------------------------------------------- */

static uint64_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    return mbje_mallctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

static unsigned ctl_unsigned(const char *name) {
    unsigned v = 0;
    size_t len = sizeof v;
    return mbje_mallctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

static void refresh(void) {
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mbje_mallctl("epoch", &epoch, &len, &epoch, sizeof epoch);
}

bool jm_totals(struct jm_totals *out) {
    memset(out, 0, sizeof *out);
    if (!jm_active) return false;
    refresh();
    out->allocated = ctl_size("stats.allocated");
    out->active = ctl_size("stats.active");
    out->resident = ctl_size("stats.resident");
    out->mapped = ctl_size("stats.mapped");
    out->retained = ctl_size("stats.retained");
    out->metadata = ctl_size("stats.metadata");
    out->arenas = arena_count();
    out->arenas_hooked = atomic_load_explicit(&hooked_count, memory_order_relaxed);
    out->charged_bytes = atomic_load_explicit(&charged_bytes, memory_order_relaxed);
    out->metadata_mapped = atomic_load_explicit(&metadata_mapped, memory_order_relaxed);
    out->metadata_resident = atomic_load_explicit(&metadata_charged, memory_order_relaxed);
    return true;
}

/* A per-bin control: prefix, bin index, suffix ("arenas.bin.", j, ".size"). */
static uint64_t ctl_bin(const char *prefix, unsigned j, const char *suffix) {
    char name[64];
    struct mb_buf f = mb_buf_on(name, sizeof name);
    mb_buf_str(&f, prefix);
    mb_buf_u64(&f, j);
    mb_buf_str(&f, suffix);
    return ctl_size(name);
}

void jm_stats(struct membudget_stats *out) {
    memset(out, 0, sizeof *out);
    if (!jm_active) return;
    refresh();
    uint64_t page = ctl_size("arenas.page");
    out->small_live_bytes = ctl_size("stats.arenas.4096.small.allocated");
    out->large_bytes = ctl_size("stats.arenas.4096.large.allocated");
    out->large_cached_bytes =
        (ctl_size("stats.arenas.4096.pdirty") + ctl_size("stats.arenas.4096.pmuzzy")) * page;
    meta_refresh(os_now_ns(), true);
    out->meta_bytes = atomic_load_explicit(&metadata_charged, memory_order_relaxed);
    /* Committed small memory: the slabs of every bin. */
    unsigned nbins = ctl_unsigned("arenas.nbins");
    for (unsigned j = 0; j < nbins; j++) {
        uint64_t slabs = ctl_bin("stats.arenas.4096.bins.", j, ".curslabs");
        out->small_bytes += slabs * ctl_bin("arenas.bin.", j, ".slab_size");
        out->pages_in_use += slabs;
    }
    out->pages_free = page != 0 ? out->large_cached_bytes / page : 0;
    out->threads = ctl_unsigned("stats.arenas.4096.nthreads");
    out->threads_live = atomic_load_explicit(&threads_live, memory_order_relaxed);
    out->released_bytes = atomic_load_explicit(&released_total, memory_order_relaxed);
}

size_t jm_bins(struct jm_bin *out, size_t cap) {
    if (!jm_active) return 0;
    refresh();
    unsigned nbins = ctl_unsigned("arenas.nbins");
    size_t n = 0;
    for (unsigned j = 0; j < nbins && n < cap; j++) {
        uint64_t regs = ctl_bin("stats.arenas.4096.bins.", j, ".curregs");
        if (regs == 0) continue;
        uint64_t size = ctl_bin("arenas.bin.", j, ".size");
        out[n++] = (struct jm_bin){j, size, regs * size, regs};
    }
    return n;
}

uint64_t jm_charged_bytes(void) {
    return atomic_load_explicit(&charged_bytes, memory_order_relaxed) +
           atomic_load_explicit(&metadata_charged, memory_order_relaxed);
}
#endif
