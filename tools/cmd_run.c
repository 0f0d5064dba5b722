/* `membudget run`: sets the MEMBUDGET_* variables and LD_PRELOAD for a command,
 * runs it, and passes its exit status on as a shell would (128+N for signal
 * N), or RUN_EXIT_BUDGET when its budget stopped it.  This file holds the
 * options and the command's environment; tools/run_loop.c is the parent that
 * starts, watches and restarts the command, tools/run_death.c tells why it
 * ended, tools/run_events.c writes the events file, and tools/run_start.c
 * makes sure the library started in it: a command that would run without the
 * library is refused or stopped, with one line and its own exit status.
 *
 * The environment is changed in the child only, between fork and exec: this
 * process never runs under the library. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/config.h"
#include "policy/group.h"
#include "policy/statspage.h"
#include "tools/cli.h"
#include "tools/proc.h"
#include "tools/run_loop.h"
#include "tools/run_start.h"

#define RUN_START_TIMEOUT_DEFAULT 30.0 /* seconds: generous, a loaded machine is slow */

static const char run_usage[] =
    "usage: membudget run [OPTIONS] [--] CMD [ARGS...]\n"
    "\n"
    "Runs CMD with libmembudget.so preloaded and returns its exit status (128+N\n"
    "when signal N ended it, as a shell does; 121 when its budget stopped it).\n"
    "When CMD is stopped over its budget, prints the summary of the report it\n"
    "left; whenever it does not exit 0, one line says why it ended: \"exceeded\n"
    "its active limit (X of Y)\", \"exceeded its inactive limit (X of Y)\",\n"
    "\"was chosen by its group's limit (group NAME: X of Y)\",\n"
    "\"crashed with signal N (NAME)\", \"was killed by signal N (NAME)\" or\n"
    "\"exited N\".\n"
    "\n"
    "options (each sets the variable in brackets for CMD):\n"
    "  --limit L         the kill threshold: a size such as 512M, 1.5G or 2147483648,\n"
    "                    or a percentage of RAM such as 80%      [MEMBUDGET_LIMIT]\n"
    "  --action A        abort, fail or warn                      [MEMBUDGET_ACTION]\n"
    "  --report PATH     where a report goes; %p stands for the pid [MEMBUDGET_REPORT]\n"
    "  --sample N        sample one allocation in every N bytes (512K); 0: off\n"
    "                                                             [MEMBUDGET_SAMPLE]\n"
    "  --state S         active or inactive (the jetsam model)    [MEMBUDGET_STATE]\n"
    "  --pages N         the jetsam model's page count, 1 or more  [MEMBUDGET_PAGES]\n"
    "  --group NAME      join the group NAME: one budget for separately started\n"
    "                    processes (membudget group NAME)          [MEMBUDGET_GROUP]\n"
    "  --group-limit L   the group's limit when this run makes the group; without\n"
    "                    --group, CMD's whole tree is one private group named\n"
    "                    run-PID (this run's pid), removed at the end\n"
    "                                                       [MEMBUDGET_GROUP_LIMIT]\n"
    "  --priority N      CMD's band in the group, 0 (goes first) to 9\n"
    "                                                          [MEMBUDGET_PRIORITY]\n"
    "  --library PATH    preload this libmembudget.so instead of the one installed\n"
    "                    with the command\n"
    "  --start-timeout S how long to wait for the library to say it started in CMD,\n"
    "                    0.1 to 3600 seconds (30)\n"
    "other options:\n"
    "  --events FILE     append JSON lines to FILE ('-': standard error): start,\n"
    "                    policy and state changes, death, restart, stop-restarting\n"
    "  --restart R       on-budget (start CMD again when its budget stopped it),\n"
    "                    always (when it did not exit 0) or never (the default)\n"
    "  --restart-window S  a run that lasts S seconds clears the count of\n"
    "                    deaths, 0.01 to 86400 (30)\n"
    "  --restart-max N   restarts while no run lasts the window, 1 to 1000000 (1):\n"
    "                    the next death stops the restarts\n"
    "  --restart-delay S seconds before a restart, 0 to 3600 (0.1)\n"
    "  -h, --help        this text\n"
    "\n"
    "Other MEMBUDGET_* variables already in the environment reach CMD unchanged;\n"
    "LD_PRELOAD keeps its other entries after the library.\n"
    "\n"
    "The budget is per process.  Every process CMD starts inherits the\n"
    "environment: a child it forks keeps running under the library with a budget\n"
    "of its own (its footprint starts over from its own counter), and a program\n"
    "it execs starts under the library afresh.  A shell script therefore gives\n"
    "each command in it a budget of the same size; the tree as a whole has none.\n"
    "\n"
    "Without --report and MEMBUDGET_REPORT, reports go to a new directory\n"
    "$TMPDIR/membudget-run.XXXXXX (/tmp when TMPDIR is unset), removed again when\n"
    "nothing was written to it.  Every run's report is kept: with %p each has\n"
    "its own name, and a name already taken gets eight random characters.\n"
    "\n"
    "With --restart, as WebKit reloads a page whose web process died once, but\n"
    "not again when it dies again at once: a run that lasts the window clears\n"
    "the count; more than --restart-max deaths in a row, each within the window\n"
    "of its start, stop the restarts with a line saying so.  SIGINT and SIGTERM\n"
    "sent to run reach CMD and stop the restarts.\n"
    "\n"
    "CMD never runs without the library in silence.  A static program, a setuid,\n"
    "setgid or file-capability one (the loader ignores LD_PRELOAD for them) or one\n"
    "of another architecture is not run.  Started, CMD must answer the handshake of\n"
    "the library within the start timeout; if it ends first, or the library is not\n"
    "its allocator, one line says so, and a CMD still running is killed.  A library\n"
    "path that LD_PRELOAD cannot carry (a space, a colon, a '$') is preloaded\n"
    "through a link in a new directory $TMPDIR/membudget-lib.XXXXXX, removed at the\n"
    "end.\n"
    "\n"
    "exit status: CMD's own (that of its last run); 121 its budget stopped it;\n"
    "122 the library did not or could not start in CMD; 126 CMD is not\n"
    "executable; 127 CMD was not found; 125 membudget itself failed; 2 bad\n"
    "arguments.\n";

struct run_setting {
    const char *flag;
    enum mb_option_id id;
    const char *value; /* NULL: not given */
};

static struct run_setting settings[] = {
    {"--limit", MB_OPT_LIMIT, NULL},   {"--action", MB_OPT_ACTION, NULL},
    {"--report", MB_OPT_REPORT, NULL}, {"--sample", MB_OPT_SAMPLE, NULL},
    {"--state", MB_OPT_STATE, NULL},   {"--pages", MB_OPT_PAGES, NULL},
    {"--group", MB_OPT_GROUP, NULL},   {"--group-limit", MB_OPT_GROUP_LIMIT, NULL},
    {"--priority", MB_OPT_PRIORITY, NULL},
};
enum { SET_GROUP = 6, SET_GROUP_LIMIT = 7, SET_PRIORITY = 8 };

static void discard_line(void *ctx, const char *line, size_t len) {
    (void)ctx, (void)line, (void)len;
}

/* The option table decides what a value may be, so a value accepted here is
 * one the library accepts. */
static void check_setting(const struct run_setting *s) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    const struct mb_sink quiet = {discard_line, NULL};
    if (!mb_config_set(&cfg, s->id, s->value, &quiet))
        cli_usage_error("run", "%s '%s' is not valid (expected %s)", s->flag, s->value,
                        mb_option_desc(s->id)->expected);
}

/* ---- LD_PRELOAD ------------------------------------------------------------- */

static bool names_our_library(const char *entry, size_t len) {
    const char *base = entry;
    for (size_t i = 0; i < len; i++)
        if (entry[i] == '/') base = entry + i + 1;
    size_t base_len = len - (size_t)(base - entry);
    return base_len >= 12 && strncmp(base, "libmembudget", 12) == 0;
}

/* "LIB:rest", where rest is the old LD_PRELOAD without any other copy of the
 * library (two copies would both try to be the allocator). */
static char *preload_value(const char *lib) {
    const char *old = getenv(proc_preload_variable());
    size_t cap = strlen(lib) + (old != NULL ? strlen(old) : 0) + 2;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    size_t len = (size_t)snprintf(out, cap, "%s", lib);
    for (const char *p = old; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ": ");
        if (n > 0 && !names_our_library(p, n)) {
            out[len++] = ':';
            memcpy(out + len, p, n);
            len += n;
            out[len] = '\0';
        }
        p += n;
        if (*p != '\0') p++;
    }
    return out;
}

/* ---- the command's environment ---------------------------------------------------- */

struct child_setup {
    const char *library;        /* what LD_PRELOAD names */
    const char *report_pattern; /* MEMBUDGET_REPORT */
};

/* In the child, between fork and exec. */
static void child_env(void *arg) {
    const struct child_setup *c = arg;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].value != NULL && settings[i].id != MB_OPT_REPORT)
            setenv(mb_option_desc(settings[i].id)->name, settings[i].value, 1);
    setenv("MEMBUDGET_REPORT", c->report_pattern, 1);
    char *preload = preload_value(c->library);
    if (preload != NULL) setenv(proc_preload_variable(), preload, 1);
}

/* The limit and state CMD starts with, as given, for the events file. */
static const char *given_limit(void) {
    if (settings[0].value != NULL) return settings[0].value;
    const char *env = getenv("MEMBUDGET_LIMIT");
    return env != NULL && env[0] != '\0' ? env : NULL;
}

static const char *given_state(void) {
    const char *s = settings[4].value != NULL ? settings[4].value : getenv("MEMBUDGET_STATE");
    return s != NULL && strcmp(s, "inactive") == 0 ? "inactive" : "active";
}

/* ---- options ------------------------------------------------------------------------ */

enum {
    OPT_LIBRARY = 256,
    OPT_START_TIMEOUT,
    OPT_EVENTS,
    OPT_RESTART,
    OPT_RESTART_WINDOW,
    OPT_RESTART_MAX,
    OPT_RESTART_DELAY,
    OPT_GROUP,
    OPT_GROUP_LIMIT,
    OPT_PRIORITY,
};

static const char accepted[] =
    "--limit L, --action abort|fail|warn, --report PATH, --sample N, "
    "--state active|inactive, --pages N, --group NAME, --group-limit L, --priority N, "
    "--library PATH, --start-timeout SECONDS, "
    "--events FILE, --restart on-budget|always|never, --restart-window SECONDS, "
    "--restart-max N, --restart-delay SECONDS, --help, then [--] CMD [ARGS...]";

struct run_options {
    const char *library, *events;
    bool private_group; /* --group-limit alone: run-PID, made fresh, removed at the end */
    struct run_job job;
};

static void parse_restart_option(int c, const char *arg, struct run_job *job) {
    uint64_t n;
    switch (c) {
    case OPT_RESTART:
        if (strcmp(arg, "on-budget") == 0)
            job->restart = RUN_RESTART_ON_BUDGET;
        else if (strcmp(arg, "always") == 0)
            job->restart = RUN_RESTART_ALWAYS;
        else if (strcmp(arg, "never") == 0)
            job->restart = RUN_RESTART_NEVER;
        else
            cli_usage_error("run", "--restart '%s' is not valid (expected on-budget, always or "
                                   "never)", arg);
        break;
    case OPT_RESTART_WINDOW:
        if (!cli_parse_seconds(arg, 0.01, 86400, &job->window_s))
            cli_usage_error("run", "--restart-window '%s' is not valid (expected seconds, 0.01 "
                                   "to 86400)", arg);
        break;
    case OPT_RESTART_MAX:
        if (!cli_parse_uint(arg, 1, 1000000, &n))
            cli_usage_error("run", "--restart-max '%s' is not valid (expected a whole number, 1 "
                                   "to 1000000)", arg);
        job->max_restarts = (unsigned)n;
        break;
    case OPT_RESTART_DELAY:
        if (!cli_parse_seconds(arg, 0, 3600, &job->delay_s))
            cli_usage_error("run", "--restart-delay '%s' is not valid (expected seconds, 0 to "
                                   "3600)", arg);
        break;
    }
}

/* Parses the options; returns the index of CMD in argv. */
static int parse_options(int argc, char **argv, struct run_options *o) {
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'l'},
        {"action", required_argument, NULL, 'a'},
        {"report", required_argument, NULL, 'r'},
        {"sample", required_argument, NULL, 's'},
        {"state", required_argument, NULL, 't'},
        {"pages", required_argument, NULL, 'p'},
        {"library", required_argument, NULL, OPT_LIBRARY},
        {"start-timeout", required_argument, NULL, OPT_START_TIMEOUT},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"restart", required_argument, NULL, OPT_RESTART},
        {"restart-window", required_argument, NULL, OPT_RESTART_WINDOW},
        {"restart-max", required_argument, NULL, OPT_RESTART_MAX},
        {"restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
        {"group", required_argument, NULL, OPT_GROUP},
        {"group-limit", required_argument, NULL, OPT_GROUP_LIMIT},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char setting_opts[] = "latsp"; /* in the order of settings[] but report */
    static const int setting_index[] = {0, 1, 4, 3, 5};
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("run", argc, argv, "+:h", longopts, accepted)) != -1) {
        const char *at = c < 256 ? strchr(setting_opts, c) : NULL;
        if (c == 'h') {
            fputs(run_usage, stdout);
            exit(CLI_EXIT_OK);
        } else if (c == 'r') {
            settings[2].value = optarg;
        } else if (at != NULL) {
            settings[setting_index[at - setting_opts]].value = optarg;
        } else if (c >= OPT_GROUP && c <= OPT_PRIORITY) {
            settings[SET_GROUP + (c - OPT_GROUP)].value = optarg;
        } else if (c == OPT_LIBRARY) {
            o->library = optarg;
        } else if (c == OPT_EVENTS) {
            o->events = optarg;
        } else if (c == OPT_START_TIMEOUT) {
            if (!cli_parse_seconds(optarg, 0.1, 3600, &o->job.start_timeout))
                cli_usage_error("run",
                                "--start-timeout '%s' is not valid (expected seconds, 0.1 "
                                "to 3600)",
                                optarg);
        } else {
            parse_restart_option(c, optarg, &o->job);
        }
    }
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].value != NULL) check_setting(&settings[i]);
    if (settings[SET_GROUP_LIMIT].value != NULL && settings[SET_GROUP].value == NULL) {
        /* The tree's own group, named after this run. */
        static char name[32];
        snprintf(name, sizeof name, "run-%ld", (long)getpid());
        settings[SET_GROUP].value = name;
        o->private_group = true;
    }
    if (optind >= argc) cli_usage_error("run", "no command given (accepted: %s)", accepted);
    return optind;
}

int cmd_run(int argc, char **argv) {
    struct run_options o = {
        .job = {.start_timeout = RUN_START_TIMEOUT_DEFAULT,
                .restart = RUN_RESTART_NEVER,
                .window_s = RUN_RESTART_WINDOW_DEFAULT,
                .max_restarts = RUN_RESTART_MAX_DEFAULT,
                .delay_s = RUN_RESTART_DELAY_DEFAULT},
    };
    char **cmd = argv + parse_options(argc, argv, &o);

    char lib[PATH_MAX], looked[4 * PATH_MAX];
    if (o.library != NULL) {
        if (access(o.library, R_OK) != 0 || realpath(o.library, lib) == NULL)
            cli_usage_error("run", "--library '%s': %s (expected the path of libmembudget.so)",
                            o.library, strerror(errno));
    } else if (!cli_find_library(lib, sizeof lib, looked, sizeof looked)) {
        cli_error("run", "libmembudget.so not found (looked for %s)", looked);
        return RUN_EXIT_INTERNAL;
    }
    char why[1024];
    if (!run_can_preload(cmd[0], lib, why, sizeof why)) {
        cli_error("run", "%s: the library cannot start in it: %s; not run", cmd[0], why);
        return RUN_EXIT_UNBUDGETED;
    }
    struct run_events events;
    if (!run_events_open(&events, o.events)) return RUN_EXIT_INTERNAL;
    struct run_preload pre;
    struct report_place place;
    if (!run_preload_prepare(lib, &pre)) {
        run_events_close(&events);
        return RUN_EXIT_INTERNAL;
    }
    if (run_reports_setup(settings[2].value, &place) != 0) {
        run_preload_finish(&pre);
        run_events_close(&events);
        return RUN_EXIT_INTERNAL;
    }
    struct child_setup setup = {pre.path, place.pattern};
    o.job.cmd = cmd;
    o.job.child_env = child_env;
    o.job.child_env_arg = &setup;
    o.job.place = &place;
    o.job.events = &events;
    o.job.limit = given_limit();
    o.job.state = given_state();
    char group_file[512] = "";
    if (o.private_group) {
        /* A file of that name is a dead earlier run's (pids are reused): ours
         * to remove from our own directory, so that this run's limit holds. */
        char dir[256];
        mb_statspage_path(dir, sizeof dir, MB_STATSPAGE_ROOT, geteuid(), -1);
        snprintf(group_file, sizeof group_file, "%s/" MB_GROUP_FILE_PREFIX "%s", dir,
                 settings[SET_GROUP].value);
        unlink(group_file);
    }
    run_signals_install();
    int code = run_job_run(&o.job);
    if (group_file[0] != '\0') unlink(group_file);
    run_reports_finish(&place);
    run_preload_finish(&pre);
    run_events_close(&events);
    return code;
}
