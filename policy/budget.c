/* The footprint counter: one atomic add per page or span commit, in the style of
 * Linux's page_counter_try_charge.  The common case is an add and a compare. */
#include "policy/budget.h"

#include <stdatomic.h>

static _Atomic uint64_t counter_bytes;
static _Atomic uint64_t peak_bytes;
static _Atomic uint64_t next_threshold = UINT64_MAX;
static _Atomic(budget_threshold_fn) threshold_fn;

static void peak_raise(uint64_t now) {
    /* The peak moves only while the footprint grows; a load suffices otherwise. */
    uint64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&peak_bytes, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* A charge that reached the threshold: the handler decides.  Out of line, so
 * that the common case below keeps nothing alive across a call. */
static __attribute__((noinline)) bool charge_at_threshold(uint64_t now, size_t bytes) {
    budget_threshold_fn fn = atomic_load_explicit(&threshold_fn, memory_order_acquire);
    if (fn != NULL && !fn(now, bytes)) {
        atomic_fetch_sub_explicit(&counter_bytes, bytes, memory_order_relaxed);
        return false;
    }
    peak_raise(now);
    return true;
}

/* Only a charge that stands moves the peak.  A refused one was never held: a
 * request for more than the machine has (malloc(PTRDIFF_MAX), a probe for
 * MemoryError) would otherwise leave a peak of exabytes, and a charge that
 * ends the process is in the footprint at death, not in what the process
 * held.  The common case costs what it did: an add, a compare and the peak's
 * load. */
bool budget_charge(size_t bytes) {
    uint64_t now = atomic_fetch_add_explicit(&counter_bytes, bytes, memory_order_relaxed) + bytes;
    if (now >= atomic_load_explicit(&next_threshold, memory_order_relaxed))
        return charge_at_threshold(now, bytes);
    peak_raise(now);
    return true;
}

bool budget_try_charge(size_t bytes) {
    uint64_t now = atomic_fetch_add_explicit(&counter_bytes, bytes, memory_order_relaxed) + bytes;
    if (now >= atomic_load_explicit(&next_threshold, memory_order_relaxed) &&
        atomic_load_explicit(&threshold_fn, memory_order_acquire) != NULL) {
        atomic_fetch_sub_explicit(&counter_bytes, bytes, memory_order_relaxed);
        return false;
    }
    peak_raise(now);
    return true;
}

void budget_charge_committed(size_t bytes) {
    peak_raise(atomic_fetch_add_explicit(&counter_bytes, bytes, memory_order_relaxed) + bytes);
}

void budget_uncharge(size_t bytes) {
    atomic_fetch_sub_explicit(&counter_bytes, bytes, memory_order_relaxed);
}

uint64_t budget_counter(void) { return atomic_load_explicit(&counter_bytes, memory_order_relaxed); }
uint64_t budget_peak(void) { return atomic_load_explicit(&peak_bytes, memory_order_relaxed); }

void budget_set_threshold(uint64_t threshold, budget_threshold_fn fn) {
    atomic_store_explicit(&threshold_fn, fn, memory_order_release);
    atomic_store_explicit(&next_threshold, threshold, memory_order_relaxed);
}
