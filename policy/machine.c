/* Pressure from around the process: the arithmetic of the levels and the
 * state of the last reading (see machine.h).  The files are the platform's
 * (os_machine_files, os_machine_read). */
#include "policy/machine.h"

#include <stdatomic.h>
#include <string.h>

#include "alloc/os.h"
#include "policy/pressure.h"

/* A level is left below this share of its threshold (90%), as the footprint's. */
#define HYSTERESIS_DIVISOR 10
/* PSI figures are hundredths of a percent: 100% is 10000. */
#define PSI_WHOLE 10000

static struct mb_config config;
static struct mb_machine_files files;
static _Atomic bool enabled;

/* One poller at a time, at most once per interval. */
static _Atomic uint64_t last_poll_ns;
static _Atomic int polling;
static struct mb_outside last_outside; /* written by the poller only */
static uint64_t last_limit;            /* likewise; UINT64_MAX: not read yet */

/* The last reading as the live page shows it. */
static _Atomic uint64_t pub_level, pub_source, pub_psi_some, pub_psi_full, pub_mem_available,
    pub_mem_total, pub_cgroup_usage;

const char *mb_outside_source_name(enum mb_outside_source source) {
    static const char *const names[] = {"footprint", "psi", "memavailable", "cgroup",
                                        "cgroup-limit", "vm-pressure"};
    _Static_assert(sizeof names / sizeof *names == MB_OUTSIDE_VM_PRESSURE + 1, "a name per source");
    return (unsigned)source < sizeof names / sizeof *names ? names[source] : "?";
}

/* ---- the arithmetic --------------------------------------------------------- */

static uint64_t threshold_of(uint64_t whole, uint32_t ppb) { return mb_apply_ppb(whole, ppb); }

static bool reaches(uint64_t value, uint64_t whole, uint32_t ppb, bool holding) {
    if (ppb == 0 || whole == 0) return false;
    uint64_t t = threshold_of(whole, ppb);
    if (holding) t -= t / HYSTERESIS_DIVISOR;
    return value >= t;
}

unsigned mb_machine_measure_level(uint64_t cons_value, uint64_t strict_value, uint64_t whole,
                                  const struct mb_levels *levels, unsigned prev, uint64_t *value,
                                  uint64_t *bound) {
    unsigned level = 0;
    if (reaches(strict_value, whole, levels->strict_ppb, prev >= MB_POLICY_STRICT))
        level = MB_POLICY_STRICT;
    else if (reaches(cons_value, whole, levels->conservative_ppb, prev >= MB_POLICY_CONSERVATIVE))
        level = MB_POLICY_CONSERVATIVE;
    if (level == MB_POLICY_STRICT) {
        *value = strict_value;
        *bound = threshold_of(whole, levels->strict_ppb);
    } else if (level == MB_POLICY_CONSERVATIVE) {
        *value = cons_value;
        *bound = threshold_of(whole, levels->conservative_ppb);
    } else {
        *value = cons_value;
        *bound = 0;
    }
    return level;
}

/* The lower of two limits, 0 meaning none. */
static uint64_t lower_limit(uint64_t a, uint64_t b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

void mb_machine_level(const struct mb_machine_reading *r, const struct mb_config *cfg,
                      const struct mb_outside *prev, struct mb_outside *out) {
    memset(out, 0, sizeof *out);
    uint64_t value[3] = {0, 0, 0}, bound[3] = {0, 0, 0};
    unsigned before[3] = {0, 0, 0};
    if (prev != NULL) memcpy(before, prev->levels, sizeof before);
    if (r->psi_valid)
        out->levels[0] = mb_machine_measure_level(r->psi_some_avg10, r->psi_full_avg10, PSI_WHOLE,
                                                  &cfg->psi, before[0], &value[0], &bound[0]);
    if (r->mem_valid && r->mem_total_bytes != 0) {
        uint64_t used = r->mem_available_bytes < r->mem_total_bytes
                            ? r->mem_total_bytes - r->mem_available_bytes
                            : 0;
        out->levels[1] = mb_machine_measure_level(used, used, r->mem_total_bytes, &cfg->mem_used,
                                                  before[1], &value[1], &bound[1]);
    }
    uint64_t limit = lower_limit(r->cgroup_high_bytes, r->cgroup_max_bytes);
    if (r->cgroup_valid && limit != 0)
        out->levels[2] =
            mb_machine_measure_level(r->cgroup_usage_bytes, r->cgroup_usage_bytes, limit,
                                     &cfg->cgroup_used, before[2], &value[2], &bound[2]);
    static const unsigned sources[3] = {MB_OUTSIDE_PSI, MB_OUTSIDE_MEMINFO, MB_OUTSIDE_CGROUP};
    for (int i = 0; i < 3; i++) {
        if (out->levels[i] <= out->level) continue;
        out->level = out->levels[i];
        out->source = sources[i];
        out->value = value[i];
        out->bound = bound[i];
    }
    /* The kernel's level holds its own hysteresis; value and bound are in its
     * unit (the level read, the level that maps to the policy). */
    unsigned vm = r->vm_pressure_valid ? mb_machine_vm_pressure_policy(r->vm_pressure_raw, &cfg->psi)
                                       : 0;
    if (vm > out->level) {
        out->level = vm;
        out->source = MB_OUTSIDE_VM_PRESSURE;
        out->value = r->vm_pressure_raw;
        out->bound = vm == MB_POLICY_STRICT ? MB_VM_PRESSURE_CRITICAL : MB_VM_PRESSURE_WARNING;
    }
}

unsigned mb_machine_vm_pressure_policy(uint32_t raw, const struct mb_levels *switches) {
    if (raw >= MB_VM_PRESSURE_CRITICAL && switches->strict_ppb != 0) return MB_POLICY_STRICT;
    if (raw >= MB_VM_PRESSURE_WARNING && switches->conservative_ppb != 0)
        return MB_POLICY_CONSERVATIVE;
    return 0;
}

/* ---- the state ------------------------------------------------------------------ */

void mb_machine_init(const struct mb_config *cfg, const struct mb_limits *lim) {
    config = *cfg;
    memset(&last_outside, 0, sizeof last_outside);
    last_limit = UINT64_MAX;
    atomic_store_explicit(&last_poll_ns, 0, memory_order_relaxed);
    if (cfg->machine == MB_MACHINE_OFF) {
        atomic_store_explicit(&enabled, false, memory_order_release);
        return;
    }
    os_machine_files(lim, cfg->psi_file, cfg->meminfo_file, &files);
    atomic_store_explicit(&enabled, true, memory_order_release);
}

bool mb_machine_enabled(void) { return atomic_load_explicit(&enabled, memory_order_acquire); }

static void publish(const struct mb_machine_reading *r, const struct mb_outside *o) {
    atomic_store_explicit(&pub_level, o->level, memory_order_relaxed);
    atomic_store_explicit(&pub_source, o->source, memory_order_relaxed);
    atomic_store_explicit(&pub_psi_some, r->psi_valid ? r->psi_some_avg10 : 0, memory_order_relaxed);
    atomic_store_explicit(&pub_psi_full, r->psi_valid ? r->psi_full_avg10 : 0, memory_order_relaxed);
    atomic_store_explicit(&pub_mem_available, r->mem_valid ? r->mem_available_bytes : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&pub_mem_total, r->mem_valid ? r->mem_total_bytes : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&pub_cgroup_usage, r->cgroup_valid ? r->cgroup_usage_bytes : 0,
                          memory_order_relaxed);
}

bool mb_machine_poll(uint64_t now_ns, uint64_t interval_ns, uint64_t known_limit,
                     struct mb_machine_news *out) {
    if (!mb_machine_enabled()) return false;
    uint64_t last = atomic_load_explicit(&last_poll_ns, memory_order_relaxed);
    if (last != 0 && now_ns - last < interval_ns) return false;
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&polling, &expected, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
    atomic_store_explicit(&last_poll_ns, now_ns != 0 ? now_ns : 1, memory_order_relaxed);

    static struct mb_machine_reading r; /* under polling */
    os_machine_read(&files, &r);
    struct mb_outside o;
    mb_machine_level(&r, &config, &last_outside, &o);
    last_outside = o;
    publish(&r, &o);

    memset(out, 0, sizeof *out);
    out->outside = o;
    if (last_limit == UINT64_MAX) last_limit = known_limit;
    if (r.limit_valid && r.limit_bytes != last_limit) {
        out->limit_changed = true;
        out->old_limit_bytes = last_limit;
        out->limit_bytes = r.limit_bytes;
        memcpy(out->limit_file, r.limit_file, sizeof out->limit_file);
        last_limit = r.limit_bytes;
    }
    atomic_store_explicit(&polling, 0, memory_order_release);
    return true;
}

void mb_machine_last(struct mb_machine_reading *r, struct mb_outside *o) {
    memset(r, 0, sizeof *r);
    memset(o, 0, sizeof *o);
    o->level = (unsigned)atomic_load_explicit(&pub_level, memory_order_relaxed);
    o->source = (unsigned)atomic_load_explicit(&pub_source, memory_order_relaxed);
    r->psi_some_avg10 = (uint32_t)atomic_load_explicit(&pub_psi_some, memory_order_relaxed);
    r->psi_full_avg10 = (uint32_t)atomic_load_explicit(&pub_psi_full, memory_order_relaxed);
    r->mem_available_bytes = atomic_load_explicit(&pub_mem_available, memory_order_relaxed);
    r->mem_total_bytes = atomic_load_explicit(&pub_mem_total, memory_order_relaxed);
    r->cgroup_usage_bytes = atomic_load_explicit(&pub_cgroup_usage, memory_order_relaxed);
}

void mb_machine_atfork_child(void) {
    atomic_store_explicit(&polling, 0, memory_order_relaxed);
    atomic_store_explicit(&last_poll_ns, 0, memory_order_relaxed);
}
