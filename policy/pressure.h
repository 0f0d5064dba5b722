/* Pressure (DESIGN §5): WebKit's MemoryPressureHandler at the moment of
 * allocation.  The budget counter calls our threshold handler when a charge
 * reaches the next threshold; one thread at a time enters the pressure code
 * (the others go on, or wait only at the kill threshold), moves the policy
 * Unrestricted -> Conservative -> Strict -> StrictSynchronous, releases memory,
 * calls the application's callbacks, records an event, and at the kill
 * threshold runs shrink-or-die and acts per MEMBUDGET_ACTION.  The monitor tick
 * lowers the policy again, with hysteresis.
 *
 * The handler and the tick run inside allocations: they never allocate, never
 * take an allocator lock themselves except through the backend's release_shared, and
 * write with raw system calls. */
#ifndef MEMBUDGET_POLICY_PRESSURE_H
#define MEMBUDGET_POLICY_PRESSURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/limits.h"

enum mb_policy {
    MB_POLICY_UNRESTRICTED = 0,
    MB_POLICY_CONSERVATIVE = 1,
    MB_POLICY_STRICT = 2,
    MB_POLICY_STRICT_SYNC = 3
};
const char *mb_policy_name(enum mb_policy policy);

enum mb_event_kind {
    MB_EVENT_POLICY = 0,     /* the policy moved (from -> to) */
    MB_EVENT_KILL_SURVIVED,  /* shrink-or-die brought the footprint under the kill threshold */
    MB_EVENT_KILL,           /* still over after shrinking: the action follows */
    MB_EVENT_INACTIVE_LIMIT, /* active, over the inactive process's kill threshold */
    MB_EVENT_LIMIT           /* the cgroup's limit changed: thresholds recomputed */
};
const char *mb_event_kind_name(enum mb_event_kind kind);

/* One entry of the policy history.  A fixed ring keeps the latest
 * MB_EVENT_RING; older ones are counted, not kept. */
struct mb_event {
    uint64_t time_ns;         /* CLOCK_MONOTONIC */
    uint64_t footprint_bytes; /* when the event was decided */
    uint64_t threshold_bytes; /* the threshold crossed (0 for a fall) */
    uint64_t released_bytes;  /* returned to the OS by the reaction */
    uint8_t kind;             /* enum mb_event_kind */
    uint8_t from, to;         /* enum mb_policy */
    /* enum mb_outside_source (policy/machine.h): why the policy moved, the
     * footprint (0) or the machine's or the container's memory, and that
     * source's measure and the threshold it reached (machine.h gives the
     * units; for MB_EVENT_LIMIT the new and the old limit in bytes). */
    uint8_t source;
    uint64_t outside_value, outside_bound;
};
#define MB_EVENT_RING 64

/* Takes its own copies of the configuration and limits, sets the thresholds and
 * installs the handler.  From the constructor. */
void mb_pressure_init(const struct mb_config *cfg, const struct mb_limits *lim);
bool mb_pressure_enabled(void);

/* The configuration and the limits in force (the limits change with
 * membudget_set_limit and friends; a reader racing with a change may see a
 * mix, which only reports can do). */
const struct mb_config *mb_pressure_config(void);
const struct mb_limits *mb_pressure_limits(void);
uint64_t mb_pressure_kill_bytes(void);
enum mb_policy mb_pressure_policy(void);
uint64_t mb_pressure_start_ns(void);
/* Copies the kept events, oldest first; returns how many.  *total receives the
 * number ever recorded. */
size_t mb_pressure_events(struct mb_event *out, size_t cap, uint64_t *total);

/* Application callbacks (membudget_on_pressure / membudget_on_kill).  Return 0,
 * or an errno value (EINVAL for NULL, ENOMEM when the table is full). */
#define MB_CALLBACKS_MAX 32
int mb_pressure_add_callback(void (*fn)(int level, void *arg), void *arg);
int mb_pressure_add_kill_callback(void (*fn)(void *arg), void *arg);

/* Inputs of the thresholds; each recomputes them (mb_limits_compute). */
int mb_pressure_set_limit(uint64_t bytes); /* 0: back to the configuration */
void mb_pressure_set_state(enum mb_state state);
void mb_pressure_set_pages(unsigned pages);
/* The same, saying in the kill threshold's source whether a command set it
 * from outside (MB_SET_BY_*_COMMAND, policy/limits.h); the API's calls clear
 * that. */
void mb_pressure_set_state_by(enum mb_state state, bool command);
void mb_pressure_set_pages_by(unsigned pages, bool command);

/* Pressure from outside (`membudget release`, WebKit's notifications): runs
 * the callbacks at level (enum membudget_level) inside the gate, then
 * releases what that level releases (nothing for the inactive-limit notice).
 * From a thread outside any allocation; returns the bytes released. */
size_t mb_pressure_notify(int level);

/* From the monitor after a refresh: reads the machine's and the container's
 * memory (policy/machine.h, at most once per interval) and follows the
 * cgroup's limit, raises the policy to the level they ask for (at once when
 * idle, else at the next charge), lowers it with hysteresis, rearms
 * the one-shot reactions and moves the counter threshold with the baseline.
 * idle: called from the monitor thread, not from an allocation, so a crossing
 * found here (the baseline grew) is acted on at once. */
void mb_pressure_tick(bool idle);
/* The tick of an idle pass of the library's thread while the monitor runs
 * inline: as mb_pressure_tick(true) (the machine's pressure, a changed limit
 * and the baseline raise the policies and run their callbacks at once), but a
 * footprint at the kill threshold is acted on at the process's next
 * allocation, as MEMBUDGET_MONITOR=inline says, not from this thread. */
void mb_pressure_tick_policies(void);

void mb_pressure_atfork_prepare(void);
void mb_pressure_atfork_parent(void);
/* The child starts over: Unrestricted, no history, nothing written yet. */
/* In the fork child: the lock first (in rank order, before the allocator's
 * heap lock is taken again), then the policy state. */
void mb_pressure_atfork_child_unlock(void);
void mb_pressure_atfork_child(void);

#endif
