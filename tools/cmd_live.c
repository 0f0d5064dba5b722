/* `membudget stat`: the live figures of processes running with the library,
 * from their live-statistics pages (tools/livestats.h); its JSON and
 * Prometheus outputs are in tools/stat_out.c, `top` in tools/cmd_top.c. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/stat_out.h"
#include "tools/textout.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static const char stat_usage[] =
    "usage: membudget stat PID [--prometheus | --json]\n"
    "       membudget stat --all [--prometheus | --json]\n"
    "\n"
    "Prints the live figures of process PID, which runs with libmembudget.so:\n"
    "footprint (counter + baseline), % of the limit, peak, limit and where it came\n"
    "from, policy thresholds, policy, the sampled top site, and how fresh the\n"
    "figures are.  They come from the page the process rewrites at each monitor\n"
    "tick (MEMBUDGET_INTERVAL, 100ms) in /dev/shm/membudget-UID/PID, in a directory\n"
    "of its owner's that only the owner can read; a process publishes it from its\n"
    "first tick after half a second of life, so a younger one is not found yet.\n"
    "A page that is not a regular file owned by the process's owner is refused.\n"
    "Text from the page is escaped: control characters as \\xNN here, per JSON\n"
    "and the exposition format with --json and --prometheus.\n"
    "\n"
    "\"updated\" says how old the figures are, against the bound on their age (the\n"
    "time within which a page is rewritten, idle or not); figures older than\n"
    STRINGIFY(LIVE_STALE_FACTOR) " times the bound are marked STALE, not current: the process is\n"
    "stopped or stuck, or its library does not publish while it is idle.\n"
    "\n"
    "The top site is the allocation stack whose sampled allocations stand for the\n"
    "most live bytes (an estimate: one allocation in every MEMBUDGET_SAMPLE bytes\n"
    "records its stack); its frames are named here, from the files the process\n"
    "maps, as `membudget report` names them.  \"not sampled\" with\n"
    "MEMBUDGET_SAMPLE=0, \"-\" for a process whose library predates it.\n"
    "\n"
    "  --all          every process running with the library that this user can\n"
    "                 read (root: every user's), largest footprint first; pages of\n"
    "                 processes that are gone are removed\n"
    "  --prometheus   Prometheus text exposition format instead: one exposition,\n"
    "                 each metric's HELP and TYPE once, a sample per process\n"
    "                 labelled pid and comm (for node_exporter's textfile\n"
    "                 collector: write to a temporary file in its directory, then\n"
    "                 rename it to NAME.prom)\n"
    "  --json         one JSON object instead (with --all: one document listing\n"
    "                 every process's object)\n"
    "  -h, --help     this text\n"
    "\n"
    "exit status: 0; 1 when PID has no readable live statistics (with --all: when\n"
    "the page directory cannot be read); 2 bad arguments.\n";

enum { OPT_PROMETHEUS = 256, OPT_JSON, OPT_ALL };

static pid_t parse_pid(const char *sub, const char *s) {
    uint64_t v;
    if (!cli_parse_uint(s, 1, INT_MAX, &v))
        cli_usage_error(sub, "PID '%s' is not valid (expected a process id: a whole number from 1)",
                        s);
    return (pid_t)v;
}

/* ---- stat ------------------------------------------------------------------ */

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

/* When the figures were written, against the bound on their age
 * (livestats.h). */
static void print_updated(const struct mb_statspage *p) {
    uint64_t age_ns = live_age_ns(p);
    double bound = (double)LIVE_BOUND_NS / 1e9;
    printf("%-11s %.1f s ago", "updated", (double)age_ns / 1e9);
    switch (live_age_of(age_ns)) {
    case LIVE_AGE_CURRENT:
        printf(", within the %g s bound", bound);
        break;
    case LIVE_AGE_LATE:
        printf(", past the %g s bound", bound);
        break;
    case LIVE_AGE_STALE:
        printf(", STALE: past %g s, %d times the %g s bound", (double)LIVE_STALE_NS / 1e9,
               LIVE_STALE_FACTOR, bound);
        break;
    }
    printf(" (update %" PRIu64 ", %.1f s after start)\n", p->updates, (double)p->uptime_ns / 1e9);
}

/* The line that says, before the figures, that they are not current. */
static void print_stale_warning(const struct mb_statspage *p) {
    uint64_t age = live_age_ns(p);
    if (live_age_of(age) != LIVE_AGE_STALE) return;
    printf("%-11s these figures are %.0f s old, not current: the process is stopped or stuck, "
           "or its library does not publish while it is idle\n",
           "STALE", (double)age / 1e9);
}

/* Why the machine or the container asks for a policy, when it does (the
 * appended outside_* figures: zero on pages written before them). */
static void print_outside(const struct mb_statspage *p) {
    static const char *const sources[] = {"none",         "memory PSI",   "MemAvailable",
                                          "cgroup usage", "cgroup limit", "the kernel"};
    if (p->outside_policy == 0) return;
    char a[32], b[32];
    printf("%-11s %s, asked by %s: ", "outside", p->outside_policy >= 2 ? "strict" : "conservative",
           p->outside_source < sizeof sources / sizeof *sources ? sources[p->outside_source]
                                                                : "an unknown source");
    switch (p->outside_source) {
    case 1:
        printf("some avg10 %.2f%%, full avg10 %.2f%%\n", (double)p->psi_some / 100,
               (double)p->psi_full / 100);
        break;
    case 2:
        printf("%s available of %s\n", mb_bytes_text(a, sizeof a, p->mem_available_bytes),
               mb_bytes_text(b, sizeof b, p->mem_total_bytes));
        break;
    case 3:
        printf("%s used, limit %s\n", mb_bytes_text(a, sizeof a, p->cgroup_usage_bytes),
               mb_bytes_text(b, sizeof b, p->cgroup_bytes));
        break;
    case 5: /* macOS */
        printf("kern.memorystatus_vm_pressure_level %s\n",
               p->outside_policy >= 2 ? "critical" : "warning");
        break;
    default: printf("source %" PRIu64 "\n", p->outside_source); break;
    }
}

static void print_stat(const struct live_process *lp) {
    const struct mb_statspage *p = &lp->page;
    char a[32], b[32], c[32], cmdline[256];
    stat_read_cmdline(lp->pid, cmdline, sizeof cmdline);
    printf("%-11s %ld (", "pid", (long)lp->pid);
    term(p->comm);
    printf(")%s", cmdline[0] ? ": " : "");
    term(cmdline);
    putchar('\n');
    print_stale_warning(p);
    printf("%-11s %s (%" PRIu64 " bytes), %.1f%% of the limit\n", "footprint",
           mb_bytes_text(a, sizeof a, p->footprint_bytes), p->footprint_bytes,
           stat_limit_percent(p));
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
    print_outside(p);
    printf("%-11s ", "state");
    term(p->state);
    printf(", %u %s\n", p->pages, p->pages == 1 ? "page" : "pages");
    print_top_site(lp);
    print_updated(p);
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

/* What `stat --all` could not show: below the text, on stderr beside the
 * exposition (the JSON document counts them itself). */
static void stat_all_notes(const struct live_scan *scan, FILE *out) {
    const char *prefix = out == stderr ? "membudget stat: " : "(";
    const char *suffix = out == stderr ? "" : ")";
    if (scan->denied != 0)
        fprintf(out, "%s%zu %s of other users not shown: owner-only%s\n", prefix, scan->denied,
                scan->denied == 1 ? "directory or page" : "directories or pages", suffix);
    if (scan->refused != 0) {
        char why[sizeof scan->refused_why];
        tx_term_buf(why, sizeof why, scan->refused_why, sizeof why);
        fprintf(out, "%s%zu %s refused: %s%s%s\n", prefix, scan->refused,
                scan->refused == 1 ? "page" : "pages", why, scan->refused > 1 ? ", ..." : "",
                suffix);
    }
}

/* `stat --all`: every process this user may read, in one output. */
static int stat_all(bool prometheus, bool json) {
    struct live_scan scan;
    if (live_scan(&scan) != 0) {
        cli_error("stat", "cannot read %s: %s", MB_STATSPAGE_ROOT, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    int status = CLI_EXIT_OK;
    if (json) {
        stat_json_all(&scan);
    } else if (prometheus) {
        if (!stat_prometheus(scan.procs, scan.count)) {
            cli_error("stat", "out of memory for %zu processes", scan.count);
            status = CLI_EXIT_FAILURE;
        }
    } else {
        for (size_t i = 0; i < scan.count; i++) {
            if (i > 0) putchar('\n');
            print_stat(&scan.procs[i]);
        }
        if (scan.count == 0)
            printf("(no process this user can read is running with libmembudget.so; a process "
                   "has a page from its first monitor tick after half a second)\n");
    }
    if (!json) stat_all_notes(&scan, prometheus ? stderr : stdout);
    live_scan_free(&scan);
    if (fflush(stdout) != 0) status = CLI_EXIT_FAILURE;
    return status;
}

int cmd_stat(int argc, char **argv) {
    static const struct option longopts[] = {
        {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
        {"json", no_argument, NULL, OPT_JSON},
        {"all", no_argument, NULL, OPT_ALL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "PID, --prometheus, --json, --all, --help";
    bool prometheus = false, json = false, all = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("stat", argc, argv, ":h", longopts, accepted)) != -1) {
        if (c == 'h') {
            fputs(stat_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (c == OPT_PROMETHEUS) prometheus = true;
        if (c == OPT_JSON) json = true;
        if (c == OPT_ALL) all = true;
    }
    if (prometheus && json)
        cli_usage_error("stat", "--prometheus and --json exclude each other (accepted: %s)",
                        accepted);
    if (all && optind < argc)
        cli_usage_error("stat", "--all and a PID ('%s') exclude each other (accepted: %s)",
                        argv[optind], accepted);
    if (all) return stat_all(prometheus, json);
    if (optind >= argc) cli_usage_error("stat", "no PID given, nor --all (accepted: %s)", accepted);
    if (optind + 1 < argc)
        cli_usage_error("stat", "unexpected argument '%s' (accepted: %s)", argv[optind + 1],
                        accepted);
    pid_t pid = parse_pid("stat", argv[optind]);
    struct live_process lp;
    struct live_error e;
    enum live_status status = live_read(pid, &lp, &e);
    if (status != LIVE_OK) return stat_failure(pid, status, &e);
    if (prometheus) {
        if (!stat_prometheus(&lp, 1)) {
            cli_error("stat", "out of memory");
            return CLI_EXIT_FAILURE;
        }
    } else if (json) {
        stat_json_object(&lp, "");
        putchar('\n');
    } else {
        print_stat(&lp);
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
