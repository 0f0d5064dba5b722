/* The monitor (DESIGN §3, §5): the operating system's view of the footprint and
 * the baseline derived from it, refreshed by a tick that runs inline on
 * allocator slow paths at most once per MEMBUDGET_INTERVAL, or from a
 * background thread with MEMBUDGET_MONITOR=thread so an idle process is watched
 * too.
 *
 *     footprint = counter + baseline
 *     baseline  = max(0, os_footprint - counter)
 *     os_footprint = the platform's view (os_footprint, alloc/os.h; on Linux
 *                    RssAnon + VmSwap of /proc/self/status), or the container's
 *                    usage file (os_container_usage_file; on Linux the own
 *                    cgroup's memory.current / memory.usage_in_bytes) with
 *                    MEMBUDGET_FOOTPRINT=cgroup
 *
 * Everything here may run inside an allocation: files are read by the
 * platform into stack buffers, and nothing allocates or takes a lock. */
#ifndef MEMBUDGET_POLICY_MONITOR_H
#define MEMBUDGET_POLICY_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/limits.h"

/* One reading of the operating system's view. */
struct mb_os_view {
    uint64_t rss_anon_bytes; /* RssAnon of /proc/self/status */
    uint64_t vm_swap_bytes;  /* VmSwap of /proc/self/status */
    uint64_t cgroup_bytes;   /* memory.current or memory.usage_in_bytes; 0 unless cgroup */
    uint64_t os_bytes;       /* what the baseline is derived from */
    uint64_t time_ns;        /* CLOCK_MONOTONIC of the reading; 0: never read */
    bool valid;              /* false when the file could not be read */
};

/* Reads the footprint source chosen by cfg (the cgroup directory comes from
 * lim), measures once and installs the allocator tick.  From the constructor. */
void mb_monitor_init(const struct mb_config *cfg, const struct mb_limits *lim);
/* Starts the library's one thread (named "membudget", every signal blocked,
 * a 256 KiB stack): monitor, the monitor every interval
 * (MEMBUDGET_MONITOR=thread); control, the page republished at least every
 * MB_STATSPAGE_PUBLISH_NS and commands served (MEMBUDGET_CONTROL=on,
 * policy/control.h); one thread for both.  From the constructor, after
 * mb_statspage_start; a fork child starts its own at its first tick.  With
 * control, the page's control.serving says whether it started.  Returns 0 (also
 * when neither is asked) or an errno value. */
int mb_monitor_start_thread(bool monitor, bool control);

/* Reads the OS view now into *out; false when it could not be read. */
bool mb_monitor_read_os(struct mb_os_view *out);
/* Reads the OS view, recomputes the baseline and returns the footprint. */
uint64_t mb_monitor_refresh(void);
/* The last reading (as refresh stored it). */
void mb_monitor_last_view(struct mb_os_view *out);

uint64_t mb_monitor_baseline(void);
/* counter + baseline, without reading anything. */
uint64_t mb_monitor_footprint(void);
/* "rss", "cgroup", or "rss (no cgroup found)" when cgroup was asked for in vain. */
const char *mb_monitor_source_name(void);

/* The footprint timeline (for the dump): one entry per tick that measured, the
 * latest MB_TIMELINE_RING kept and older ones counted.  Recorded and read
 * without a lock: an entry being written is skipped by a reader. */
struct mb_tick {
    uint64_t time_ns; /* CLOCK_MONOTONIC */
    uint64_t footprint_bytes, counter_bytes, baseline_bytes;
    uint32_t policy; /* enum mb_policy after the tick */
};
#define MB_TIMELINE_RING 1024
/* Copies the kept entries, oldest first; returns how many.  *total receives the
 * number ever recorded. */
size_t mb_monitor_timeline(struct mb_tick *out, size_t cap, uint64_t *total);
uint64_t mb_monitor_interval_ns(void);

/* The allocator's tick hook: refreshes at most once per interval and lets the
 * pressure code lower its policy.  Never allocates. */
void mb_monitor_tick(uint64_t now_ns);
/* In a fork child: the next tick measures at once, and starts the child's
 * own thread if the parent had one (threads do not survive fork; a thread is
 * never created in the fork handler itself). */
void mb_monitor_atfork_child(void);

#endif
