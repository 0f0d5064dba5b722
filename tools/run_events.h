/* The events file of `membudget run --events FILE` (tools/run_events.c;
 * the schema is docs/run-events.md): one JSON object per line, written and
 * flushed as each thing happens, for a supervisor to follow. */
#ifndef MEMBUDGET_TOOLS_RUN_EVENTS_H
#define MEMBUDGET_TOOLS_RUN_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tools/run_death.h"

struct run_events {
    FILE *out;            /* NULL: no events file */
    bool own;             /* out is a file we opened (not stderr) */
    unsigned run;         /* the current run, from 1 */
    pid_t pid;            /* its command's pid */
    bool page_seen;       /* its live page has been read */
    char policy[24];      /* the policy and state last seen on the page */
    char state[12];
};

/* Opens path ("-": standard error) for appending, O_NOFOLLOW|O_CLOEXEC,
 * created 0600 when new; path NULL: no events.  false after an error line. */
bool run_events_open(struct run_events *ev, const char *path);
void run_events_close(struct run_events *ev);

/* {"event":"start"}: run number `run` of cmd started as pid; limit and
 * state as given (limit NULL: the jetsam model decides). */
void run_events_start(struct run_events *ev, unsigned run, pid_t pid, char *const *cmd,
                      const char *limit, const char *state);
/* Reads the command's live page (tools/livestats.h) and writes a "policy"
 * event when its policy changed since the last reading, a "state" event
 * when its state did. */
void run_events_poll(struct run_events *ev);
/* {"event":"death"}: how the run ended and run's status for it. */
void run_events_death(struct run_events *ev, const struct run_end *end);
/* {"event":"not-started"}: the command did not run under the library. */
void run_events_not_started(struct run_events *ev, int status, const char *why);
/* {"event":"restart"}: the restart about to happen (count: restarts so far,
 * this one included; recent: deaths within the window), after delay_s. */
void run_events_restart(struct run_events *ev, unsigned count, unsigned recent, double delay_s);
/* {"event":"stop-restarting"}: why no restart follows. */
void run_events_stop(struct run_events *ev, const char *reason, unsigned count);

#endif
