/* `membudget top`: every process running with the library, refreshed like
 * top(1), from their live-statistics pages (tools/livestats.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/stat_out.h"
#include "tools/textout.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static const char top_usage[] =
    "usage: membudget top [-d SECONDS] [-n COUNT] [--once]\n"
    "\n"
    "Shows every process running with libmembudget.so that this user can read\n"
    "(root: every user's), largest footprint first, refreshed like top(1).  Press\n"
    "q to quit.  A process is listed from its first monitor tick after half a\n"
    "second of life.\n"
    "\n"
    "  -d, --delay SECONDS   time between refreshes, 0.1 to 3600 (default 1)\n"
    "  -n, --iterations N    stop after N refreshes\n"
    "  --once                print one table, without clearing the screen, and exit\n"
    "  -h, --help            this text\n"
    "\n"
    "Columns: FOOTPRINT = COUNTER (what the allocator and the charged anonymous\n"
    "mappings hold) + BASELINE (the rest of the process's anonymous memory), LIMIT\n"
    "(the kill threshold), %LIM, PEAK (the highest footprint seen at a tick),\n"
    "POLICY, AGE (time since the figures were updated; \"!\" past the bound on\n"
    "their age, the time within which a page is rewritten; \"stale\" past\n"
    STRINGIFY(LIVE_STALE_FACTOR) " times it: not current), TOP SITE (the estimated\n"
    "live bytes of the sampled allocation stack holding the most, and its three\n"
    "innermost frames; \"not sampled\" with MEMBUDGET_SAMPLE=0, \"-\" for a process\n"
    "whose library predates it), cut at the terminal's width.  Pages of processes\n"
    "that are gone are removed as they are found; a page that is not a regular file\n"
    "owned by its process's owner is refused (counted below the table).\n";

enum { OPT_ONCE = 256 };

static double now_unix(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* The AGE cell: the age, with "!" when past the bound; "stale" past
 * LIVE_STALE_FACTOR times it. */
static void format_age(char *out, size_t cap, uint64_t age_ns) {
    double age = (double)age_ns / 1e9;
    enum live_age kind = live_age_of(age_ns);
    const char *mark = kind == LIVE_AGE_LATE ? "!" : "";
    if (kind == LIVE_AGE_STALE)
        snprintf(out, cap, "stale");
    else if (age < 10)
        snprintf(out, cap, "%.1fs%s", age, mark);
    else if (age < 600)
        snprintf(out, cap, "%.0fs%s", age, mark);
    else if (age < 36000)
        snprintf(out, cap, "%.0fm%s", age / 60, mark);
    else
        snprintf(out, cap, "%.0fh%s", age / 3600, mark);
}

/* The names of each process's top site, kept between refreshes: symbolizing
 * reads the files it names, and the site changes seldom. */
struct site_name {
    pid_t pid;
    uint32_t site;
    uint64_t since_unix_ns;
    char label[400];
};
static struct site_name *site_names;
static size_t site_name_count, site_name_cap;

static const char *top_site_label(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    bool cacheable = p->size >= MB_STATSPAGE_SIZE_TOP_SITE && p->sample_rate_bytes != 0 &&
                     p->top_site != 0;
    if (cacheable) {
        for (size_t i = 0; i < site_name_count; i++) {
            const struct site_name *n = &site_names[i];
            if (n->pid == lp->pid && n->site == p->top_site &&
                n->since_unix_ns == p->top_since_unix_ns)
                return n->label;
        }
    }
    static struct live_top_site t;
    live_top_site(lp, &t);
    if (!cacheable || t.state != LIVE_TOP_OK) return t.label;
    struct site_name *n = NULL;
    for (size_t i = 0; i < site_name_count && n == NULL; i++)
        if (site_names[i].pid == lp->pid) n = &site_names[i];
    if (n == NULL) {
        if (site_name_count == site_name_cap) {
            size_t cap = site_name_cap ? site_name_cap * 2 : 16;
            struct site_name *grown = realloc(site_names, cap * sizeof *grown);
            if (grown == NULL) return t.label;
            site_names = grown;
            site_name_cap = cap;
        }
        n = &site_names[site_name_count++];
    }
    n->pid = lp->pid;
    n->site = p->top_site;
    n->since_unix_ns = p->top_since_unix_ns;
    snprintf(n->label, sizeof n->label, "%s", t.label);
    return n->label;
}

/* Drops the names of processes no longer listed. */
static void forget_site_names(const struct live_scan *scan) {
    size_t kept = 0;
    for (size_t i = 0; i < site_name_count; i++) {
        bool listed = false;
        for (size_t j = 0; j < scan->count && !listed; j++)
            listed = scan->procs[j].pid == site_names[i].pid;
        if (listed) site_names[kept++] = site_names[i];
    }
    site_name_count = kept;
}

/* The width to cut rows at: the terminal's, else $COLUMNS, else none (0). */
static size_t output_width(void) {
    struct winsize ws;
    if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *columns = getenv("COLUMNS");
    uint64_t v;
    if (columns != NULL && cli_parse_uint(columns, 1, 100000, &v)) return (size_t)v;
    return 0;
}

/* The TOP SITE cell: "36M grow_site_a < grow < main" in its terminal form
 * (tools/textout.h), cut to `room` columns with "..." (room 0: no limit). */
static void site_cell(char *out, size_t cap, const struct live_process *lp, size_t room) {
    const struct mb_statspage *p = &lp->page;
    const char *label = top_site_label(lp);
    char est[16], raw[480];
    if (p->size >= MB_STATSPAGE_SIZE_TOP_SITE && p->sample_rate_bytes != 0 && p->top_site != 0)
        snprintf(raw, sizeof raw, "%s %s", mb_bytes_short_text(est, sizeof est, p->top_est_bytes),
                 label);
    else
        snprintf(raw, sizeof raw, "%s", label);
    size_t all = tx_term_buf(out, cap, raw, SIZE_MAX);
    if (room == 0 || all <= room) return;
    if (room > 3) {
        tx_term_buf(out, cap - 3, raw, room - 3);
        strcat(out, "...");
    } else {
        tx_term_buf(out, cap, raw, room);
    }
}

/* s in its terminal form in exactly `columns` columns: cut, or padded with
 * spaces. */
static void term_column(char *out, size_t cap, const char *s, size_t columns) {
    size_t taken = tx_term_buf(out, cap, s, columns);
    size_t len = strlen(out);
    while (taken < columns && len + 1 < cap) {
        out[len++] = ' ';
        taken++;
    }
    out[len] = '\0';
}

/* top's figure columns: the page figures with a top position
 * (policy/stats_list.h), in six columns each, and %LIM, top's own, in five at
 * TOP_PERCENT_COLUMN. */
#define TOP_COLUMNS 8
#define TOP_PERCENT_COLUMN 3

static void top_figures(const struct live_figure *by_column[TOP_COLUMNS]) {
    for (size_t c = 0; c < TOP_COLUMNS; c++) by_column[c] = NULL;
    for (size_t i = 0; i < live_figure_count; i++)
        if (live_figures[i].top != 0 && live_figures[i].top < TOP_COLUMNS)
            by_column[live_figures[i].top] = &live_figures[i];
}

/* The columns from FOOTPR to BASELN, each after a space: p's figures, or the
 * heads when p is NULL. */
static void print_figure_columns(const struct mb_statspage *p) {
    const struct live_figure *by_column[TOP_COLUMNS];
    top_figures(by_column);
    for (unsigned c = 1; c < TOP_COLUMNS; c++) {
        const struct live_figure *f = by_column[c];
        char text[16];
        if (f != NULL) {
            const char *cell = f->title;
            if (p != NULL)
                cell = live_figure_present(p, f)
                           ? mb_bytes_short_text(text, sizeof text, live_figure_value(p, f))
                           : "-";
            printf(" %6s", cell);
        } else if (c == TOP_PERCENT_COLUMN) {
            if (p == NULL)
                printf(" %5s", "%LIM");
            else
                printf(" %5.1f", stat_limit_percent(p));
        }
    }
}

/* The fixed columns of a row, before TOP SITE: PID, COMMAND, the figures,
 * POLICY and AGE. */
static size_t top_fixed_width(void) {
    const struct live_figure *by_column[TOP_COLUMNS];
    top_figures(by_column);
    size_t width = 7 + 1 + 11 + 1 + 12 + 1 + 6;
    for (unsigned c = 1; c < TOP_COLUMNS; c++)
        width += by_column[c] != NULL ? 7 : c == TOP_PERCENT_COLUMN ? 6 : 0;
    return width;
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
    /* TOP SITE takes what the terminal has left, if that is worth showing. */
    size_t width = output_width(), room = 0;
    bool site_column = true;
    size_t fixed = top_fixed_width();
    if (width != 0) {
        site_column = width >= fixed + 1 + 8;
        room = site_column ? width - fixed - 1 : 0;
    }
    printf("%7s %-11s", "PID", "COMMAND");
    print_figure_columns(NULL);
    printf(" %-12s %6s%s\n", "POLICY", "AGE", site_column ? " TOP SITE" : "");
    size_t late = 0; /* rows past the bound on the figures' age */
    for (size_t i = 0; i < scan->count; i++) {
        const struct live_process *lp = &scan->procs[i];
        const struct mb_statspage *p = &lp->page;
        char age[16], site[1600] = "";
        char comm[64], policy[64];
        term_column(comm, sizeof comm, p->comm, 11);
        term_column(policy, sizeof policy, p->policy_name, 12);
        uint64_t age_ns = live_age_ns(p);
        late += live_age_of(age_ns) != LIVE_AGE_CURRENT;
        format_age(age, sizeof age, age_ns);
        if (site_column) {
            site[0] = ' ';
            site_cell(site + 1, sizeof site - 1, lp, room);
        }
        printf("%7ld %s", (long)lp->pid, comm);
        print_figure_columns(p);
        printf(" %s %6s%s\n", policy, age, site);
    }
    if (late != 0)
        printf("(AGE: ! past the %g s bound; stale: past %g s, not current)\n",
               (double)LIVE_BOUND_NS / 1e9, (double)LIVE_STALE_NS / 1e9);
    if (scan->count == 0) printf("(no process of this user is running with libmembudget.so)\n");
    if (scan->denied != 0)
        printf("(the pages of %zu other %s not shown: their directories are owner-only)\n",
               scan->denied, scan->denied == 1 ? "user" : "users");
    if (scan->refused != 0) {
        char why[sizeof scan->refused_why];
        tx_term_buf(why, sizeof why, scan->refused_why, sizeof why);
        printf("(%zu %s refused: %s%s)\n", scan->refused,
               scan->refused == 1 ? "page" : "pages", why, scan->refused > 1 ? ", ..." : "");
    }
    forget_site_names(scan);
}

int cmd_top(int argc, char **argv) {
    if (cmd_group_wanted(argc, argv)) return cmd_group_of("top", argc, argv);
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
            cli_error("top", "cannot read %s: %s", MB_STATSPAGE_ROOT, strerror(errno));
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
    free(site_names);
    site_names = NULL;
    site_name_count = site_name_cap = 0;
    return CLI_EXIT_OK;
}
