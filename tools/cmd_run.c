/* `membudget run`: sets the MEMBUDGET_* variables and LD_PRELOAD for a command,
 * runs it, and passes its exit status on as a shell would (128+N for signal
 * N).  When the command is stopped over its budget (SIGABRT with a report
 * written for its pid) the report tool prints the summary of that report.
 * A command that would run without the library (ld.so could not preload it,
 * or never reads LD_PRELOAD) is refused or stopped, with one line and its own
 * exit status (tools/run_start.c): never an unbudgeted run in silence.
 *
 * The environment is changed in the child only, between fork and exec: this
 * process never runs under the library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/config.h"
#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/run_start.h"

#define RUN_EXIT_INTERNAL 125 /* membudget itself failed, as env(1) and timeout(1) */
#define RUN_EXIT_NOT_EXECUTABLE 126
#define RUN_EXIT_NOT_FOUND 127
#define RUN_EXIT_UNBUDGETED 122        /* the library did not (or could not) start in CMD */
#define RUN_START_TIMEOUT_DEFAULT 30.0 /* seconds: generous, a loaded machine is slow */

static const char run_usage[] =
    "usage: membudget run [OPTIONS] [--] CMD [ARGS...]\n"
    "\n"
    "Runs CMD with libmembudget.so preloaded and returns its exit status (128+N\n"
    "when signal N ended it, as a shell does).  When CMD is stopped over its\n"
    "budget, prints the summary of the report it left.\n"
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
    "  --library PATH    preload this libmembudget.so instead of the one installed\n"
    "                    with the command\n"
    "  --start-timeout S how long to wait for the library to say it started in CMD,\n"
    "                    0.1 to 3600 seconds (30)\n"
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
    "nothing was written to it.\n"
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
    "exit status: CMD's own; 122 the library did not or could not start in CMD;\n"
    "126 CMD is not executable; 127 CMD was not found; 125 membudget itself failed;\n"
    "2 bad arguments.\n";

enum { OPT_LIBRARY = 256, OPT_START_TIMEOUT };

struct run_setting {
    const char *flag;
    enum mb_option_id id;
    const char *value; /* NULL: not given */
};

static struct run_setting settings[] = {
    {"--limit", MB_OPT_LIMIT, NULL},   {"--action", MB_OPT_ACTION, NULL},
    {"--report", MB_OPT_REPORT, NULL}, {"--sample", MB_OPT_SAMPLE, NULL},
    {"--state", MB_OPT_STATE, NULL},   {"--pages", MB_OPT_PAGES, NULL},
};

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
    const char *old = getenv("LD_PRELOAD");
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

/* ---- where reports go -------------------------------------------------------- */

struct report_place {
    char pattern[PATH_MAX + 64]; /* MEMBUDGET_REPORT for the child, absolute */
    char private_dir[PATH_MAX];  /* "" unless we made the directory */
};

static bool make_absolute(const char *path, char *out, size_t cap) {
    if (path[0] == '/') return (size_t)snprintf(out, cap, "%s", path) < cap;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return false;
    return (size_t)snprintf(out, cap, "%s/%s", cwd, path) < cap;
}

/* The pattern with %p replaced by pid and %% by %. */
static void expand_pattern(const char *pattern, pid_t pid, char *out, size_t cap) {
    size_t len = 0;
    for (const char *p = pattern; *p != '\0' && len + 24 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            len += (size_t)snprintf(out + len, cap - len, "%ld", (long)pid);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[len++] = '%';
            p++;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

static int setup_reports(const char *given, struct report_place *place) {
    place->private_dir[0] = '\0';
    const char *env = getenv("MEMBUDGET_REPORT");
    const char *pattern = given != NULL ? given : (env != NULL && env[0] != '\0' ? env : NULL);
    if (pattern == NULL) {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
        snprintf(place->private_dir, sizeof place->private_dir, "%s/membudget-run.XXXXXX", tmp);
        if (mkdtemp(place->private_dir) == NULL) {
            cli_error("run", "cannot create a directory for reports in %s: %s", tmp,
                      strerror(errno));
            return -1;
        }
        snprintf(place->pattern, sizeof place->pattern, "%s/membudget.%%p.json",
                 place->private_dir);
        return 0;
    }
    if (!make_absolute(pattern, place->pattern, sizeof place->pattern)) {
        cli_error("run", "report path '%s' is too long", pattern);
        return -1;
    }
    return 0;
}

/* Whether path is a regular file of ours, written since `since`, whose
 * dump names pid: the configured name may have been taken (the library then
 * writes beside it, policy/dump.c), or may hold an older process's dump. */
static bool dump_of_pid(const char *path, pid_t pid, time_t since) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    char head[512];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        st.st_mtime >= since)
        n = read(fd, head, sizeof head - 1);
    close(fd);
    if (n <= 0) return false;
    head[n] = '\0';
    const char *p = strstr(head, "\"pid\": ");
    return p != NULL && strtoll(p + 7, NULL, 10) == (long long)pid;
}

/* The report written for pid, if any: at the configured name, or at one of
 * the names the library tries when that one is taken (".XXXXXXXX" of
 * [0-9a-z] before ".json"). */
static bool report_of(const struct report_place *place, pid_t pid, time_t since, char *out,
                      size_t cap) {
    expand_pattern(place->pattern, pid, out, cap);
    if (dump_of_pid(out, pid, since)) return true;
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) return false;
    *slash = '\0';
    const char *base = slash + 1;
    size_t blen = strlen(base), stem = blen;
    if (blen >= 5 && strcmp(base + blen - 5, ".json") == 0) stem = blen - 5;
    DIR *d = opendir(dir[0] != '\0' ? dir : "/");
    if (d == NULL) return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n != blen + 9 || strncmp(e->d_name, base, stem) != 0 || e->d_name[stem] != '.' ||
            strcmp(e->d_name + stem + 9, base + stem) != 0)
            continue;
        bool name_ok = true;
        for (size_t i = stem + 1; i < stem + 9; i++)
            name_ok &= (e->d_name[i] >= '0' && e->d_name[i] <= '9') ||
                       (e->d_name[i] >= 'a' && e->d_name[i] <= 'z');
        if (!name_ok || (size_t)snprintf(out, cap, "%s/%s", dir, e->d_name) >= cap) continue;
        found = dump_of_pid(out, pid, since);
    }
    closedir(d);
    return found;
}

/* Removes the private directory when nothing was written to it. */
static void finish_reports(const struct report_place *place) {
    if (place->private_dir[0] == '\0') return;
    rmdir(place->private_dir); /* fails, as wanted, when a report is inside */
}

/* ---- the summary after a budget death ------------------------------------------ */

/* The value of the first "key": in text after `from`: a number or a string. */
static const char *json_after(const char *text, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *p = strstr(text, quoted);
    if (p == NULL) return NULL;
    p += strlen(quoted);
    while (*p == ' ') p++;
    return p;
}

static unsigned long long json_u64(const char *text, const char *key) {
    const char *p = json_after(text, key);
    return p != NULL ? strtoull(p, NULL, 10) : 0;
}

static void json_string(const char *text, const char *key, char *out, size_t cap) {
    const char *p = json_after(text, key);
    size_t len = 0;
    if (p != NULL && *p == '"') {
        for (p++; *p != '\0' && *p != '"' && len + 1 < cap; p++) {
            if (*p == '\\' && p[1] != '\0') p++; /* enough for the dump's escapes */
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

/* Without the report tool: the dump's path and the death line rebuilt from it. */
static void print_death_line(const char *path, pid_t pid, const char *looked) {
    /* The fields wanted are in the first few kilobytes of the dump. */
    char *text = calloc(1, 1 << 16);
    FILE *f = fopen(path, "re");
    if (f != NULL && text != NULL && fread(text, 1, (1 << 16) - 1, f) == 0) {
        free(text);
        text = NULL;
    }
    if (f != NULL) fclose(f);
    if (text != NULL && json_after(text, "kill_bytes") != NULL) {
        char comm[64], source[512], footprint[32], limit[32];
        json_string(text, "comm", comm, sizeof comm);
        json_string(text, "kill_source", source, sizeof source);
        const char *fp = strstr(text, "\"footprint\":");
        mb_bytes_text(footprint, sizeof footprint, fp != NULL ? json_u64(fp, "bytes") : 0);
        mb_bytes_text(limit, sizeof limit, json_u64(text, "kill_bytes"));
        fprintf(stderr,
                "membudget: pid %ld (%s) exceeded its memory budget: footprint %s >= limit %s "
                "(%s); report: %s\n",
                (long)pid, comm, footprint, limit, source, path);
    } else {
        fprintf(stderr, "membudget: pid %ld exceeded its memory budget; report: %s\n", (long)pid,
                path);
    }
    free(text);
    fprintf(stderr,
            "membudget run: no summary: the report tool membudget-report is not installed "
            "(looked for %s)\n",
            looked);
}

static void print_summary(const char *path, pid_t pid) {
    char tool[PATH_MAX], looked[4 * PATH_MAX];
    fflush(stdout);
    if (!cli_find_report_tool(tool, sizeof tool, looked, sizeof looked)) {
        print_death_line(path, pid, looked);
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        dup2(2, 1); /* the summary goes where the death line went */
        execl(tool, tool, path, (char *)NULL);
        _exit(RUN_EXIT_NOT_FOUND);
    }
    int status;
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "membudget run: the report tool could not summarize %s\n", path);
}

/* ---- running the command --------------------------------------------------------- */

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig) {
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
static const int ignored[] = {SIGINT, SIGQUIT}; /* the terminal sends them to CMD too */

static _Noreturn void exec_child(char **cmd, const char *lib, const char *report_pattern,
                                 const sigset_t *old_mask, int report_fd,
                                 const struct run_handshake *hs) {
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].value != NULL && settings[i].id != MB_OPT_REPORT)
            setenv(mb_option_desc(settings[i].id)->name, settings[i].value, 1);
    setenv("MEMBUDGET_REPORT", report_pattern, 1);
    char *preload = preload_value(lib);
    if (preload != NULL) setenv("LD_PRELOAD", preload, 1);
    run_handshake_child(hs);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execvp(cmd[0], cmd);
    int err = errno;
    ssize_t w = write(report_fd, &err, sizeof err);
    (void)w;
    _exit(RUN_EXIT_NOT_FOUND);
}

static int exec_failure(const char *cmd, int err) {
    if (err == ENOENT && strchr(cmd, '/') == NULL) {
        cli_error("run", "%s: command not found", cmd);
        return RUN_EXIT_NOT_FOUND;
    }
    cli_error("run", "%s: %s", cmd, strerror(err));
    return err == ENOENT || err == ENOTDIR ? RUN_EXIT_NOT_FOUND : RUN_EXIT_NOT_EXECUTABLE;
}

/* Forks and execs the command with the handshake open, watches that the
 * library starts in it, waits for it; returns run's exit status. */
static int run_command(char **cmd, const struct run_preload *pre, const struct report_place *place,
                       double start_timeout) {
    struct run_handshake hs;
    if (!run_handshake_open(&hs)) return RUN_EXIT_INTERNAL;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        cli_error("run", "pipe: %s", strerror(errno));
        run_handshake_close(&hs);
        return RUN_EXIT_INTERNAL;
    }
    /* Forwarded signals wait, blocked, until the child's pid is known. */
    sigset_t forward_set, old_mask;
    sigemptyset(&forward_set);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&forward_set, forwarded[i]);
    sigprocmask(SIG_BLOCK, &forward_set, &old_mask);
    fflush(NULL);
    time_t started = time(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("run", "fork: %s", strerror(errno));
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        run_handshake_close(&hs);
        return RUN_EXIT_INTERNAL;
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        exec_child(cmd, pre->path, place->pattern, &old_mask, pipe_fds[1], &hs);
    }
    close(pipe_fds[1]);
    run_handshake_parent(&hs);
    child_pid = pid;
    struct sigaction forward = {.sa_handler = forward_signal}, ignore = {.sa_handler = SIG_IGN};
    sigemptyset(&forward.sa_mask);
    sigemptyset(&ignore.sa_mask);
    forward.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &forward, NULL);
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        sigaction(ignored[i], &ignore, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    int exec_err = 0;
    ssize_t got;
    while ((got = read(pipe_fds[0], &exec_err, sizeof exec_err)) < 0 && errno == EINTR) {
    }
    close(pipe_fds[0]);
    enum run_start_result start = RUN_START_LIVE;
    char why[1024];
    if (got != (ssize_t)sizeof exec_err) {
        start = run_handshake_wait(&hs, pid, start_timeout, why, sizeof why);
        /* Whatever kept the library out, the command is not left running
         * without a budget. */
        if (start != RUN_START_LIVE) kill(pid, SIGKILL);
    }
    run_handshake_close(&hs);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_error("run", "waitpid: %s", strerror(errno));
            return RUN_EXIT_INTERNAL;
        }
    }
    child_pid = 0;
    if (got == (ssize_t)sizeof exec_err) return exec_failure(cmd[0], exec_err);
    /* A process that died leaves its live-statistics page behind. */
    live_clean_if_stale(pid);
    if (start != RUN_START_LIVE) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && start != RUN_START_EXITED)
            cli_error("run", "%s: %s%s; killed it, so that it does not run without a budget",
                      cmd[0], why,
                      start == RUN_START_CLOSED ? " (it closed the handshake descriptor)" : "");
        else if (WIFSIGNALED(status))
            cli_error("run", "%s: %s, so it ran without a budget (until signal %d ended it)",
                      cmd[0], why, WTERMSIG(status));
        else
            cli_error("run", "%s: %s, so it ran without a budget (it exited with status %d)",
                      cmd[0], why, WEXITSTATUS(status));
        return RUN_EXIT_UNBUDGETED;
    }

    int code;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        char report[PATH_MAX + 64];
        if (sig == SIGABRT && report_of(place, pid, started, report, sizeof report))
            print_summary(report, pid);
        code = 128 + sig;
    } else {
        code = WEXITSTATUS(status);
    }
    return code;
}

int cmd_run(int argc, char **argv) {
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'l'},
        {"action", required_argument, NULL, 'a'},
        {"report", required_argument, NULL, 'r'},
        {"sample", required_argument, NULL, 's'},
        {"state", required_argument, NULL, 't'},
        {"pages", required_argument, NULL, 'p'},
        {"library", required_argument, NULL, OPT_LIBRARY},
        {"start-timeout", required_argument, NULL, OPT_START_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] =
        "--limit L, --action abort|fail|warn, --report PATH, --sample N, "
        "--state active|inactive, --pages N, --library PATH, --start-timeout SECONDS, --help, "
        "then [--] CMD [ARGS...]";
    const char *library = NULL;
    double start_timeout = RUN_START_TIMEOUT_DEFAULT;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("run", argc, argv, "+:h", longopts, accepted)) != -1) {
        switch (c) {
        case 'h':
            fputs(run_usage, stdout);
            return CLI_EXIT_OK;
        case 'l':
            settings[0].value = optarg;
            break;
        case 'a':
            settings[1].value = optarg;
            break;
        case 'r':
            settings[2].value = optarg;
            break;
        case 's':
            settings[3].value = optarg;
            break;
        case 't':
            settings[4].value = optarg;
            break;
        case 'p':
            settings[5].value = optarg;
            break;
        case OPT_LIBRARY:
            library = optarg;
            break;
        case OPT_START_TIMEOUT:
            if (!cli_parse_seconds(optarg, 0.1, 3600, &start_timeout))
                cli_usage_error("run",
                                "--start-timeout '%s' is not valid (expected seconds, 0.1 "
                                "to 3600)",
                                optarg);
            break;
        }
    }
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].value != NULL) check_setting(&settings[i]);
    if (optind >= argc) cli_usage_error("run", "no command given (accepted: %s)", accepted);
    char **cmd = argv + optind;

    char lib[PATH_MAX], looked[4 * PATH_MAX];
    if (library != NULL) {
        if (access(library, R_OK) != 0 || realpath(library, lib) == NULL)
            cli_usage_error("run", "--library '%s': %s (expected the path of libmembudget.so)",
                            library, strerror(errno));
    } else if (!cli_find_library(lib, sizeof lib, looked, sizeof looked)) {
        cli_error("run", "libmembudget.so not found (looked for %s)", looked);
        return RUN_EXIT_INTERNAL;
    }
    char why[1024];
    if (!run_can_preload(cmd[0], lib, why, sizeof why)) {
        cli_error("run", "%s: the library cannot start in it: %s; not run", cmd[0], why);
        return RUN_EXIT_UNBUDGETED;
    }
    struct run_preload pre;
    if (!run_preload_prepare(lib, &pre)) return RUN_EXIT_INTERNAL;
    struct report_place place;
    if (setup_reports(settings[2].value, &place) != 0) {
        run_preload_finish(&pre);
        return RUN_EXIT_INTERNAL;
    }
    int code = run_command(cmd, &pre, &place, start_timeout);
    finish_reports(&place);
    run_preload_finish(&pre);
    return code;
}
