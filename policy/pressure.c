/* Pressure: the threshold handler, the policy, shrink-or-die and the actions
 * (see pressure.h).
 *
 * The gate.  A charge that reaches the next threshold calls on_threshold; many
 * threads may do so at once.  One of them enters (an atomic flag, not a lock:
 * it is held across the backend's release_shared, which takes allocator locks of lower
 * rank) and does the work; it sets the next threshold before leaving.  The
 * others let their charge stand while the footprint is under the kill
 * threshold; at or over it they fail at once (fail), go on (warn) or wait for
 * the one inside and look again (abort), so a crossing is handled once, and a
 * death prints one line and one dump however many threads cross together.
 *
 * State written only by the thread inside the gate: policy, the one-shot
 * flags, the event ring, the counter threshold. */
#include "policy/pressure.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "membudget.h"
#include "policy/budget.h"
#include "policy/dump.h"
#include "policy/group.h"
#include "policy/machine.h"
#include "policy/monitor.h"

/* Leave a policy level only below this share of its threshold (hysteresis). */
#define HYSTERESIS_DIVISOR 10 /* 90% */
/* MEMBUDGET_ACTION=fail lets the error path of a refused allocation allocate:
 * after the first refusal of a crossing, charges succeed again up to this much
 * over the kill threshold (at most 1/8 of it). */
#define FAIL_RESERVE_BYTES ((uint64_t)1 << 20)

/* The thresholds; a policy's is indexed by the policy it moves up to. */
enum {
    T_CONSERVATIVE = MB_POLICY_CONSERVATIVE,
    T_STRICT = MB_POLICY_STRICT,
    T_STRICT_SYNC = MB_POLICY_STRICT_SYNC,
    T_KILL,
    T_INACTIVE,
    T_COUNT
};

static struct mb_config config;
static struct mb_limits limits[2]; /* the one in force and the spare for a recompute */
static _Atomic int limits_current;
static struct mb_limits_params params; /* under pressure_lock */
static mb_lock_t pressure_lock = MB_LOCK_INIT(LOCK_RANK_PRESSURE);
static _Atomic bool enabled;
static uint64_t start_ns;

/* Footprint thresholds, indexed by T_*; UINT64_MAX when not applicable. */
static _Atomic uint64_t thresholds[T_COUNT];

/* ---- the gate ------------------------------------------------------------ */
static _Atomic int gate; /* 0 open, 1 taken, 2 taken with waiters */
static __thread int in_pressure; /* this thread is inside: its own charges pass */

static bool gate_try(void) {
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(&gate, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static void gate_wait(void) {
    int c = atomic_load_explicit(&gate, memory_order_acquire);
    while (c != 0) {
        if (c == 2 || atomic_compare_exchange_weak_explicit(&gate, &c, 2, memory_order_acquire,
                                                            memory_order_relaxed))
            os_futex_wait(&gate, 2);
        c = atomic_load_explicit(&gate, memory_order_acquire);
    }
}

static void gate_enter(void) {
    while (!gate_try()) gate_wait();
}

static void gate_leave(void) {
    if (atomic_exchange_explicit(&gate, 0, memory_order_release) == 2)
        os_futex_wake(&gate, __INT_MAX__);
}

/* ---- state of the thread inside the gate ---------------------------------- */
static _Atomic int policy;
static bool kill_crossed;     /* fail: the reserve is open; warn: reported */
static bool inactive_crossed;
static bool fail_reported;
static _Atomic bool dying;
static _Atomic uint64_t counter_threshold = UINT64_MAX; /* as given to the budget */

static struct mb_event ring[MB_EVENT_RING];
static _Atomic uint64_t event_total;

/* What the machine's and the container's memory ask for (policy/machine.h):
 * written by the poller (machine_update), read inside the gate. */
static _Atomic int outside_level;
static _Atomic unsigned outside_source;
static _Atomic uint64_t outside_value, outside_bound;
/* A change of the cgroup's limit, recorded by the next thread inside the gate. */
static _Atomic bool limit_event_pending;
static _Atomic uint64_t limit_event_new, limit_event_old;

struct pressure_callback {
    void (*fn)(int level, void *arg);
    void *arg;
};
struct kill_callback {
    void (*fn)(void *arg);
    void *arg;
};
static struct pressure_callback pressure_callbacks[MB_CALLBACKS_MAX];
static _Atomic unsigned pressure_callback_count;
static struct kill_callback kill_callbacks[MB_CALLBACKS_MAX];
static _Atomic unsigned kill_callback_count;

static inline uint64_t threshold(int t) {
    return atomic_load_explicit(&thresholds[t], memory_order_relaxed);
}

static uint64_t fail_reserve(uint64_t kill) {
    uint64_t cap = kill / 8;
    return FAIL_RESERVE_BYTES < cap ? FAIL_RESERVE_BYTES : cap;
}

/* The kill threshold as the next charge meets it. */
static uint64_t kill_effective(void) {
    uint64_t kill = threshold(T_KILL);
    if (config.action == MB_ACTION_FAIL && kill_crossed) return kill + fail_reserve(kill);
    return kill;
}

const char *mb_policy_name(enum mb_policy p) {
    static const char *const names[] = {"unrestricted", "conservative", "strict",
                                        "strict-synchronous"};
    _Static_assert(sizeof names / sizeof *names == MB_POLICY_STRICT_SYNC + 1, "a name per policy");
    return (unsigned)p < sizeof names / sizeof *names ? names[p] : "?";
}

const char *mb_event_kind_name(enum mb_event_kind kind) {
    static const char *const names[] = {"policy", "kill-survived", "kill", "inactive-limit",
                                        "limit"};
    _Static_assert(sizeof names / sizeof *names == MB_EVENT_LIMIT + 1, "a name per kind");
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}

/* Why an event happened, when not the footprint alone. */
struct cause {
    unsigned source; /* enum mb_outside_source */
    uint64_t value, bound;
};

static void record_cause(enum mb_event_kind kind, int from, int to, uint64_t footprint,
                         uint64_t crossed, uint64_t released, const struct cause *why) {
    uint64_t n = atomic_load_explicit(&event_total, memory_order_relaxed);
    struct mb_event *e = &ring[n % MB_EVENT_RING];
    e->time_ns = os_now_ns();
    e->footprint_bytes = footprint;
    e->threshold_bytes = crossed;
    e->released_bytes = released;
    e->kind = (uint8_t)kind;
    e->from = (uint8_t)from;
    e->to = (uint8_t)to;
    e->source = (uint8_t)(why != NULL ? why->source : MB_OUTSIDE_NONE);
    e->outside_value = why != NULL ? why->value : 0;
    e->outside_bound = why != NULL ? why->bound : 0;
    atomic_store_explicit(&event_total, n + 1, memory_order_release);
}

static void record(enum mb_event_kind kind, int from, int to, uint64_t footprint,
                   uint64_t crossed, uint64_t released) {
    record_cause(kind, from, to, footprint, crossed, released, NULL);
}

/* The outside level and its cause, as the poller left them. */
static int outside(struct cause *why) {
    int level = atomic_load_explicit(&outside_level, memory_order_acquire);
    if (why != NULL) {
        why->source = atomic_load_explicit(&outside_source, memory_order_relaxed);
        why->value = atomic_load_explicit(&outside_value, memory_order_relaxed);
        why->bound = atomic_load_explicit(&outside_bound, memory_order_relaxed);
    }
    return level;
}

size_t mb_pressure_events(struct mb_event *out, size_t cap, uint64_t *total) {
    uint64_t n = atomic_load_explicit(&event_total, memory_order_acquire);
    uint64_t first = n > MB_EVENT_RING ? n - MB_EVENT_RING : 0;
    size_t count = 0;
    for (uint64_t i = first; i < n && count < cap; i++) out[count++] = ring[i % MB_EVENT_RING];
    if (total != NULL) *total = n;
    return count;
}

/* The highest policy level whose threshold the footprint has reached. */
static enum mb_policy level_for(uint64_t footprint) {
    enum mb_policy level = MB_POLICY_UNRESTRICTED;
    for (int t = T_CONSERVATIVE; t <= T_STRICT_SYNC; t++)
        if (footprint >= threshold(t)) level = (enum mb_policy)t;
    return level;
}

static bool on_threshold(uint64_t counter, size_t charge);

/* Called inside the gate: the next footprint threshold, moved into counter
 * terms with the current baseline. */
static void set_next_threshold(void) {
    uint64_t next = UINT64_MAX;
    int current = atomic_load_explicit(&policy, memory_order_relaxed);
    for (int t = current + 1; t <= T_STRICT_SYNC; t++)
        if (threshold(t) < next) next = threshold(t);
    bool warned = config.action == MB_ACTION_WARN && kill_crossed;
    if (!warned && kill_effective() < next) next = kill_effective();
    if (!inactive_crossed && threshold(T_INACTIVE) < next) next = threshold(T_INACTIVE);
    if (mb_group_next_footprint() < next) next = mb_group_next_footprint(); /* policy/group.h */
    uint64_t counter_next = UINT64_MAX;
    if (next != UINT64_MAX) {
        uint64_t base = mb_monitor_baseline();
        counter_next = next > base ? next - base : 0;
    }
    /* The machine asks for more than the policy is: the next charge acts. */
    if (outside(NULL) > current) counter_next = 0;
    atomic_store_explicit(&counter_threshold, counter_next, memory_order_relaxed);
    budget_set_threshold(counter_next, on_threshold);
}

static void run_pressure_callbacks(enum membudget_level level) {
    unsigned n = atomic_load_explicit(&pressure_callback_count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) pressure_callbacks[i].fn(level, pressure_callbacks[i].arg);
}

static void run_kill_callbacks(void) {
    unsigned n = atomic_load_explicit(&kill_callback_count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) kill_callbacks[i].fn(kill_callbacks[i].arg);
}

/* The level the application's callbacks hear when the policy rises to p. */
static enum membudget_level callback_level(enum mb_policy p) {
    if (p >= MB_POLICY_STRICT_SYNC) return MEMBUDGET_LEVEL_CRITICAL;
    return p == MB_POLICY_STRICT ? MEMBUDGET_LEVEL_STRICT : MEMBUDGET_LEVEL_CONSERVATIVE;
}

/* What the allocator gives back when the policy rises to p. */
static enum alloc_release_level release_level(enum mb_policy p) {
    if (p >= MB_POLICY_STRICT_SYNC) return ALLOC_RELEASE_CRITICAL;
    return p == MB_POLICY_STRICT ? ALLOC_RELEASE_FREE : ALLOC_RELEASE_IDLE;
}

/* WebKit's shrinkOrDie: release everything now, measure again, and act when
 * still at or over the kill threshold.  Returns whether the charge stands. */
static bool shrink_or_die(uint64_t footprint, bool callbacks_done) {
    uint64_t kill = kill_effective();
    if (!callbacks_done) run_pressure_callbacks(MEMBUDGET_LEVEL_CRITICAL);
    uint64_t released = alloc_backend.release_shared(ALLOC_RELEASE_CRITICAL);
    uint64_t after = mb_monitor_refresh();
    int current = atomic_load_explicit(&policy, memory_order_relaxed);
    if (after < kill) {
        record(MB_EVENT_KILL_SURVIVED, current, current, footprint, kill, released);
        return true;
    }
    record(MB_EVENT_KILL, current, current, after, kill, released);
    switch (config.action) {
    case MB_ACTION_ABORT:
        atomic_store_explicit(&dying, true, memory_order_relaxed);
        run_kill_callbacks();
        mb_dump_report(MB_DUMP_KILL, after);
        abort();
    case MB_ACTION_FAIL:
        if (!fail_reported) {
            fail_reported = true;
            mb_dump_report(MB_DUMP_FAIL, after);
        }
        kill_crossed = true; /* opens the reserve for the error path */
        return false;
    case MB_ACTION_WARN:
        kill_crossed = true;
        mb_dump_report(MB_DUMP_WARN, after);
        return true;
    }
    return true;
}

/* Inside the gate, at a tick: the group's share of shrink-or-die
 * (policy/group.h).  When the group's footprint reaches its limit and this
 * process is the one chosen, it releases everything, and when the group is
 * still over, acts per MEMBUDGET_ACTION with a report that has the group. */
static void group_check(void) {
    static bool group_reported; /* fail and warn: one report per crossing */
    uint64_t footprint = mb_monitor_footprint();
    bool victim = mb_group_tick(footprint);
    unsigned asked = mb_group_asked();
    if (asked != 0 && !victim) {
        /* The group asked this process for a release, in band order. */
        run_pressure_callbacks((enum membudget_level)asked);
        uint64_t freed = alloc_backend.release_shared(
            asked == MEMBUDGET_LEVEL_STRICT ? ALLOC_RELEASE_FREE : ALLOC_RELEASE_IDLE);
        mb_group_answered(asked, freed, mb_monitor_refresh());
    }
    if (!victim) {
        group_reported = false;
        return;
    }
    if (group_reported) return;
    run_pressure_callbacks(MEMBUDGET_LEVEL_CRITICAL);
    uint64_t released = alloc_backend.release_shared(ALLOC_RELEASE_CRITICAL);
    uint64_t after = mb_monitor_refresh();
    int current = atomic_load_explicit(&policy, memory_order_relaxed);
    uint64_t kill = mb_group_kill_bytes();
    if (!mb_group_still_over(after, released)) {
        record(MB_EVENT_KILL_SURVIVED, current, current, footprint, kill, released);
        return;
    }
    record(MB_EVENT_KILL, current, current, after, kill, released);
    if (config.action == MB_ACTION_ABORT) {
        atomic_store_explicit(&dying, true, memory_order_relaxed);
        run_kill_callbacks();
        mb_dump_report(MB_DUMP_KILL, after);
        abort();
    }
    group_reported = true;
    mb_dump_report(config.action == MB_ACTION_FAIL ? MB_DUMP_FAIL : MB_DUMP_WARN, after);
}

/* Inside the gate: move the policy up to where the footprint is, react, and
 * run shrink-or-die at the kill threshold. */
/* may_kill false: the policies climb and their callbacks run, but a footprint
 * at the kill threshold is left to the next charge (the idle pass of an inline
 * monitor, mb_pressure_tick_policies). */
static bool evaluate(bool may_kill) {
    uint64_t footprint = mb_monitor_footprint();
    int old = atomic_load_explicit(&policy, memory_order_relaxed);
    enum mb_policy own = level_for(footprint), level = own;
    struct cause why;
    int asked = outside(&why);
    if (asked > (int)level) level = (enum mb_policy)asked;
    bool critical_done = false;
    uint64_t kill = kill_effective();
    if ((int)level > old) {
        /* Policies only climb here; the tick lowers them with hysteresis, so a
         * release that dips under the threshold does not start a storm. */
        atomic_store_explicit(&policy, level, memory_order_relaxed);
        uint64_t released = alloc_backend.release_shared(release_level(level));
        run_pressure_callbacks(callback_level(level));
        critical_done = level >= MB_POLICY_STRICT_SYNC;
        if (own >= level)
            record(MB_EVENT_POLICY, old, level, footprint, threshold(level), released);
        else
            record_cause(MB_EVENT_POLICY, old, level, footprint, 0, released, &why);
        if (level == MB_POLICY_STRICT_SYNC && footprint < kill)
            mb_dump_critical_line(footprint, threshold(T_STRICT_SYNC));
    }
    if (!inactive_crossed && footprint >= threshold(T_INACTIVE)) {
        /* WebKit's doesExceedInactiveLimitWhileActive: an event and a callback,
         * once per crossing (the tick re-arms it below 90% of the threshold). */
        inactive_crossed = true;
        record(MB_EVENT_INACTIVE_LIMIT, level, level, footprint, threshold(T_INACTIVE), 0);
        run_pressure_callbacks(MEMBUDGET_LEVEL_INACTIVE_LIMIT);
    }
    bool warned = config.action == MB_ACTION_WARN && kill_crossed;
    if (!warned && may_kill && footprint >= kill) return shrink_or_die(footprint, critical_done);
    return true;
}

static bool on_threshold(uint64_t counter, size_t charge) {
    (void)counter;
    /* One request larger than all the memory this process could ever have
     * (ramSize: RAM, cgroup, MEMBUDGET_RAM) fails with ENOMEM, as the OS
     * would fail it, and nobody dies for asking: a program probing for
     * MemoryError, a size computed wrong.  Anything smaller is the budget's
     * business: shrink or die. */
    if (charge >= mb_pressure_limits()->ram_bytes) return false;
    if (in_pressure) return true; /* a callback of ours allocating */
    for (;;) {
        if (gate_try()) {
            in_pressure = 1;
            bool stands = evaluate(true);
            group_check();
            set_next_threshold();
            in_pressure = 0;
            gate_leave();
            return stands;
        }
        /* Another thread is inside and will set the next threshold. */
        if (!atomic_load_explicit(&dying, memory_order_relaxed)) {
            uint64_t footprint = mb_monitor_footprint();
            if (footprint < kill_effective()) return true;
            /* fail: once the one inside has reported the crossing; before
             * that, it may yet survive (its release may bring the footprint
             * under), so no allocation fails without the report. */
            if (config.action == MB_ACTION_FAIL && __atomic_load_n(&kill_crossed, __ATOMIC_RELAXED))
                return false;
            if (config.action == MB_ACTION_WARN) return true;
        }
        gate_wait(); /* the one inside decides whether we all die (abort) or fail */
        if (budget_counter() < atomic_load_explicit(&counter_threshold, memory_order_relaxed))
            return true;
    }
}

/* ---- set-up and inputs ------------------------------------------------------ */

static void publish_thresholds(const struct mb_limits *lim) {
    atomic_store_explicit(&thresholds[T_CONSERVATIVE], lim->conservative_bytes, memory_order_relaxed);
    atomic_store_explicit(&thresholds[T_STRICT], lim->strict_bytes, memory_order_relaxed);
    atomic_store_explicit(&thresholds[T_STRICT_SYNC], lim->strict_sync_bytes, memory_order_relaxed);
    atomic_store_explicit(&thresholds[T_KILL], lim->kill_bytes, memory_order_relaxed);
    bool inactive_applies = lim->state == MB_STATE_ACTIVE && lim->inactive_kill_bytes < lim->kill_bytes;
    atomic_store_explicit(&thresholds[T_INACTIVE],
                          inactive_applies ? lim->inactive_kill_bytes : UINT64_MAX,
                          memory_order_relaxed);
}

/* The allocator's headroom hook (alloc/alloc.h): the room under the
 * Conservative threshold while the policy is Unrestricted. */
static uint64_t conservative_headroom(void) {
    if (!atomic_load_explicit(&enabled, memory_order_acquire)) return UINT64_MAX;
    if (atomic_load_explicit(&policy, memory_order_relaxed) != MB_POLICY_UNRESTRICTED) return 0;
    uint64_t limit = threshold(T_CONSERVATIVE);
    if (limit == UINT64_MAX) return UINT64_MAX;
    uint64_t footprint = mb_monitor_footprint();
    return footprint < limit ? limit - footprint : 0;
}

void mb_pressure_init(const struct mb_config *cfg, const struct mb_limits *lim) {
    config = *cfg;
    limits[0] = *lim;
    atomic_store_explicit(&limits_current, 0, memory_order_release);
    mb_limits_params_from_config(&params, cfg);
    start_ns = os_now_ns();
    publish_thresholds(lim);
    mb_machine_init(cfg, lim);
    atomic_store_explicit(&enabled, true, memory_order_release);
    gate_enter();
    set_next_threshold();
    gate_leave();
    alloc_set_headroom_hook(conservative_headroom);
}

bool mb_pressure_enabled(void) { return atomic_load_explicit(&enabled, memory_order_acquire); }
const struct mb_config *mb_pressure_config(void) { return &config; }
const struct mb_limits *mb_pressure_limits(void) {
    return &limits[atomic_load_explicit(&limits_current, memory_order_acquire)];
}
uint64_t mb_pressure_kill_bytes(void) { return threshold(T_KILL); }
enum mb_policy mb_pressure_policy(void) {
    return (enum mb_policy)atomic_load_explicit(&policy, memory_order_relaxed);
}
uint64_t mb_pressure_start_ns(void) { return start_ns; }

int mb_pressure_add_callback(void (*fn)(int level, void *arg), void *arg) {
    if (fn == NULL) return EINVAL;
    mb_lock(&pressure_lock);
    unsigned n = atomic_load_explicit(&pressure_callback_count, memory_order_relaxed);
    int rc = ENOMEM;
    if (n < MB_CALLBACKS_MAX) {
        pressure_callbacks[n] = (struct pressure_callback){fn, arg};
        atomic_store_explicit(&pressure_callback_count, n + 1, memory_order_release);
        rc = 0;
    }
    mb_unlock(&pressure_lock);
    return rc;
}

int mb_pressure_add_kill_callback(void (*fn)(void *arg), void *arg) {
    if (fn == NULL) return EINVAL;
    mb_lock(&pressure_lock);
    unsigned n = atomic_load_explicit(&kill_callback_count, memory_order_relaxed);
    int rc = ENOMEM;
    if (n < MB_CALLBACKS_MAX) {
        kill_callbacks[n] = (struct kill_callback){fn, arg};
        atomic_store_explicit(&kill_callback_count, n + 1, memory_order_release);
        rc = 0;
    }
    mb_unlock(&pressure_lock);
    return rc;
}

static void discard_line(void *ctx, const char *line, size_t len) { (void)ctx, (void)line, (void)len; }

/* With pressure_lock held: recomputes into the spare limits and publishes;
 * with news, after taking the cgroup's new limit. */
static void recompute_locked(const struct mb_machine_news *news) {
    int current = atomic_load_explicit(&limits_current, memory_order_relaxed);
    struct mb_limits *spare = &limits[1 - current];
    *spare = limits[current];
    if (news != NULL)
        mb_limits_set_cgroup(spare, &config, news->limit_bytes, news->old_limit_bytes,
                             news->limit_file);
    /* An override order problem was reported once at start-up. */
    const struct mb_sink quiet = {discard_line, NULL};
    mb_limits_compute(spare, &config, &params, &quiet);
    publish_thresholds(spare);
    atomic_store_explicit(&limits_current, 1 - current, memory_order_release);
}

/* After the thresholds changed: the next one, from outside an allocation (or
 * from a callback of ours, whose caller sets it on the way out). */
static void rearm(void) {
    if (!mb_pressure_enabled() || in_pressure) return;
    gate_enter();
    set_next_threshold();
    gate_leave();
    alloc_set_headroom_hook(conservative_headroom);
}

int mb_pressure_set_limit(uint64_t bytes) {
    if ((bytes != 0 && bytes < MB_MIB) || bytes > MB_SIZE_SETTING_MAX) return EINVAL;
    mb_lock(&pressure_lock);
    params.api_limit_bytes = bytes;
    recompute_locked(NULL);
    mb_unlock(&pressure_lock);
    rearm();
    return 0;
}

void mb_pressure_set_state(enum mb_state state) { mb_pressure_set_state_by(state, false); }

void mb_pressure_set_pages(unsigned pages) { mb_pressure_set_pages_by(pages, false); }

void mb_pressure_set_state_by(enum mb_state state, bool command) {
    mb_group_set_state(state); /* the band follows the state (policy/group.h) */
    mb_lock(&pressure_lock);
    params.state = state;
    params.set_by = command ? params.set_by | MB_SET_BY_STATE_COMMAND
                            : params.set_by & ~MB_SET_BY_STATE_COMMAND;
    recompute_locked(NULL);
    mb_unlock(&pressure_lock);
    rearm();
}

void mb_pressure_set_pages_by(unsigned pages, bool command) {
    mb_lock(&pressure_lock);
    params.pages = pages != 0 ? pages : 1;
    params.set_by = command ? params.set_by | MB_SET_BY_PAGES_COMMAND
                            : params.set_by & ~MB_SET_BY_PAGES_COMMAND;
    recompute_locked(NULL);
    mb_unlock(&pressure_lock);
    rearm();
}

/* Reads the machine's and the container's memory (at most once per interval,
 * one thread) and publishes what they ask for; a changed cgroup limit
 * recomputes the thresholds at once, and its event waits for the gate. */
static void machine_update(void) {
    struct mb_machine_news news;
    if (!mb_machine_poll(os_now_ns(), config.interval_ns, mb_pressure_limits()->cgroup_bytes,
                         &news))
        return;
    if (news.limit_changed) {
        mb_lock(&pressure_lock);
        recompute_locked(&news);
        mb_unlock(&pressure_lock);
        atomic_store_explicit(&limit_event_new, news.limit_bytes, memory_order_relaxed);
        atomic_store_explicit(&limit_event_old, news.old_limit_bytes, memory_order_relaxed);
        atomic_store_explicit(&limit_event_pending, true, memory_order_release);
    }
    atomic_store_explicit(&outside_source, news.outside.source, memory_order_relaxed);
    atomic_store_explicit(&outside_value, news.outside.value, memory_order_relaxed);
    atomic_store_explicit(&outside_bound, news.outside.bound, memory_order_relaxed);
    atomic_store_explicit(&outside_level, (int)news.outside.level, memory_order_release);
}

/* Inside the gate: the event of a changed cgroup limit, if one waits. */
static void record_limit_event(uint64_t footprint) {
    if (!atomic_exchange_explicit(&limit_event_pending, false, memory_order_acquire)) return;
    struct cause why = {MB_OUTSIDE_LIMIT,
                        atomic_load_explicit(&limit_event_new, memory_order_relaxed),
                        atomic_load_explicit(&limit_event_old, memory_order_relaxed)};
    int p = atomic_load_explicit(&policy, memory_order_relaxed);
    record_cause(MB_EVENT_LIMIT, p, p, footprint, threshold(T_KILL), 0, &why);
}

static void tick(bool idle, bool may_kill) {
    if (!mb_pressure_enabled() || atomic_load_explicit(&dying, memory_order_relaxed)) return;
    if (!in_pressure) machine_update();
    if (in_pressure || !gate_try()) return; /* the one inside sets the threshold */
    in_pressure = 1;
    uint64_t footprint = mb_monitor_footprint();
    record_limit_event(footprint);
    struct cause why;
    int wanted = outside(&why);
    int old = atomic_load_explicit(&policy, memory_order_relaxed), level = old;
    while (level > MB_POLICY_UNRESTRICTED && level > wanted) {
        uint64_t t = threshold(level);
        if (footprint >= t - t / HYSTERESIS_DIVISOR) break;
        level--;
    }
    if (level < old) {
        atomic_store_explicit(&policy, level, memory_order_relaxed);
        record_cause(MB_EVENT_POLICY, old, level, footprint, 0, 0, wanted > 0 ? &why : NULL);
    }
    uint64_t kill = threshold(T_KILL), inactive = threshold(T_INACTIVE);
    if (kill_crossed && footprint < kill - kill / HYSTERESIS_DIVISOR) kill_crossed = false;
    if (inactive_crossed && (inactive == UINT64_MAX ||
                             footprint < inactive - inactive / HYSTERESIS_DIVISOR))
        inactive_crossed = false;
    /* The monitor thread is outside any allocation: act on a crossing the
     * baseline alone brought about (or new thresholds, or the machine's
     * memory), which no charge would notice. */
    set_next_threshold();
    if (idle && budget_counter() >= atomic_load_explicit(&counter_threshold, memory_order_relaxed))
        evaluate(may_kill);
    group_check();
    set_next_threshold();
    in_pressure = 0;
    gate_leave();
}

void mb_pressure_tick(bool idle) { tick(idle, true); }

void mb_pressure_tick_policies(void) { tick(true, false); }

void mb_pressure_atfork_prepare(void) { mb_lock(&pressure_lock); }
void mb_pressure_atfork_parent(void) { mb_unlock(&pressure_lock); }

void mb_pressure_atfork_child_unlock(void) { mb_lock_reset(&pressure_lock); }

void mb_pressure_atfork_child(void) {
    atomic_store_explicit(&gate, 0, memory_order_relaxed);
    in_pressure = 0;
    atomic_store_explicit(&policy, MB_POLICY_UNRESTRICTED, memory_order_relaxed);
    kill_crossed = inactive_crossed = fail_reported = false;
    atomic_store_explicit(&dying, false, memory_order_relaxed);
    atomic_store_explicit(&event_total, 0, memory_order_relaxed);
    atomic_store_explicit(&outside_level, 0, memory_order_relaxed);
    atomic_store_explicit(&limit_event_pending, false, memory_order_relaxed);
    mb_machine_atfork_child();
    start_ns = os_now_ns();
    if (!mb_pressure_enabled()) return;
    mb_monitor_refresh();
    gate_enter();
    set_next_threshold();
    gate_leave();
    alloc_set_headroom_hook(conservative_headroom);
}

/* ---- pressure sent from outside (membudget release, policy/control.c) ----- */

size_t mb_pressure_notify(int level) {
    if (!mb_pressure_enabled() || in_pressure) return 0;
    gate_enter();
    in_pressure = 1; /* the callbacks' own allocations pass, as at a crossing */
    run_pressure_callbacks(level);
    enum alloc_release_level what = ALLOC_RELEASE_IDLE;
    if (level == MEMBUDGET_LEVEL_STRICT) what = ALLOC_RELEASE_FREE;
    if (level == MEMBUDGET_LEVEL_CRITICAL) what = ALLOC_RELEASE_CRITICAL;
    uint64_t released = 0;
    if (level != MEMBUDGET_LEVEL_INACTIVE_LIMIT) released = alloc_backend.release_shared(what);
    set_next_threshold();
    in_pressure = 0;
    gate_leave();
    return (size_t)released;
}
