/* How `membudget run` learns why its command ended (tools/run_death.c): where
 * the command's reports go, the report written for a pid (read as hostile
 * input with jansson: a regular file of ours, opened without following a
 * link or blocking, at most RUN_REPORT_MAX bytes, every field checked before
 * use), and the one line that says why the command ended. */
#ifndef MEMBUDGET_TOOLS_RUN_DEATH_H
#define MEMBUDGET_TOOLS_RUN_DEATH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* `run`'s status for a command its budget stopped (a report with reason
 * "kill" from its pid): not one of run's own (122, 125, 126, 127, 2), nor a
 * shell's (124 timeout, 128 + N signals). */
#define RUN_EXIT_BUDGET 121

/* The largest report read, as `membudget report` reads (docs/dump.md). */
#define RUN_REPORT_MAX (32u << 20)

/* ---- where reports go ---- */

struct report_place {
    char pattern[PATH_MAX + 64]; /* MEMBUDGET_REPORT for the child, absolute */
    char private_dir[PATH_MAX];  /* "" unless we made the directory */
};

/* The pattern from --report (given), else MEMBUDGET_REPORT, else a new
 * private directory $TMPDIR/membudget-run.XXXXXX.  -1 after an error line. */
int run_reports_setup(const char *given, struct report_place *place);
/* Removes the private directory when nothing was written to it. */
void run_reports_finish(const struct report_place *place);
/* Whether the pattern holds %p (each process's report gets its own name). */
bool run_reports_per_pid(const struct report_place *place);

/* ---- why the command ended ---- */

enum run_end_kind {
    RUN_END_EXIT,            /* exited with `code` */
    RUN_END_SIGNAL,          /* ended by signal `sig` */
    RUN_END_ACTIVE_LIMIT,    /* its budget stopped it, in the active state */
    RUN_END_INACTIVE_LIMIT,  /* its budget stopped it, in the inactive state */
};

struct run_end {
    enum run_end_kind kind;
    int code;                /* exit code (RUN_END_EXIT) */
    int sig;                 /* the signal that ended it, 0 if none */
    bool core;               /* the signal's default action dumps core: a crash */
    int status;              /* `run`'s exit status for this ending */
    /* A budget death: the report's figures and path, its comm (raw: escape
     * it to print it). */
    uint64_t footprint_bytes, limit_bytes;
    char comm[64];
    char source[256]; /* limit.kill_source */
    /* Its group's limit chose it (the report's group section names it as the
     * victim): the group's name; footprint and limit are then the group's. */
    char group[72];
    char report[PATH_MAX + 64];
};

/* Classifies the wait status of `pid`, started at `started_ns`
 * (CLOCK_REALTIME): a budget death when it ended by a signal or a non-zero
 * exit and a report of that pid with reason "kill", written since it
 * started, is found where `place` sends reports. */
void run_end_classify(int wait_status, pid_t pid, uint64_t started_ns,
                      const struct report_place *place, struct run_end *out);

/* The words of the ending: "exceeded its active limit (65 MiB of 64 MiB)",
 * "crashed with signal 11 (SIGSEGV)", "was killed by signal 15 (SIGTERM)",
 * "exited 3". */
void run_end_words(const struct run_end *end, char *out, size_t cap);
/* "SIGSEGV"; "signal N" when the signal has no name. */
const char *run_signal_name(int sig, char *buf, size_t cap);
/* The reason word of the events file: "active-limit", "inactive-limit",
 * "signal", "exit". */
const char *run_end_reason(const struct run_end *end);

/* After a budget death: the report tool's summary of the report (or, without
 * the tool, the death line rebuilt from the report), on stderr. */
void run_print_summary(const struct run_end *end, pid_t pid);

/* One line on stderr: "membudget run: CMD (pid N) WORDS[; report: PATH]",
 * CMD and PATH escaped for the terminal. */
void run_print_end(const char *cmd, pid_t pid, const struct run_end *end);

#endif
