/* The jemalloc backend (MEMBUDGET_BACKEND=jemalloc, DESIGN §2; the interface is
 * alloc/backend.h): the ABI of preload/ served by Debian's jemalloc instead of
 * the native allocator, with everything above the allocator unchanged.  Entry
 * points, extent hooks, releases and statistics.
 *
 * jemalloc is linked into the library from Debian's libjemalloc_pic.a with its
 * public names renamed (malloc -> mbje_malloc, ...) and its constructor
 * removed, so it is invisible to the program and stays uninitialized unless
 * this backend is chosen (see the Makefile; without libjemalloc-dev this file
 * is empty and the backend table has the native allocator only).  Debian's
 * libjemalloc.so.2 cannot be loaded with dlopen() ("cannot allocate memory in
 * static TLS block": it uses initial-exec TLS), and preloading it beside us
 * would make its own operator new/delete the program's.
 *
 * The budget: custom extent hooks on every arena charge what jemalloc commits
 * and uncharge what it decommits or unmaps (dalloc is left out, so jemalloc
 * keeps its virtual memory and decommits instead, as it does by default on
 * Linux; the purge hooks are left out so that every page that stops counting
 * goes through decommit).  The extents of an arena in the moment before it has
 * our hooks are charged the same way through jemalloc's own mmap calls.  Its
 * metadata blocks are mapped 2 MiB at a time and touched as used: the counter
 * holds what of them is resident, measured with mincore(2) every 10 ms at most
 * from the thread ticks.  A hook runs inside jemalloc, under its locks: it
 * never runs the pressure code.  A charge that would cross the next threshold
 * is refused there, jemalloc returns NULL, and the entry point runs the
 * pressure handler outside jemalloc and retries with its charges approved.
 *
 * malloc and calloc call jemalloc's own fast path (mbje_*) straight from the
 * table's entries while the thread's allocation countdown (alloc_countdown)
 * lasts, and jm_call when it runs out: that path ticks, settles what the
 * budget refused, runs the pressure code a fast path left pending, and is the
 * only one where a charge may be refused.
 *
 * Pointers handed out by the native allocator before the switch (the dynamic
 * loader's, the C library's start-up) stay native: free and realloc route them
 * by the native allocator's address range, chunk bitmap and, if any large span
 * existed at the switch, its large-span table. */
#ifdef MB_HAVE_JEMALLOC
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <jemalloc/jemalloc.h> /* types and flag macros only: the functions are renamed */

#include "alloc/fmt.h"
#include "alloc/internal.h"
#include "alloc/os_linux.h" /* the jemalloc backend is Linux-only */
#include "membudget.h"
#include "policy/budget.h"

void *mbje_malloc(size_t size);
void *mbje_calloc(size_t count, size_t size);
void mbje_free(void *p);
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

/* jemalloc's smallest class (8 bytes) is only 8-aligned; every block of ours
 * is 16-aligned (max_align_t), so nothing smaller than 16 is asked for. */
#define JM_MIN_REQUEST 16
/* Sampled blocks are page-aligned (jm_sampled_block), so a free looks for a
 * sample only when the block is. */
#define JM_SAMPLED_ALIGN ((size_t)4096)
/* The countdown never runs longer than this: a thread ticks (jm_tick) at least
 * every JM_TICK_BYTES it allocates, and what remains of its sampling interval
 * beyond that waits in countdown_carry. */
#define JM_TICK_BYTES (256 * 1024)
static __thread int64_t countdown_carry __attribute__((tls_model("initial-exec")));

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
            countdown_carry += alloc_countdown + 1;
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

/* Starts jemalloc, from the constructor, before any pthread_atfork handler of
 * ours is registered (jemalloc's own handler must run after ours in the
 * prepare phase). */
static const char *jm_start(void) {
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
    return NULL;
}

/* ---- the slow path -------------------------------------------------------------- */

enum jm_op {
    JM_MALLOC,          /* a = size */
    JM_CALLOC,          /* a = count, b = size */
    JM_CALLOC_SAMPLED,  /* a = bytes, zeroed, page-aligned */
    JM_REALLOC,         /* p, a = size */
    JM_REALLOC_SAMPLED, /* p, a = size, page-aligned */
    JM_ALIGNED          /* a = size, b = alignment */
};

static void jm_tick(void);

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

/* Runs op; NULL when it fails.  An allocation about to be sampled is asked
 * page-aligned (the *_SAMPLED ops, or JM_ALIGNED with JM_SAMPLED_ALIGN). */
static void *jm_call(enum jm_op op, void *p, size_t a, size_t b) {
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

/* align: a power of two above 16. */
static void *jm_aligned(size_t size, size_t align) {
    return jm_call(JM_ALIGNED, NULL, size != 0 ? size : 1, align); /* mallocx wants a size */
}

/* Is p the native allocator's (handed out before the switch)?  Two compares
 * for a block of jemalloc's, which is outside the native address range. */
static inline bool native_owns(const void *p) {
    if (likely(!native_in_range(p))) return false;
    return chunk_of(p) != NULL || (native_large && large_usable_size(p) != 0);
}

/* A sampled block is page-aligned (jm_sampled_block moves a small one there),
 * so only page-aligned blocks (jemalloc's large ones, and the first of each
 * slab) look at the filter when freed. */
static inline bool sampled(const void *p) {
    return ((uintptr_t)p & (JM_SAMPLED_ALIGN - 1)) == 0 &&
           atomic_load_explicit(sampled_filter_slot(p), memory_order_relaxed) != 0;
}

/* A block about to be sampled (size bytes asked): returns it, or a
 * page-aligned copy of it (the old one freed), or NULL when no such copy could
 * be made (then it must not be sampled).  The free path only looks for
 * samples among page-aligned blocks. */
static void *jm_sampled_block(void *p, size_t size) {
    if (((uintptr_t)p & (JM_SAMPLED_ALIGN - 1)) == 0 || native_owns(p)) return p;
    size_t n = size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size;
    void *q = jm_call(JM_ALIGNED, NULL, n, JM_SAMPLED_ALIGN);
    if (q == NULL) return NULL;
    memcpy(q, p, size);
    mbje_free(p);
    return q;
}

static __attribute__((noinline)) void jm_free_slow(void *p) {
    if (native_owns(p)) {
        alloc_free(p);
        return;
    }
    if (sampled(p)) alloc_sampled_free_filtered(p);
    mbje_free(p);
}

static size_t jm_usable_size(const void *p) {
    if (p == NULL) return 0;
    if (unlikely(native_owns(p))) return alloc_usable_size(p);
    return mbje_malloc_usable_size(p);
}

static bool jm_owns(const void *p) {
    if (p == NULL) return false;
    if (native_owns(p)) return true;
    unsigned arena;
    size_t len = sizeof arena;
    return mbje_mallctl("arenas.lookup", &arena, &len, &p, sizeof p) == 0;
}

/* sample: the block about to be sampled (it stays page-aligned). */
static void *jm_realloc(void *p, size_t size, bool sample) {
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

/* In a fork child: a metadata measurement the parent had under way is over. */
static void jm_atfork_child(void) {
    atomic_store_explicit(&meta_busy, 0, memory_order_relaxed);
    /* Only the forking thread goes on in the child. */
    atomic_store_explicit(&threads_live, thread_ready ? 1 : 0, memory_order_relaxed);
    native_atfork_child();
}

/* ---- ticks and releases --------------------------------------------------------------- */

static _Atomic uint64_t flush_epoch;
static __thread uint64_t seen_epoch __attribute__((tls_model("initial-exec")));

static void flush_thread_cache(void) { ctl_by_mib(MIB_TCACHE_FLUSH, 0, NULL, NULL, NULL, 0); }

/* A thread's allocation countdown ran out (jm_call runs this first, so at
 * least every JM_TICK_BYTES a thread allocates): flushes the thread cache when
 * asked, sets the hooks on arenas jemalloc created since the last look,
 * measures the metadata, and runs the allocator layer's tick (the monitor,
 * and the scavenger for what native memory became free). */
static void jm_tick(void) {
    uint64_t epoch = atomic_load_explicit(&flush_epoch, memory_order_relaxed);
    if (unlikely(seen_epoch != epoch)) {
        seen_epoch = epoch;
        flush_thread_cache();
    }
    if (unlikely(arenas_unhooked())) hook_new_arenas();
    meta_refresh(os_now_ns(), false);
    alloc_tick();
}

/* Releases (membudget_release, the pressure levels): IDLE runs jemalloc's
 * time-based decay; FREE and up flush the calling thread's cache now, have
 * every other thread flush its cache at its next tick, and purge every arena.
 * The calling thread may always flush its own cache: on this backend the
 * pressure code never runs inside jemalloc (a hook only refuses a charge;
 * jm_call settles it outside).  Returns the bytes decommitted meanwhile. */
static size_t jm_release(enum alloc_release_level level) {
    uint64_t before = atomic_load_explicit(&released_total, memory_order_relaxed);
    hook_new_arenas(); /* so that purges go through our decommit */
    if (level >= ALLOC_RELEASE_FREE) {
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
    if (level >= ALLOC_RELEASE_FREE) memcpy(name + 11, "purge", 6);
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

/* A per-bin control: prefix, bin index, suffix ("arenas.bin.", j, ".size"). */
static uint64_t ctl_bin(const char *prefix, unsigned j, const char *suffix) {
    char name[64];
    struct mb_buf f = mb_buf_on(name, sizeof name);
    mb_buf_str(&f, prefix);
    mb_buf_u64(&f, j);
    mb_buf_str(&f, suffix);
    return ctl_size(name);
}

static void jm_stats(struct membudget_stats *out, bool wait) {
    (void)wait; /* mallctl takes jemalloc's locks, not ours */
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

static size_t jm_classes(struct alloc_class_row *out, size_t cap, bool wait) {
    (void)wait;
    refresh();
    unsigned nbins = ctl_unsigned("arenas.nbins");
    size_t n = 0;
    for (unsigned j = 0; j < nbins && n < cap; j++) {
        uint64_t regs = ctl_bin("stats.arenas.4096.bins.", j, ".curregs");
        if (regs == 0) continue;
        uint64_t size = ctl_bin("arenas.bin.", j, ".size");
        out[n++] = (struct alloc_class_row){j, size, regs * size, regs};
    }
    return n;
}

/* jemalloc's own view for the dump: bytes allocated, active, resident, mapped,
 * retained and metadata, its arenas, and the counter's share for its extents
 * and (mapped, resident) metadata blocks. */
static size_t jm_figures(struct alloc_figure *out, size_t cap) {
    refresh();
    const struct alloc_figure figures[] = {
        {"jemalloc_version", JEMALLOC_VERSION, 0},
        {"allocated_bytes", NULL, ctl_size("stats.allocated")},
        {"active_bytes", NULL, ctl_size("stats.active")},
        {"resident_bytes", NULL, ctl_size("stats.resident")},
        {"mapped_bytes", NULL, ctl_size("stats.mapped")},
        {"retained_bytes", NULL, ctl_size("stats.retained")},
        {"metadata_bytes", NULL, ctl_size("stats.metadata")},
        {"arenas", NULL, arena_count()},
        {"arenas_hooked", NULL, atomic_load_explicit(&hooked_count, memory_order_relaxed)},
        {"charged_bytes", NULL, atomic_load_explicit(&charged_bytes, memory_order_relaxed)},
        {"metadata_mapped_bytes", NULL,
         atomic_load_explicit(&metadata_mapped, memory_order_relaxed)},
        {"metadata_resident_bytes", NULL,
         atomic_load_explicit(&metadata_charged, memory_order_relaxed)},
    };
    _Static_assert(sizeof figures / sizeof *figures <= ALLOC_FIGURES_MAX, "room for every figure");
    size_t n = sizeof figures / sizeof *figures < cap ? sizeof figures / sizeof *figures : cap;
    memcpy(out, figures, n * sizeof *out);
    return n;
}

/* Bytes the counter holds for jemalloc (extents and resident metadata). */
static uint64_t jm_charged_bytes(void) {
    return atomic_load_explicit(&charged_bytes, memory_order_relaxed) +
           atomic_load_explicit(&metadata_charged, memory_order_relaxed);
}

/* ---- the backend's entry points (alloc/backend.h) -------------------------------
 * The countdown first, then a tail call into jemalloc's fast path; when it ran
 * out, jm_call, which ticks before allocating.  An allocation that will be
 * sampled is made page-aligned at once (the free path looks for samples only
 * there), so the sampler never has to move it. */

static inline size_t jm_request(size_t size) {
    return size < JM_MIN_REQUEST ? JM_MIN_REQUEST : size;
}

/* The countdown ran out (it was already decreased by the caller's size): the
 * next sample is due when what waits in the carry does not cover it. */
static inline bool jm_sample_due(void) {
    return alloc_countdown < 0 && alloc_countdown + countdown_carry < 0;
}

/* After the allocation p: a new tick interval from the carry, or a sample. */
static __attribute__((noinline, cold)) void *sample_slow(void *p, size_t size) {
    int64_t left = alloc_countdown + countdown_carry; /* bytes still to the next sample */
    countdown_carry = 0;
    if (left >= 0) {
        alloc_countdown = left < JM_TICK_BYTES ? left : JM_TICK_BYTES;
        countdown_carry = left - alloc_countdown;
        return p; /* jm_call ticked before allocating */
    }
    alloc_countdown = left;
    p = alloc_sample_due(p, size);
    if (alloc_countdown > JM_TICK_BYTES) {
        countdown_carry = alloc_countdown - JM_TICK_BYTES;
        alloc_countdown = JM_TICK_BYTES;
    }
    return p;
}

static __attribute__((noinline)) void *jm_slow(bool zero, size_t size) {
    void *p;
    if (jm_sample_due())
        p = jm_call(zero ? JM_CALLOC_SAMPLED : JM_ALIGNED, NULL, jm_request(size),
                    JM_SAMPLED_ALIGN);
    else if (zero)
        p = jm_call(JM_CALLOC, NULL, 1, jm_request(size));
    else
        p = jm_call(JM_MALLOC, NULL, jm_request(size), 0);
    if (unlikely(p == NULL)) errno = ENOMEM;
    return sample_slow(p, size);
}

static void *entry_malloc(size_t size) {
    if (likely(countdown_take(size))) return mbje_malloc(jm_request(size));
    return jm_slow(false, size);
}

static void *entry_calloc(size_t bytes) {
    if (likely(countdown_take(bytes))) return mbje_calloc(1, jm_request(bytes));
    return jm_slow(true, bytes);
}

static void *entry_realloc(void *p, size_t size) {
    bool lasts = countdown_take(size);
    void *r = jm_realloc(p, size, jm_sample_due());
    if (unlikely(r == NULL)) errno = ENOMEM;
    return lasts ? r : sample_slow(r, size);
}

/* The native allocator's blocks (handed out before the switch) lie in its
 * address range: two compares tell jemalloc's from them. */
static void entry_free(void *p) {
    if (unlikely(native_in_range(p) || ((uintptr_t)p & (JM_SAMPLED_ALIGN - 1)) == 0)) {
        jm_free_slow(p);
        return;
    }
    mbje_free(p);
}

static void *entry_aligned(size_t size, size_t align) {
    /* As in malloc: a block about to be sampled is made page-aligned, and the
     * slow path ticks before allocating. */
    bool lasts = countdown_take(size);
    if (jm_sample_due() && align < JM_SAMPLED_ALIGN) align = JM_SAMPLED_ALIGN;
    void *p = align <= MIN_ALIGN ? jm_call(JM_MALLOC, NULL, jm_request(size), 0)
                                 : jm_aligned(size, align);
    if (unlikely(p == NULL)) errno = ENOMEM;
    return lasts ? p : sample_slow(p, size);
}

/* A native block (from before the switch) is marked on its page or span; one
 * of jemalloc's in the filter only. */
static void entry_mark_sampled(void *p) {
    if (chunk_of(p) != NULL || (p != NULL && large_usable_size(p) != 0))
        alloc_mark_sampled(p);
    else
        alloc_filter_mark(p);
}

const struct alloc_backend alloc_backend_jemalloc = {
    .name = "jemalloc",
    .start = jm_start,
    .malloc = entry_malloc,
    .calloc = entry_calloc,
    .realloc = entry_realloc,
    .free = entry_free,
    .aligned = entry_aligned,
    .usable_size = jm_usable_size,
    .owns = jm_owns,
    .release = jm_release,
    .release_shared = jm_release,
    .sample_prepare = jm_sampled_block,
    .mark_sampled = entry_mark_sampled,
    .stats = jm_stats,
    .classes = jm_classes,
    .figures = jm_figures,
    .charged_bytes = jm_charged_bytes,
    /* jemalloc's own locks are its own handler's (registered as it starts);
     * the native allocator's still guard the blocks from before the switch. */
    .atfork_prepare = native_atfork_prepare,
    .atfork_parent = native_atfork_parent,
    .atfork_child = jm_atfork_child,
};
#endif
