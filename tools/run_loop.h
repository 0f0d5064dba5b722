/* `membudget run` as the command's parent (tools/run_loop.c): it starts the
 * command, makes sure the library started in it (tools/run_start.h), passes
 * signals on, follows its live page for the events file, tells why it ended
 * (tools/run_death.h) and, with --restart, starts it again, with WebKit's
 * rule for a page whose web process dies (WebPageProxy::
 * tryReloadAfterProcessTermination): not again when it died again soon after
 * a restart. */
#ifndef MEMBUDGET_TOOLS_RUN_LOOP_H
#define MEMBUDGET_TOOLS_RUN_LOOP_H

#include <stdbool.h>

#include "tools/run_death.h"
#include "tools/run_events.h"

#define RUN_EXIT_INTERNAL 125 /* membudget itself failed, as env(1) and timeout(1) */
#define RUN_EXIT_NOT_EXECUTABLE 126
#define RUN_EXIT_NOT_FOUND 127
#define RUN_EXIT_UNBUDGETED 122 /* the library did not (or could not) start in CMD */

/* WebKit's numbers (WebPageProxy.cpp): resetRecentCrashCountDelay, 30 s, and
 * maximumWebProcessRelaunchAttempts, 1. */
#define RUN_RESTART_WINDOW_DEFAULT 30.0
#define RUN_RESTART_MAX_DEFAULT 1u
#define RUN_RESTART_DELAY_DEFAULT 0.1 /* seconds before a restart, as systemd's RestartSec */

enum run_restart { RUN_RESTART_NEVER, RUN_RESTART_ON_BUDGET, RUN_RESTART_ALWAYS };

struct run_job {
    char **cmd;
    /* Sets the command's environment, in the child between fork and exec. */
    void (*child_env)(void *arg);
    void *child_env_arg;
    const struct report_place *place;
    double start_timeout;
    enum run_restart restart;
    double window_s;       /* a death within this of a start counts as recent */
    unsigned max_restarts; /* restarts in a row after recent deaths */
    double delay_s;
    struct run_events *events;
    const char *limit, *state; /* as given, for the start event */
};

/* Installs run's signal handlers: SIGINT and SIGTERM are passed to the
 * command and stop restarts (a SIGINT the terminal sent to the whole
 * foreground group reached the command already and is not sent twice),
 * SIGHUP, SIGUSR1 and SIGUSR2 are passed on, SIGQUIT is ignored (the
 * terminal sends it to the command too).  The command gets the dispositions
 * run started with. */
void run_signals_install(void);

/* Runs the job to its end, restarts included; returns run's exit status. */
int run_job_run(const struct run_job *job);

#endif
