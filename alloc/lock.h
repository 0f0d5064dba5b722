/* A small futex mutex with a rank.  Locks are taken in increasing rank order
 * (the table below); the debug build checks the order on every acquisition, so
 * an inversion shows up in tests rather than as a deadlock in production.
 * The fork handler takes every lock in this order too. */
#ifndef MEMBUDGET_ALLOC_LOCK_H
#define MEMBUDGET_ALLOC_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "alloc/os.h"

enum lock_rank {
    LOCK_RANK_HEAPS = 1,   /* heap registry and abandoned heaps (heap.c) */
    LOCK_RANK_PRESSURE = 2,/* policy state changes (policy/) */
    LOCK_RANK_MMAP = 3,    /* the application's charged mappings (preload/mmap.c) */
    LOCK_RANK_LARGE = 4,   /* large spans and their reuse cache (large.c) */
    LOCK_RANK_POOL_SMALL = 5,  /* chunks and free pages of each kind (chunk.c) */
    LOCK_RANK_POOL_MEDIUM = 6,
    LOCK_RANK_POOL_BIG = 7,
    LOCK_RANK_META = 8,    /* metadata allocator (meta.c) */
    LOCK_RANK_SAMPLE = 9,  /* new allocation sites (policy/sample.c); never held while allocating */
    LOCK_RANK_COUNT
};

typedef struct mb_lock {
    _Atomic int state; /* 0 free, 1 held, 2 held with waiters */
    int rank;
} mb_lock_t;

#define MB_LOCK_INIT(r) {0, (r)}

#ifdef MB_DEBUG
/* Records the lock as held; with check, aborts on a rank inversion. */
void lock_rank_acquire(int rank, int check);
void lock_rank_release(int rank);
#else
static inline void lock_rank_acquire(int rank, int check) { (void)rank, (void)check; }
static inline void lock_rank_release(int rank) { (void)rank; }
#endif

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

static inline void mb_lock_slow(mb_lock_t *lock) {
    for (int spin = 0; spin < 100; spin++) {
        int expected = 0;
        if (atomic_load_explicit(&lock->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&lock->state, &expected, 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
        cpu_relax();
    }
    int c = atomic_exchange_explicit(&lock->state, 2, memory_order_acquire);
    while (c != 0) {
        os_futex_wait(&lock->state, 2);
        c = atomic_exchange_explicit(&lock->state, 2, memory_order_acquire);
    }
}

static inline void mb_lock(mb_lock_t *lock) {
    lock_rank_acquire(lock->rank, 1);
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1,
                                                 memory_order_acquire, memory_order_relaxed))
        mb_lock_slow(lock);
}

static inline int mb_trylock(mb_lock_t *lock) {
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1,
                                                 memory_order_acquire, memory_order_relaxed))
        return 0;
    lock_rank_acquire(lock->rank, 0); /* a trylock cannot deadlock */
    return 1;
}

/* Takes the lock unless it stays busy for max_ns; returns 1 when taken.  For
 * code that must go on whoever holds it: the death dump (the holder may be the
 * dying thread itself, or a thread that never comes back) and the sampler. */
static inline int mb_lock_bounded(mb_lock_t *lock, uint64_t max_ns) {
    for (int spin = 0; spin < 100; spin++) {
        if (mb_trylock(lock)) return 1;
        cpu_relax();
    }
    uint64_t start = os_now_ns();
    do {
        os_yield();
        if (mb_trylock(lock)) return 1;
    } while (os_now_ns() - start < max_ns);
    return 0;
}

/* Statistics readers: with wait, an ordinary lock; without (the death dump), a
 * bounded try.  Returns whether the lock is held: either way the caller reads,
 * racily when it is not (a report may show a mix of two moments). */
#define MB_STATS_LOCK_WAIT_NS (2 * 1000 * 1000ull)
static inline int mb_lock_stats(mb_lock_t *lock, int wait) {
    if (wait) {
        mb_lock(lock);
        return 1;
    }
    return mb_lock_bounded(lock, MB_STATS_LOCK_WAIT_NS);
}

static inline void mb_unlock(mb_lock_t *lock) {
    lock_rank_release(lock->rank);
    if (atomic_exchange_explicit(&lock->state, 0, memory_order_release) == 2)
        os_futex_wake(&lock->state, 1);
}

/* After fork, in the child: the lock was held by the forking thread. */
static inline void mb_lock_reset(mb_lock_t *lock) {
    lock_rank_release(lock->rank);
    atomic_store_explicit(&lock->state, 0, memory_order_relaxed);
}

#endif
