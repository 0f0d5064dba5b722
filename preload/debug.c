/* Test hooks of the debug build (MB_DEBUG), for states a test cannot reach from
 * outside.  Not part of the ABI of a release build: a test finds them with
 * dlsym and skips itself when they are absent. */
#ifdef MB_DEBUG
#include "alloc/alloc.h"
#include "policy/pressure.h"
#include "policy/sample.h"
#include "preload/preload.h"

#define MB_DEBUG_HOLD_PRESSURE 1u
#define MB_DEBUG_HOLD_MMAP 2u
#define MB_DEBUG_HOLD_META 4u
#define MB_DEBUG_HOLD_SAMPLE 8u

MB_EXPORT void membudget_debug_hold_locks(unsigned mask);

/* Takes the chosen locks and never gives them back, as a context that stopped
 * inside the allocator would hold them (a thread parked in a lock, or one
 * interrupted by a signal whose handler goes on allocating).  The rank records
 * are dropped, so the calling thread may go on allocating in the debug build:
 * what the test then watches is whether the death dump still completes. */
MB_EXPORT void membudget_debug_hold_locks(unsigned mask) {
    if (mask & MB_DEBUG_HOLD_PRESSURE) {
        mb_pressure_atfork_prepare();
        lock_rank_release(LOCK_RANK_PRESSURE);
    }
    if (mask & MB_DEBUG_HOLD_MMAP) {
        mmap_atfork_prepare();
        lock_rank_release(LOCK_RANK_MMAP);
    }
    if (mask & MB_DEBUG_HOLD_META) {
        meta_lock_all();
        lock_rank_release(LOCK_RANK_META);
    }
    if (mask & MB_DEBUG_HOLD_SAMPLE) {
        mb_sample_atfork_prepare();
        lock_rank_release(LOCK_RANK_SAMPLE);
    }
}
#endif
