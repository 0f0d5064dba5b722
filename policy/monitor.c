/* The monitor: the OS view of the footprint, the baseline, and the tick that
 * keeps them fresh (see monitor.h).  Readings race harmlessly: each is a whole
 * file read into a stack buffer, and the baseline is one atomic store. */
#include "policy/monitor.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc/alloc.h"
#include "policy/budget.h"
#include "policy/control.h"
#include "policy/pressure.h"
#include "policy/statspage.h"

static uint64_t interval_ns = 100 * 1000000ull;
static bool use_cgroup;
static bool cgroup_missing; /* cgroup asked for, none found: RSS used instead */
static char cgroup_file[MB_PATH_MAX + 32];

/* The library's thread (mb_monitor_start_thread): what it does, and whether
 * a fork child must start its own at its first tick. */
static bool thread_monitors, thread_controls, thread_wanted;
static _Atomic bool thread_lost;

static _Atomic uint64_t baseline_bytes;
static _Atomic uint64_t last_tick_ns;

/* The last reading, published field by field; a reader may see a mix of two
 * readings, which is fine for a report. */
static _Atomic uint64_t last_rss_anon, last_swap, last_cgroup, last_os, last_time;
static _Atomic bool last_valid;

/* The timeline ring.  Entry n lives in slot n % MB_TIMELINE_RING; its seq is
 * 2n+1 while it is written and 2n+2 once complete, so a reader can tell a whole
 * entry from a torn one or a stale one (a seqlock per slot). */
struct tick_slot {
    _Atomic uint64_t seq;
    _Atomic uint64_t time_ns, footprint_bytes, counter_bytes, baseline_bytes;
    _Atomic uint32_t policy;
};
static struct tick_slot timeline[MB_TIMELINE_RING];
static _Atomic uint64_t timeline_total;

static void timeline_record(uint64_t now_ns) {
    uint64_t n = atomic_fetch_add_explicit(&timeline_total, 1, memory_order_relaxed);
    struct tick_slot *s = &timeline[n % MB_TIMELINE_RING];
    uint64_t counter = budget_counter(), baseline = mb_monitor_baseline();
    atomic_store_explicit(&s->seq, 2 * n + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->time_ns, now_ns, memory_order_relaxed);
    atomic_store_explicit(&s->footprint_bytes, counter + baseline, memory_order_relaxed);
    atomic_store_explicit(&s->counter_bytes, counter, memory_order_relaxed);
    atomic_store_explicit(&s->baseline_bytes, baseline, memory_order_relaxed);
    atomic_store_explicit(&s->policy, (uint32_t)mb_pressure_policy(), memory_order_relaxed);
    atomic_store_explicit(&s->seq, 2 * n + 2, memory_order_release);
}

size_t mb_monitor_timeline(struct mb_tick *out, size_t cap, uint64_t *total) {
    uint64_t n = atomic_load_explicit(&timeline_total, memory_order_acquire);
    uint64_t first = n > MB_TIMELINE_RING ? n - MB_TIMELINE_RING : 0;
    size_t count = 0;
    for (uint64_t i = first; i < n && count < cap; i++) {
        struct tick_slot *s = &timeline[i % MB_TIMELINE_RING];
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (seq != 2 * i + 2) continue; /* being written, or already overwritten */
        struct mb_tick t = {
            .time_ns = atomic_load_explicit(&s->time_ns, memory_order_relaxed),
            .footprint_bytes = atomic_load_explicit(&s->footprint_bytes, memory_order_relaxed),
            .counter_bytes = atomic_load_explicit(&s->counter_bytes, memory_order_relaxed),
            .baseline_bytes = atomic_load_explicit(&s->baseline_bytes, memory_order_relaxed),
            .policy = atomic_load_explicit(&s->policy, memory_order_relaxed),
        };
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq) continue;
        out[count++] = t;
    }
    if (total != NULL) *total = n;
    return count;
}

uint64_t mb_monitor_interval_ns(void) { return interval_ns; }

static bool read_u64_file(const char *path, uint64_t *out) {
    char buf[64];
    long n = os_read_small_file(path, buf, sizeof buf);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9') return false;
    uint64_t v = 0;
    for (const char *p = buf; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
    *out = v;
    return true;
}

bool mb_monitor_read_os(struct mb_os_view *out) {
    memset(out, 0, sizeof *out);
    out->time_ns = os_now_ns();
    bool have_rss = os_footprint(&out->rss_anon_bytes, &out->vm_swap_bytes);
    if (use_cgroup) {
        out->valid = read_u64_file(cgroup_file, &out->cgroup_bytes);
        out->os_bytes = out->cgroup_bytes;
    } else {
        out->valid = have_rss;
        out->os_bytes = out->rss_anon_bytes + out->vm_swap_bytes;
    }
    return out->valid;
}

uint64_t mb_monitor_refresh(void) {
    struct mb_os_view v;
    uint64_t counter;
    if (mb_monitor_read_os(&v)) {
        counter = budget_counter();
        atomic_store_explicit(&baseline_bytes, v.os_bytes > counter ? v.os_bytes - counter : 0,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&last_rss_anon, v.rss_anon_bytes, memory_order_relaxed);
    atomic_store_explicit(&last_swap, v.vm_swap_bytes, memory_order_relaxed);
    atomic_store_explicit(&last_cgroup, v.cgroup_bytes, memory_order_relaxed);
    atomic_store_explicit(&last_os, v.os_bytes, memory_order_relaxed);
    atomic_store_explicit(&last_time, v.time_ns, memory_order_relaxed);
    atomic_store_explicit(&last_valid, v.valid, memory_order_relaxed);
    return mb_monitor_footprint();
}

void mb_monitor_last_view(struct mb_os_view *out) {
    out->rss_anon_bytes = atomic_load_explicit(&last_rss_anon, memory_order_relaxed);
    out->vm_swap_bytes = atomic_load_explicit(&last_swap, memory_order_relaxed);
    out->cgroup_bytes = atomic_load_explicit(&last_cgroup, memory_order_relaxed);
    out->os_bytes = atomic_load_explicit(&last_os, memory_order_relaxed);
    out->time_ns = atomic_load_explicit(&last_time, memory_order_relaxed);
    out->valid = atomic_load_explicit(&last_valid, memory_order_relaxed);
}

uint64_t mb_monitor_baseline(void) {
    return atomic_load_explicit(&baseline_bytes, memory_order_relaxed);
}

uint64_t mb_monitor_footprint(void) { return budget_counter() + mb_monitor_baseline(); }

const char *mb_monitor_source_name(void) {
    if (use_cgroup) return "cgroup";
    return cgroup_missing ? "rss (no memory cgroup found)" : "rss";
}

void mb_monitor_init(const struct mb_config *cfg, const struct mb_limits *lim) {
    interval_ns = cfg->interval_ns;
    use_cgroup = false;
    cgroup_missing = false;
    if (cfg->footprint == MB_FOOTPRINT_CGROUP) {
        use_cgroup = os_container_usage_file(lim, cgroup_file, sizeof cgroup_file);
        cgroup_missing = !use_cgroup;
    }
    mb_monitor_refresh();
    atomic_store_explicit(&last_tick_ns, os_now_ns(), memory_order_relaxed);
    timeline_record(os_now_ns());
    alloc_set_tick_hook(mb_monitor_tick);
}

static void thread_restart(void);

void mb_monitor_tick(uint64_t now_ns) {
    uint64_t last = atomic_load_explicit(&last_tick_ns, memory_order_relaxed);
    if (now_ns - last < interval_ns) return;
    /* One thread per interval does the work; the others go on at once. */
    if (!atomic_compare_exchange_strong_explicit(&last_tick_ns, &last, now_ns, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    if (__builtin_expect(atomic_load_explicit(&thread_lost, memory_order_relaxed), 0))
        thread_restart();
    mb_monitor_refresh();
    mb_pressure_tick(false);
    timeline_record(now_ns);
    mb_statspage_update();
}

void mb_monitor_atfork_child(void) {
    atomic_store_explicit(&last_tick_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&timeline_total, 0, memory_order_relaxed); /* its own story */
    /* Threads do not survive fork: the child's first tick starts its own
     * (never here: creating a thread is no work for a fork handler). */
    atomic_store_explicit(&thread_lost, thread_wanted, memory_order_relaxed);
}

/* The library's one thread: the monitor (MEMBUDGET_MONITOR=thread) every
 * interval, and with MEMBUDGET_CONTROL=on the page republished at least
 * every MB_STATSPAGE_PUBLISH_NS and requests served as they come. */
static void monitor_pass(void) {
    uint64_t now = os_now_ns();
    atomic_store_explicit(&last_tick_ns, now, memory_order_relaxed);
    mb_monitor_refresh();
    mb_pressure_tick(true);
    timeline_record(now);
    mb_statspage_update();
}

static void *membudget_thread(void *arg) {
    (void)arg;
    os_name_this_thread("membudget");
    uint64_t last_pass = os_now_ns();
    for (;;) {
        uint64_t now = os_now_ns(), wait = thread_monitors ? interval_ns : MB_STATSPAGE_PUBLISH_NS;
        if (thread_monitors && now - last_pass < wait) wait -= now - last_pass;
        if (thread_controls) {
            uint64_t due = mb_statspage_due_ns();
            if (wait > MB_STATSPAGE_PUBLISH_NS) wait = MB_STATSPAGE_PUBLISH_NS;
            if (now < due && due - now < wait) wait = due - now; /* the page, as soon as due */
            mb_control_wait(wait);
        } else {
            os_sleep_ns(wait);
        }
        now = os_now_ns();
        if (thread_monitors && now - last_pass >= interval_ns) {
            monitor_pass();
            last_pass = now;
        } else if (thread_controls && now >= mb_statspage_due_ns()) {
            /* No allocation has ticked for a while: the pressure tick runs
             * here, so that an idle process also follows the machine's and
             * the cgroup's memory (policy/machine.h) and a changed limit,
             * within MB_STATSPAGE_PUBLISH_NS; a kill still waits for its
             * next allocation (the inline monitor's promise). */
            mb_monitor_refresh();
            mb_pressure_tick_policies();
            mb_statspage_publish();
        }
        if (thread_controls) mb_control_serve();
    }
    return NULL;
}

int mb_monitor_start_thread(bool monitor, bool control) {
    thread_monitors = monitor;
    thread_controls = control;
    thread_wanted = monitor || control;
    if (!thread_wanted) return 0;
    /* Signals go to the application's threads, never to ours. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, membudget_thread, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (control) mb_statspage_set_serving(rc == 0 ? MB_CONTROL_SERVING : MB_CONTROL_NO_THREAD);
    return rc;
}

/* In a fork child, at its first tick (inside an allocation, from a consistent
 * state: the thread's creation may allocate through us). */
static void thread_restart(void) {
    if (!atomic_exchange_explicit(&thread_lost, false, memory_order_relaxed)) return;
    int rc = mb_monitor_start_thread(thread_monitors, thread_controls);
    if (rc != 0 && mb_pressure_config()->verbose >= 1) {
        static const char msg[] = "membudget: the library's thread could not be started again "
                                  "in the fork child\n";
        os_write_all(2, msg, sizeof msg - 1);
    }
}
