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
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/textout.h"
#include "policy/utf8.h"

static const char stat_usage[] =
    "usage: membudget stat PID [--prometheus | --json]\n"
    "\n"
    "Prints the live figures of process PID, which runs with libmembudget.so:\n"
    "footprint (counter + baseline), % of the limit, peak, limit and where it came\n"
    "from, policy thresholds, policy, the sampled top site, and how fresh the\n"
    "figures are.  They come from the page the process rewrites at each monitor\n"
    "tick (MEMBUDGET_INTERVAL, 100ms) in /dev/shm/membudget-UID/PID, in a directory\n"
    "of its owner's that only the owner can read; a process publishes it from its\n"
    "first tick after half a second of life.  A page that is not a regular file\n"
    "owned by the process's owner is refused.  Text from the page is escaped:\n"
    "control characters as \\xNN here, per JSON and the exposition format with\n"
    "--json and --prometheus.\n"
    "\n"
    "The top site is the allocation stack whose sampled allocations stand for the\n"
    "most live bytes (an estimate: one allocation in every MEMBUDGET_SAMPLE bytes\n"
    "records its stack); its frames are named here, from the files the process\n"
    "maps, as `membudget report` names them.  \"not sampled\" with\n"
    "MEMBUDGET_SAMPLE=0, \"-\" for a process whose library predates it.\n"
    "\n"
    "  --prometheus   Prometheus text exposition format instead\n"
    "  --json         one JSON object instead\n"
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
    "POLICY, AGE (time since the figures were updated), TOP SITE (the estimated\n"
    "live bytes of the sampled allocation stack holding the most, and its three\n"
    "innermost frames; \"not sampled\" with MEMBUDGET_SAMPLE=0, \"-\" for a process\n"
    "whose library predates it), cut at the terminal's width.  Pages of processes\n"
    "that are gone are removed as they are found; a page that is not a regular file\n"
    "owned by its process's owner is refused (counted below the table).\n";

enum { OPT_PROMETHEUS = 256, OPT_JSON, OPT_ONCE };

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

/* Text from a page or /proc, for the terminal (tools/textout.h). */
static void term(const char *s) { tx_term(stdout, s); }

static void print_top_site(const struct live_process *lp) {
    struct live_top_site t;
    live_top_site(lp, &t);
    char a[32], b[32];
    switch (t.state) {
    case LIVE_TOP_UNKNOWN:
        printf("%-11s - (not in this page: the process's library predates the top site)\n",
               "top site");
        return;
    case LIVE_TOP_OFF:
        printf("%-11s not sampled (MEMBUDGET_SAMPLE=0)\n", "top site");
        return;
    case LIVE_TOP_NONE:
        printf("%-11s none yet (no live sample; 1 per %s on average)\n", "top site",
               mb_bytes_text(a, sizeof a, t.rate_bytes));
        return;
    case LIVE_TOP_OK:
        break;
    }
    printf("%-11s ", "top site");
    term(t.frame_count > 0 ? t.frames[0].name : "[no frames]");
    printf(": %s (%" PRIu64 " bytes) estimated live in %" PRIu64 " %s of 1 per %s\n",
           mb_bytes_text(a, sizeof a, t.est_bytes), t.est_bytes, t.live_samples,
           t.live_samples == 1 ? "sample" : "samples", mb_bytes_text(b, sizeof b, t.rate_bytes));
    for (size_t f = 0; f < t.frame_count; f++) {
        const struct live_top_frame *fr = &t.frames[f];
        printf("%-11s #%zu ", "", f);
        term(fr->name);
        if (fr->file[0] != '\0') {
            printf(" at ");
            term(fr->file);
            printf(":%d", fr->line);
        } else if (fr->symbolized && fr->module[0] != '\0') {
            printf(" in ");
            term(fr->module);
        }
        putchar('\n');
    }
    if (t.depth > t.frame_count)
        printf("%-11s ... %" PRIu32 " more %s\n", "", t.depth - (uint32_t)t.frame_count,
               t.depth - t.frame_count == 1 ? "frame" : "frames");
}

static void print_stat(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    char a[32], b[32], c[32], cmdline[256];
    read_cmdline(lp->pid, cmdline, sizeof cmdline);
    printf("%-11s %ld (", "pid", (long)lp->pid);
    term(p->comm);
    printf(")%s", cmdline[0] ? ": " : "");
    term(cmdline);
    putchar('\n');
    printf("%-11s %s (%" PRIu64 " bytes), %.1f%% of the limit\n", "footprint",
           mb_bytes_text(a, sizeof a, p->footprint_bytes), p->footprint_bytes, percent_of_limit(p));
    printf("%-11s %s (%" PRIu64 " bytes): the allocator and charged anonymous mappings\n",
           "counter", mb_bytes_text(a, sizeof a, p->counter_bytes), p->counter_bytes);
    printf("%-11s %s (%" PRIu64 " bytes): the rest of the OS view, ", "baseline",
           mb_bytes_text(a, sizeof a, p->baseline_bytes), p->baseline_bytes);
    term(p->footprint_source);
    printf(" %s\n", mb_bytes_text(b, sizeof b, p->os_bytes));
    printf("%-11s footprint %s at a tick, counter %s\n", "peak",
           mb_bytes_text(a, sizeof a, p->footprint_peak_bytes),
           mb_bytes_text(b, sizeof b, p->counter_peak_bytes));
    printf("%-11s %s (%" PRIu64 " bytes): ", "limit", mb_bytes_text(a, sizeof a, p->limit_bytes),
           p->limit_bytes);
    term(p->limit_source);
    printf("; action ");
    term(p->action);
    putchar('\n');
    printf("%-11s conservative %s, strict %s, strict-synchronous %s\n", "thresholds",
           mb_bytes_text(a, sizeof a, p->conservative_bytes),
           mb_bytes_text(b, sizeof b, p->strict_bytes),
           mb_bytes_text(c, sizeof c, p->strict_sync_bytes));
    printf("%-11s ", "policy");
    term(p->policy_name);
    printf(" (%" PRIu64 " %s recorded)\n", p->policy_events_total,
           p->policy_events_total == 1 ? "event" : "events");
    printf("%-11s ", "state");
    term(p->state);
    printf(", %u %s\n", p->pages, p->pages == 1 ? "page" : "pages");
    print_top_site(lp);
    printf("%-11s %.1f s ago (update %" PRIu64 ", %.1f s after start)\n", "updated", age_seconds(p),
           p->updates, (double)p->uptime_ns / 1e9);
}

/* A label value of the text exposition format: UTF-8 with backslash, double
 * quote and line feed escaped (\\ \" \n, the only escapes it has).  Bytes
 * that are not UTF-8 and the other control characters, which the format
 * would carry raw to whoever reads it, become U+FFFD.  Cut on a character
 * boundary to fit cap. */
static void prom_label(char *out, size_t cap, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), len = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t seq = mb_utf8_seq(p + i, n - i, &c);
        const char *piece = (const char *)p + i;
        size_t piece_len = seq;
        if (c == '\\' || c == '"') {
            piece = c == '"' ? "\\\"" : "\\\\";
            piece_len = 2;
        } else if (c == '\n' && seq == 1) {
            piece = "\\n";
            piece_len = 2;
        } else if (seq == 0 || c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)) {
            piece = "\xef\xbf\xbd";
            piece_len = 3;
        }
        if (len + piece_len >= cap) break;
        memcpy(out + len, piece, piece_len);
        len += piece_len;
        i += seq == 0 ? 1 : seq;
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
    char comm[64], labels[160], info[1024], value[400];
    prom_label(comm, sizeof comm, p->comm);
    snprintf(labels, sizeof labels, "pid=\"%ld\",comm=\"%s\"", (long)lp->pid, comm);
    size_t len = (size_t)snprintf(info, sizeof info, "%s", labels);
    for (size_t i = 0; i < live_text_count; i++) {
        const struct live_text *t = &live_texts[i];
        if (!t->prom) continue;
        prom_label(value, sizeof value, live_text_value(p, t));
        int n = snprintf(info + len, sizeof info - len, ",%s=\"%s\"", t->key, value);
        if (n > 0 && (size_t)n < sizeof info - len) len += (size_t)n;
    }
    prom_metric("info", "gauge", "The process under a budget; its policy, action and state.", info,
                1);
    for (size_t i = 0; i < live_figure_count; i++) {
        const struct live_figure *f = &live_figures[i];
        if (f->prom == NULL || !live_figure_present(p, f)) continue;
        char name[64];
        size_t n = strlen(f->name);
        bool total =
            strcmp(f->prom, "counter") == 0 && !(n >= 6 && strcmp(f->name + n - 6, "_total") == 0);
        snprintf(name, sizeof name, "%s%s", f->name, total ? "_total" : "");
        prom_metric(name, f->prom, f->help, labels, (double)live_figure_value(p, f));
    }
    prom_metric("limit_ratio", "gauge", "Footprint divided by the kill threshold.", labels,
                p->limit_bytes ? (double)p->footprint_bytes / (double)p->limit_bytes : 0);
    prom_metric("last_update_timestamp_seconds", "gauge", "When the figures were last updated.",
                labels, (double)p->updated_unix_ns / 1e9);
    struct live_top_site t;
    live_top_site(lp, &t);
    if (t.state == LIVE_TOP_UNKNOWN) return; /* the page has no sampling fields */
    prom_metric("sample_rate_bytes", "gauge",
                "Mean bytes between sampled allocations (MEMBUDGET_SAMPLE); 0: sampling off.",
                labels, (double)t.rate_bytes);
    if (t.state != LIVE_TOP_OK) return;
    char site[200], stack[480], site_labels[900];
    prom_label(site, sizeof site, t.frame_count > 0 ? t.frames[0].name : "[no frames]");
    prom_label(stack, sizeof stack, t.label);
    snprintf(site_labels, sizeof site_labels, "%s,site=\"%s\",stack=\"%s\"", labels, site, stack);
    prom_metric("top_site_bytes", "gauge",
                "Estimated live bytes of the sampled allocation site holding the most; site is "
                "its innermost frame, stack its three innermost.",
                site_labels, (double)t.est_bytes);
    prom_metric("top_site_live_samples", "gauge", "Live samples at the top site.", site_labels,
                (double)t.live_samples);
}

/* ---- stat --json --------------------------------------------------------------- */

static void json_key_string(const char *key, const char *value, bool last) {
    printf("  \"%s\": ", key);
    tx_json(stdout, value);
    printf(last ? "\n" : ",\n");
}

static void json_key_u64(const char *key, uint64_t value) {
    printf("  \"%s\": %" PRIu64 ",\n", key, value);
}

static void print_json_top_site(const struct live_process *lp) {
    struct live_top_site t;
    live_top_site(lp, &t);
    printf("  \"top_site\": {\"state\": \"%s\", \"text\": ", live_top_state_name(t.state));
    tx_json(stdout, t.label);
    if (t.state != LIVE_TOP_UNKNOWN)
        printf(", \"sample_rate_bytes\": %" PRIu64 ",\n    \"scans\": %" PRIu64
               ", \"scan_ns\": %" PRIu64 ", \"resolve_ns\": %" PRIu64,
               t.rate_bytes, t.scans, t.scan_ns, t.resolve_ns);
    if (t.state == LIVE_TOP_OK) {
        printf(",\n    \"est_bytes\": %" PRIu64 ", \"est_objects\": %" PRIu64
               ", \"live_samples\": %" PRIu64 ", \"live_sampled_bytes\": %" PRIu64
               ", \"depth\": %" PRIu32 ",\n    \"frames\": [",
               t.est_bytes, t.est_objects, t.live_samples, t.live_sampled_bytes, t.depth);
        for (size_t f = 0; f < t.frame_count; f++) {
            const struct live_top_frame *fr = &t.frames[f];
            printf("%s\n      {\"address\": \"0x%" PRIx64 "\", \"name\": ", f ? "," : "",
                   fr->address);
            tx_json(stdout, fr->name);
            if (fr->symbolized) {
                printf(", \"function\": ");
                tx_json(stdout, fr->name);
            }
            if (fr->file[0] != '\0') {
                printf(", \"file\": ");
                tx_json(stdout, fr->file);
                printf(", \"line\": %d", fr->line);
            }
            if (fr->module[0] != '\0') {
                printf(", \"module\": ");
                tx_json(stdout, fr->module);
                if (!tx_is_utf8(fr->module)) { /* the exact bytes of a path */
                    printf(", \"module_bytes\": ");
                    tx_hex(stdout, fr->module);
                }
                printf(", \"module_offset\": \"0x%" PRIx64 "\"", fr->module_offset);
            }
            putchar('}');
        }
        printf("]");
    }
    printf("}\n");
}

static void print_json(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    char cmdline[256];
    read_cmdline(lp->pid, cmdline, sizeof cmdline);
    printf("{\n");
    json_key_u64("pid", (uint64_t)lp->pid);
    json_key_string("comm", p->comm, false);
    json_key_string("cmdline", cmdline, false);
    json_key_u64("page_size", p->size);
    for (size_t i = 0; i < live_figure_count; i++)
        if (live_figures[i].json && live_figure_present(p, &live_figures[i]))
            json_key_u64(live_figures[i].name, live_figure_value(p, &live_figures[i]));
    printf("  \"limit_percent\": %.2f,\n", percent_of_limit(p));
    for (size_t i = 0; i < live_text_count; i++)
        json_key_string(live_texts[i].key, live_text_value(p, &live_texts[i]), false);
    print_json_top_site(lp);
    printf("}\n");
}

static int stat_failure(pid_t pid, enum live_status status, const struct live_error *e) {
    char path[128], why[sizeof e->why];
    uid_t uid;
    if (live_process_owner(pid, &uid))
        live_page_path(path, sizeof path, uid, pid);
    else
        snprintf(path, sizeof path, "its page");
    tx_term_buf(why, sizeof why, e->why, sizeof why); /* our words, with paths */
    bool exists = kill(pid, 0) == 0 || errno == EPERM;
    switch (status) {
    case LIVE_NONE:
        if (!exists)
            cli_error("stat", "no process %ld", (long)pid);
        else
            cli_error("stat",
                      "pid %ld has no live statistics (not running with libmembudget.so, or "
                      "not yet at its first monitor tick after half a second): %s",
                      (long)pid, why);
        break;
    case LIVE_DENIED:
        cli_error("stat", "the live statistics of pid %ld belong to another user (%s: %s)",
                  (long)pid, path, strerror(e->err));
        break;
    case LIVE_STALE:
        cli_error("stat", "no process %ld (its stale page %s was removed)", (long)pid, path);
        break;
    case LIVE_REFUSED:
        cli_error("stat", "refused the live statistics of pid %ld: %s", (long)pid, why);
        break;
    case LIVE_BAD:
    case LIVE_OK:
        cli_error("stat", "cannot read %s: %s", path, why);
        break;
    }
    return CLI_EXIT_FAILURE;
}

int cmd_stat(int argc, char **argv) {
    static const struct option longopts[] = {
        {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "PID, --prometheus, --json, --help";
    bool prometheus = false, json = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("stat", argc, argv, ":h", longopts, accepted)) != -1) {
        if (c == 'h') {
            fputs(stat_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (c == OPT_PROMETHEUS) prometheus = true;
        if (c == OPT_JSON) json = true;
    }
    if (prometheus && json)
        cli_usage_error("stat", "--prometheus and --json exclude each other (accepted: %s)",
                        accepted);
    if (optind >= argc) cli_usage_error("stat", "no PID given (accepted: %s)", accepted);
    if (optind + 1 < argc)
        cli_usage_error("stat", "unexpected argument '%s' (accepted: %s)", argv[optind + 1],
                        accepted);
    pid_t pid = parse_pid("stat", argv[optind]);
    struct live_process lp;
    struct live_error e;
    enum live_status status = live_read(pid, &lp, &e);
    if (status != LIVE_OK) return stat_failure(pid, status, &e);
    if (prometheus)
        print_prometheus(&lp);
    else if (json)
        print_json(&lp);
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
                printf(" %5.1f", percent_of_limit(p));
        }
    }
}

/* The fixed columns of a row, before TOP SITE: PID, COMMAND, the figures,
 * POLICY and AGE. */
static size_t top_fixed_width(void) {
    const struct live_figure *by_column[TOP_COLUMNS];
    top_figures(by_column);
    size_t width = 7 + 1 + 11 + 1 + 12 + 1 + 5;
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
    printf(" %-12s %5s%s\n", "POLICY", "AGE", site_column ? " TOP SITE" : "");
    for (size_t i = 0; i < scan->count; i++) {
        const struct live_process *lp = &scan->procs[i];
        const struct mb_statspage *p = &lp->page;
        char age[16], site[1600] = "";
        char comm[64], policy[64];
        term_column(comm, sizeof comm, p->comm, 11);
        term_column(policy, sizeof policy, p->policy_name, 12);
        format_age(age, sizeof age, age_seconds(p));
        if (site_column) {
            site[0] = ' ';
            site_cell(site + 1, sizeof site - 1, lp, room);
        }
        printf("%7ld %s", (long)lp->pid, comm);
        print_figure_columns(p);
        printf(" %s %5s%s\n", policy, age, site);
    }
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
