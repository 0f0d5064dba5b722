/* `membudget stat` and `membudget top`: the live figures of processes running
 * with the library, from their live-statistics pages (tools/livestats.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"

static const char stat_usage[] =
    "usage: membudget stat PID [--prometheus]\n"
    "\n"
    "Prints the live figures of process PID, which runs with libmembudget.so:\n"
    "footprint (counter + baseline), % of the limit, peak, limit and where it came\n"
    "from, policy thresholds, policy, and how fresh the figures are.  They come\n"
    "from the page the process rewrites at each monitor tick (MEMBUDGET_INTERVAL,\n"
    "100ms) in /dev/shm/membudget.PID, readable by its owner only; a process\n"
    "publishes it from its first tick after half a second of life.\n"
    "\n"
    "  --prometheus   Prometheus text exposition format instead\n"
    "  -h, --help     this text\n"
    "\n"
    "exit status: 0; 1 when PID has no readable live statistics; 2 bad arguments.\n";

static const char top_usage[] =
    "usage: membudget top [-d SECONDS] [-n COUNT] [--once]\n"
    "\n"
    "Shows every process running with libmembudget.so that this user can read,\n"
    "largest footprint first, refreshed like top(1).  Press q to quit.\n"
    "\n"
    "  -d, --delay SECONDS   time between refreshes, 0.1 to 3600 (default 1)\n"
    "  -n, --iterations N    stop after N refreshes\n"
    "  --once                print one table, without clearing the screen, and exit\n"
    "  -h, --help            this text\n"
    "\n"
    "Columns: FOOTPRINT = COUNTER (what the allocator and the charged anonymous\n"
    "mappings hold) + BASELINE (the rest of the process's anonymous memory), LIMIT\n"
    "(the kill threshold), %LIM, PEAK (the highest footprint seen at a tick),\n"
    "POLICY, AGE (time since the figures were updated).  Pages of processes\n"
    "that are gone are removed as they are found.\n";

enum { OPT_PROMETHEUS = 256, OPT_ONCE };

static double now_unix(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double age_seconds(const struct mb_statspage *p) {
    double age = now_unix() - (double)p->updated_unix_ns / 1e9;
    return age < 0 ? 0 : age;
}

static double percent_of_limit(const struct mb_statspage *p) {
    return p->limit_bytes != 0 ? 100.0 * (double)p->footprint_bytes / (double)p->limit_bytes : 0;
}

static pid_t parse_pid(const char *sub, const char *s) {
    uint64_t v;
    if (!cli_parse_uint(s, 1, INT_MAX, &v))
        cli_usage_error(sub, "PID '%s' is not valid (expected a process id: a whole number from 1)",
                        s);
    return (pid_t)v;
}

/* ---- stat ------------------------------------------------------------------ */

static void read_cmdline(pid_t pid, char *out, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL) return;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && out[n - 1] == '\0') n--;
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0' || out[i] == '\n') out[i] = ' ';
    out[n] = '\0';
}

static void print_stat(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    char a[32], b[32], c[32], cmdline[256];
    read_cmdline(lp->pid, cmdline, sizeof cmdline);
    printf("%-11s %ld (%s)%s%s\n", "pid", (long)lp->pid, p->comm, cmdline[0] ? ": " : "", cmdline);
    printf("%-11s %s (%" PRIu64 " bytes), %.1f%% of the limit\n", "footprint",
           cli_bytes(a, sizeof a, p->footprint_bytes), p->footprint_bytes, percent_of_limit(p));
    printf("%-11s %s (%" PRIu64 " bytes): the allocator and charged anonymous mappings\n",
           "counter", cli_bytes(a, sizeof a, p->counter_bytes), p->counter_bytes);
    printf("%-11s %s (%" PRIu64 " bytes): the rest of the OS view, %s %s\n", "baseline",
           cli_bytes(a, sizeof a, p->baseline_bytes), p->baseline_bytes, p->footprint_source,
           cli_bytes(b, sizeof b, p->os_bytes));
    printf("%-11s footprint %s at a tick, counter %s\n", "peak",
           cli_bytes(a, sizeof a, p->footprint_peak_bytes),
           cli_bytes(b, sizeof b, p->counter_peak_bytes));
    printf("%-11s %s (%" PRIu64 " bytes): %s; action %s\n", "limit",
           cli_bytes(a, sizeof a, p->limit_bytes), p->limit_bytes, p->limit_source, p->action);
    printf("%-11s conservative %s, strict %s, strict-synchronous %s\n", "thresholds",
           cli_bytes(a, sizeof a, p->conservative_bytes), cli_bytes(b, sizeof b, p->strict_bytes),
           cli_bytes(c, sizeof c, p->strict_sync_bytes));
    printf("%-11s %s (%" PRIu64 " %s recorded)\n", "policy", p->policy_name, p->events_total,
           p->events_total == 1 ? "event" : "events");
    printf("%-11s %s, %u %s\n", "state", p->state, p->pages, p->pages == 1 ? "page" : "pages");
    printf("%-11s %.1f s ago (update %" PRIu64 ", %.1f s after start)\n", "updated", age_seconds(p),
           p->ticks, (double)p->uptime_ns / 1e9);
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(char *out, size_t cap, const char *s) {
    size_t len = 0;
    for (; *s != '\0' && len + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[len++] = '\\';
            out[len++] = *s;
        } else if (*s == '\n') {
            out[len++] = '\\';
            out[len++] = 'n';
        } else {
            out[len++] = *s;
        }
    }
    out[len] = '\0';
}

static void prom_metric(const char *name, const char *type, const char *help, const char *labels,
                        double value) {
    printf("# HELP membudget_%s %s\n# TYPE membudget_%s %s\nmembudget_%s{%s} %.17g\n", name, help,
           name, type, name, labels, value);
}

static void print_prometheus(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    char comm[64], labels[160], info[1024], policy[64], action[32], state[32], source[400];
    prom_label(comm, sizeof comm, p->comm);
    snprintf(labels, sizeof labels, "pid=\"%ld\",comm=\"%s\"", (long)lp->pid, comm);
    prom_label(policy, sizeof policy, p->policy_name);
    prom_label(action, sizeof action, p->action);
    prom_label(state, sizeof state, p->state);
    prom_label(source, sizeof source, p->limit_source);
    snprintf(info, sizeof info, "%s,policy=\"%s\",action=\"%s\",state=\"%s\",limit_source=\"%s\"",
             labels, policy, action, state, source);
    prom_metric("info", "gauge", "The process under a budget; its policy, action and state.", info,
                1);
    prom_metric("footprint_bytes", "gauge", "Footprint as the budget sees it: counter + baseline.",
                labels, (double)p->footprint_bytes);
    prom_metric("footprint_peak_bytes", "gauge", "Highest footprint seen at a monitor tick.",
                labels, (double)p->footprint_peak_bytes);
    prom_metric("counter_bytes", "gauge",
                "Bytes committed by the allocator and charged anonymous mappings.", labels,
                (double)p->counter_bytes);
    prom_metric("counter_peak_bytes", "gauge", "Highest counter seen.", labels,
                (double)p->counter_peak_bytes);
    prom_metric("baseline_bytes", "gauge", "Anonymous memory the counter does not see.", labels,
                (double)p->baseline_bytes);
    prom_metric("os_bytes", "gauge", "The operating system's view the baseline comes from.", labels,
                (double)p->os_bytes);
    prom_metric("limit_bytes", "gauge", "The kill threshold.", labels, (double)p->limit_bytes);
    prom_metric("limit_ratio", "gauge", "Footprint divided by the kill threshold.", labels,
                p->limit_bytes ? (double)p->footprint_bytes / (double)p->limit_bytes : 0);
    prom_metric("conservative_bytes", "gauge", "The Conservative policy threshold.", labels,
                (double)p->conservative_bytes);
    prom_metric("strict_bytes", "gauge", "The Strict policy threshold.", labels,
                (double)p->strict_bytes);
    prom_metric("strict_sync_bytes", "gauge", "The StrictSynchronous policy threshold.", labels,
                (double)p->strict_sync_bytes);
    prom_metric("policy", "gauge",
                "Policy: 0 unrestricted, 1 conservative, 2 strict, 3 strict-synchronous.", labels,
                p->policy);
    prom_metric("policy_events_total", "counter", "Policy history events recorded.", labels,
                (double)p->events_total);
    prom_metric("updates_total", "counter", "Updates of the live figures (monitor ticks).", labels,
                (double)p->ticks);
    prom_metric("last_update_timestamp_seconds", "gauge", "When the figures were last updated.",
                labels, (double)p->updated_unix_ns / 1e9);
}

static int stat_failure(pid_t pid, enum live_status status, int err) {
    char path[128];
    live_page_path(path, sizeof path, pid);
    bool exists = kill(pid, 0) == 0 || errno == EPERM;
    switch (status) {
    case LIVE_NONE:
        if (!exists)
            cli_error("stat", "no process %ld", (long)pid);
        else
            cli_error("stat",
                      "pid %ld has no live statistics (not running with libmembudget.so, or "
                      "not yet at its first monitor tick after half a second): no %s",
                      (long)pid, path);
        break;
    case LIVE_DENIED:
        cli_error("stat", "the live statistics of pid %ld belong to another user (%s: %s)",
                  (long)pid, path, strerror(err));
        break;
    case LIVE_STALE:
        cli_error("stat", "no process %ld (its stale page %s was removed)", (long)pid, path);
        break;
    case LIVE_BAD:
    case LIVE_OK:
        cli_error("stat", "cannot read %s: %s", path, strerror(err));
        break;
    }
    return CLI_EXIT_FAILURE;
}

int cmd_stat(int argc, char **argv) {
    static const struct option longopts[] = {
        {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "PID, --prometheus, --help";
    bool prometheus = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("stat", argc, argv, ":h", longopts, accepted)) != -1) {
        if (c == 'h') {
            fputs(stat_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (c == OPT_PROMETHEUS) prometheus = true;
    }
    if (optind >= argc) cli_usage_error("stat", "no PID given (accepted: %s)", accepted);
    if (optind + 1 < argc)
        cli_usage_error("stat", "unexpected argument '%s' (accepted: %s)", argv[optind + 1],
                        accepted);
    pid_t pid = parse_pid("stat", argv[optind]);
    struct live_process lp;
    int err;
    enum live_status status = live_read(pid, &lp, &err);
    if (status != LIVE_OK) return stat_failure(pid, status, err);
    if (prometheus)
        print_prometheus(&lp);
    else
        print_stat(&lp);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

/* ---- top ------------------------------------------------------------------- */

static struct termios saved_termios;
static volatile sig_atomic_t termios_changed;

static void restore_terminal(void) {
    if (termios_changed) tcsetattr(0, TCSANOW, &saved_termios);
    termios_changed = 0;
}

static void restore_and_reraise(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Keys without Enter, and no echo, while top runs in a terminal. */
static void raw_keys(void) {
    if (!isatty(0) || tcgetattr(0, &saved_termios) != 0) return;
    struct termios t = saved_termios;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(0, TCSANOW, &t) != 0) return;
    termios_changed = 1;
    atexit(restore_terminal);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], restore_and_reraise);
}

/* Waits up to `seconds`; true when the user asked to quit. */
static bool wait_or_quit(double seconds) {
    double end = now_unix() + seconds;
    for (;;) {
        double left = end - now_unix();
        if (left <= 0) return false;
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int n =
            poll(termios_changed ? &pfd : NULL, termios_changed ? 1 : 0, (int)(left * 1000) + 1);
        if (n > 0) {
            char key;
            if (read(0, &key, 1) != 1) {
                termios_changed = 0; /* stdin closed: stop reading keys */
                continue;
            }
            if (key == 'q' || key == 'Q') return true;
            return false; /* any other key: refresh now */
        }
    }
}

static void format_age(char *out, size_t cap, double age) {
    if (age < 10)
        snprintf(out, cap, "%.1fs", age);
    else if (age < 600)
        snprintf(out, cap, "%.0fs", age);
    else if (age < 36000)
        snprintf(out, cap, "%.0fm", age / 60);
    else
        snprintf(out, cap, "%.0fh", age / 3600);
}

static void print_frame(const struct live_scan *scan, double delay, bool once) {
    char when[16];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%H:%M:%S", localtime_r(&t, &tm));
    printf("membudget top - %s, %zu %s under a budget", when, scan->count,
           scan->count == 1 ? "process" : "processes");
    if (!once) printf(", every %gs, q quits", delay);
    printf("\n\n");
    printf("%7s %-11s %6s %6s %5s %6s %6s %6s %-12s %5s\n", "PID", "COMMAND", "FOOTPR", "LIMIT",
           "%LIM", "PEAK", "COUNTR", "BASELN", "POLICY", "AGE");
    for (size_t i = 0; i < scan->count; i++) {
        const struct live_process *lp = &scan->procs[i];
        const struct mb_statspage *p = &lp->page;
        char fp[16], lim[16], peak[16], counter[16], base[16], age[16];
        format_age(age, sizeof age, age_seconds(p));
        printf("%7ld %-11.11s %6s %6s %5.1f %6s %6s %6s %-12s %5s\n", (long)lp->pid, p->comm,
               cli_bytes_short(fp, sizeof fp, p->footprint_bytes),
               cli_bytes_short(lim, sizeof lim, p->limit_bytes), percent_of_limit(p),
               cli_bytes_short(peak, sizeof peak, p->footprint_peak_bytes),
               cli_bytes_short(counter, sizeof counter, p->counter_bytes),
               cli_bytes_short(base, sizeof base, p->baseline_bytes), p->policy_name, age);
    }
    if (scan->count == 0) printf("(no process of this user is running with libmembudget.so)\n");
    if (scan->denied != 0)
        printf("(%zu %s of other users not shown: their pages are owner-only)\n", scan->denied,
               scan->denied == 1 ? "process" : "processes");
}

int cmd_top(int argc, char **argv) {
    static const struct option longopts[] = {
        {"delay", required_argument, NULL, 'd'},
        {"iterations", required_argument, NULL, 'n'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "-d SECONDS, -n COUNT, --once, --help";
    double delay = 1.0;
    uint64_t iterations = 0; /* 0: until q */
    bool once = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("top", argc, argv, ":hd:n:", longopts, accepted)) != -1) {
        switch (c) {
        case 'h':
            fputs(top_usage, stdout);
            return CLI_EXIT_OK;
        case 'd':
            if (!cli_parse_seconds(optarg, 0.1, 3600, &delay))
                cli_usage_error("top",
                                "-d '%s' is not valid (expected seconds from 0.1 to 3600, such "
                                "as 1 or 0.5)",
                                optarg);
            break;
        case 'n':
            if (!cli_parse_uint(optarg, 1, UINT32_MAX, &iterations))
                cli_usage_error("top", "-n '%s' is not valid (expected a count of 1 or more)",
                                optarg);
            break;
        case OPT_ONCE:
            once = true;
            break;
        }
    }
    if (optind < argc)
        cli_usage_error("top", "unexpected argument '%s' (accepted: %s)", argv[optind], accepted);
    if (once) iterations = 1;
    bool clear = !once && isatty(1);
    if (!once) raw_keys();
    for (uint64_t frame = 0; iterations == 0 || frame < iterations; frame++) {
        struct live_scan scan;
        if (live_scan(&scan) != 0) {
            cli_error("top", "cannot read %s: %s", MB_STATSPAGE_DIR, strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        if (clear)
            fputs("\033[H\033[2J", stdout);
        else if (frame > 0)
            putchar('\n');
        print_frame(&scan, delay, once);
        live_scan_free(&scan);
        fflush(stdout);
        if (iterations != 0 && frame + 1 >= iterations) break;
        if (wait_or_quit(delay)) break;
    }
    restore_terminal();
    return CLI_EXIT_OK;
}
