/* A small futex mutex with a rank.  Locks are taken in increasing rank order
 * (the table below); the debug build checks the order on every acquisition, so
 * an inversion shows up in tests rather than as a deadlock in production.
 * The fork handler takes every lock in this order too. */
#ifndef MEMBUDGET_ALLOC_LOCK_H
#define MEMBUDGET_ALLOC_LOCK_H

#include <stdatomic.h>

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
