/* membudget: the command a user types (DESIGN §9).  `run` puts a program under
 * the budget, `limits` prints the numbers of DESIGN §4 for this machine,
 * `stat` and `top` read the live-statistics pages of running processes,
 * `state`, `pages`, `release` and `dump` command a running process through
 * its page, and `report` hands a death dump to the report tool.  This file dispatches; each
 * subcommand lives in its own cmd_*.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "membudget.h"
#include "tools/cli.h"
#include "tools/proc.h"

static const char usage_text[] =
    "usage: membudget COMMAND [ARGS...]\n"
    "\n"
    "Put a memory budget on an unmodified program and watch it.\n"
    "\n"
    "commands:\n"
    "  run [OPTIONS] -- CMD [ARGS...]   run CMD with libmembudget.so preloaded and a budget\n"
    "  limits [OPTIONS]                 the thresholds for this machine and cgroup, with sources\n"
    "  stat PID [--prometheus]          live figures of one process running with the library\n"
    "  top [-d SECONDS] [-n COUNT] [--once]\n"
    "                                   live figures of every such process, refreshed\n"
    "  report DUMP [OPTIONS]            summarize a report written when a budget was exceeded\n"
    "  state PID active|inactive        set a running process's state: its thresholds change\n"
    "  pages PID N                      set a running process's page count\n"
    "  release PID LEVEL                send a running process pressure (its callbacks run)\n"
    "  dump PID                         make a running process write a report, and go on\n"
    "  group NAME [--limit SIZE]        a group's members, bands and total; set its limit\n"
    "                                   (top --group NAME, limits --group NAME likewise)\n"
    "\n"
    "  membudget COMMAND --help         the options of one command\n"
    "  membudget --version              the version\n"
    "\n"
    "The budget is configured by MEMBUDGET_* variables (see membudget(1)).\n";

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"run", cmd_run}, {"limits", cmd_limits}, {"stat", cmd_stat},
    {"top", cmd_top}, {"report", cmd_report},
    {"state", cmd_control}, {"pages", cmd_control}, {"release", cmd_control},
    {"dump", cmd_control},
    {"group", cmd_group},
};

static const struct command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static bool is_our_library(const char *entry, size_t len) {
    const char *base = entry;
    for (size_t i = 0; i < len; i++)
        if (entry[i] == '/') base = entry + i + 1;
    size_t base_len = len - (size_t)(base - entry);
    return base_len >= 12 && strncmp(base, "libmembudget", 12) == 0;
}

/* The command must not run under the budget it sets up for others (nor
 * publish live statistics of its own): if LD_PRELOAD names the library, start
 * again without it.  Other preloaded entries stay. */
static void leave_preload(char **argv) {
    const char *preload = getenv(proc_preload_variable());
    if (preload == NULL || strstr(preload, "libmembudget") == NULL) return;
    size_t cap = strlen(preload) + 1;
    char *kept = malloc(cap);
    if (kept == NULL) return;
    size_t len = 0;
    for (const char *p = preload; *p != '\0';) {
        size_t n = strcspn(p, ": ");
        if (n > 0 && !is_our_library(p, n)) {
            if (len > 0) kept[len++] = ':';
            memcpy(kept + len, p, n);
            len += n;
        }
        p += n;
        if (*p != '\0') p++;
    }
    kept[len] = '\0';
    if (len > 0)
        setenv(proc_preload_variable(), kept, 1);
    else
        unsetenv(proc_preload_variable());
    free(kept);
    char self[PATH_MAX];
    if (proc_self_exe(self, sizeof self)) execv(self, argv);
    /* Still here: carry on under the preload rather than not at all. */
}

int main(int argc, char **argv) {
    leave_preload(argv);
    if (argc < 2)
        cli_usage_error(NULL, "no command given (accepted: run, limits, stat, top, report, state, "
                              "pages, release, dump, help, --help, --version)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage_text, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "-V") == 0) {
        printf("membudget %s\n", MEMBUDGET_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "help") == 0) {
        if (argc < 3) {
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        }
        const struct command *c = find_command(argv[2]);
        if (c == NULL)
            cli_usage_error(NULL,
                            "unknown command '%s' (accepted: run, limits, stat, top, report, "
                            "state, pages, release, dump)",
                            argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->fn(2, help_argv);
    }
    const struct command *c = find_command(sub);
    if (c == NULL)
        cli_usage_error(NULL,
                        "unknown command '%s' (accepted: run, limits, stat, top, report, state, "
                        "pages, release, dump, help, --help, --version)",
                        sub);
    return c->fn(argc - 1, argv + 1);
}
