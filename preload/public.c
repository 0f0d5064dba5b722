/* The public API (include/membudget.h, DESIGN §8): thin wrappers over the
 * policy layer.  None of these allocates; each is callable before the
 * constructor has run (the budget then has no limit yet). */
#include <errno.h>
#include <string.h>

#include "alloc/alloc.h"
#include "membudget.h"
#include "policy/budget.h"
#include "policy/dump.h"
#include "policy/monitor.h"
#include "policy/pressure.h"
#include "preload/preload.h"

void mb_fill_stats(struct membudget_stats *st, bool wait) {
    alloc_stats(st, wait);
    st->mmap_bytes = mmap_charged_bytes(wait);
    st->baseline_bytes = mb_monitor_baseline();
    st->footprint_bytes = st->counter_bytes + st->baseline_bytes;
    st->limit_bytes = mb_pressure_enabled() ? mb_pressure_kill_bytes() : 0;
    st->policy = (uint64_t)mb_pressure_policy();
}

MB_EXPORT size_t membudget_stats(struct membudget_stats *out, size_t size) {
    if (out == NULL) return 0;
    struct membudget_stats st;
    mb_fill_stats(&st, true);
    if (size > sizeof st) size = sizeof st;
    memcpy(out, &st, size);
    return size;
}

/* What membudget_release(level) gives back: below CONSERVATIVE counts as it,
 * above CRITICAL (MEMBUDGET_LEVEL_INACTIVE_LIMIT included) as CRITICAL. */
static enum alloc_release_level release_level(int level) {
    if (level <= MEMBUDGET_LEVEL_CONSERVATIVE) return ALLOC_RELEASE_IDLE;
    if (level == MEMBUDGET_LEVEL_STRICT) return ALLOC_RELEASE_FREE;
    return ALLOC_RELEASE_CRITICAL;
}

MB_EXPORT size_t membudget_release(int level) {
    return alloc_backend.release(release_level(level));
}

MB_EXPORT size_t membudget_footprint(void) { return (size_t)mb_monitor_footprint(); }

MB_EXPORT size_t membudget_limit(void) {
    return mb_pressure_enabled() ? (size_t)mb_pressure_kill_bytes() : SIZE_MAX;
}

static int fail_with(int err) {
    if (err == 0) return 0;
    errno = err;
    return -1;
}

MB_EXPORT int membudget_set_limit(size_t bytes) {
    if (!mb_pressure_enabled()) return fail_with(EAGAIN);
    return fail_with(mb_pressure_set_limit(bytes));
}

MB_EXPORT int membudget_on_pressure(void (*cb)(int level, void *arg), void *arg) {
    return fail_with(mb_pressure_add_callback(cb, arg));
}

MB_EXPORT int membudget_on_kill(void (*cb)(void *arg), void *arg) {
    return fail_with(mb_pressure_add_kill_callback(cb, arg));
}

MB_EXPORT void membudget_set_process_state(int active) {
    if (mb_pressure_enabled()) mb_pressure_set_state(active ? MB_STATE_ACTIVE : MB_STATE_INACTIVE);
}

MB_EXPORT void membudget_set_page_count(unsigned pages) {
    if (mb_pressure_enabled()) mb_pressure_set_pages(pages);
}

MB_EXPORT int membudget_dump(const char *path) {
    if (!mb_pressure_enabled()) return fail_with(EAGAIN);
    char fallback[MB_CONFIG_PATH_MAX + 64];
    if (path == NULL) {
        if (!mb_dump_path(fallback, sizeof fallback, 1)) return fail_with(ENAMETOOLONG);
        path = fallback;
    }
    int rc = mb_dump_write_path(path, MB_DUMP_REQUEST, mb_monitor_footprint());
    return rc < 0 ? fail_with(-rc) : 0;
}
