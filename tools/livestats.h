/* Reading the live-statistics pages (policy/statspage.h) of processes running
 * with the library, for `membudget stat`, `membudget top` and `membudget run`.
 * Everything in a page is another process's word (DESIGN §11): a page is
 * owner-checked, copied with pread under its sequence counter (a reader never
 * sees half an update, and a file cut short under it costs no signal), and
 * checked against the layout before anything in it is used; pages of processes that are gone (the process exited without exit(),
 * or its pid now names another process, or it exec'd a program without the
 * library) are removed as they are found. */
#ifndef MEMBUDGET_TOOLS_LIVESTATS_H
#define MEMBUDGET_TOOLS_LIVESTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/statspage.h"

struct live_process {
    pid_t pid;
    uid_t uid;                /* the owner of the process and of its page */
    struct mb_statspage page; /* a checked copy; fields past page.size are zero */
};

enum live_status {
    LIVE_OK = 0,
    LIVE_NONE,    /* no page: not running with the library, or no tick yet */
    LIVE_DENIED,  /* a page may exist, in another user's directory */
    LIVE_STALE,   /* the page's process is gone; the page was removed if we could */
    LIVE_BAD,     /* not a page this version can read, or not a consistent one */
    LIVE_REFUSED  /* not to be trusted: not a regular file, or not the owner's */
};

/* Why a page was not read: errno where there is one, and one line (no
 * newline) saying what was wrong, for LIVE_BAD and LIVE_REFUSED. */
struct live_error {
    int err;
    char why[240];
};

/* The page's figures and names, from the list (policy/stats_list.h): each
 * number with its `stat --json` member and Prometheus metric, each name with
 * its member and label, in the page's order. */
struct live_figure {
    const char *name;    /* the field, its --json member; metric membudget_<name> */
    size_t offset, size; /* in struct mb_statspage; size 8 or 4 */
    bool json;           /* a member of `stat --json` */
    const char *prom;    /* "gauge" or "counter" ("_total" added to the name unless
                            it ends so); NULL: not a metric */
    unsigned top;        /* its column in `membudget top`, from 1; 0: none */
    const char *title;   /* that column's head */
    const char *help;
};
struct live_text {
    const char *name;    /* the field */
    size_t offset, size; /* in struct mb_statspage; NUL-terminated within size */
    const char *key;     /* its `stat --json` member */
    bool prom;           /* a label of membudget_info, named key */
};
extern const struct live_figure live_figures[];
extern const size_t live_figure_count;
extern const struct live_text live_texts[];
extern const size_t live_text_count;
/* Whether p's writer had the figure (one appended after its time did not). */
bool live_figure_present(const struct mb_statspage *p, const struct live_figure *f);
uint64_t live_figure_value(const struct mb_statspage *p, const struct live_figure *f);
const char *live_text_value(const struct mb_statspage *p, const struct live_text *t);

/* How old a page's figures may be.  A library that publishes when idle states
 * its bound in policy/statspage.h (MB_STATSPAGE_PUBLISH_NS: the page is
 * rewritten at least that often, idle or not); one of an older library may
 * not, and then the bound is 1 s, what readers expect of a process that runs.
 * Figures older than the bound are marked as such; older than
 * LIVE_STALE_FACTOR times the bound they are called stale, not current (the
 * process is stopped, stuck, or its library does not publish when idle). */
#ifdef MB_STATSPAGE_PUBLISH_NS
#define LIVE_BOUND_NS ((uint64_t)(MB_STATSPAGE_PUBLISH_NS))
#else
#define LIVE_BOUND_NS 1000000000ull
#endif
#define LIVE_STALE_FACTOR 5
#define LIVE_STALE_NS (LIVE_STALE_FACTOR * LIVE_BOUND_NS)

enum live_age { LIVE_AGE_CURRENT, LIVE_AGE_LATE, LIVE_AGE_STALE };

/* Nanoseconds since p's figures were written (CLOCK_REALTIME; 0 when the
 * writer's clock is ahead of ours), and what that age makes them. */
uint64_t live_age_ns(const struct mb_statspage *p);
enum live_age live_age_of(uint64_t age_ns);

/* Reads the page of pid: the process's owner (its effective uid) must own
 * the directory, which no one else may write, and the page, a regular file
 * with one link; it is opened O_NONBLOCK|O_NOFOLLOW, copied with pread under
 * its sequence counter (never mapped) and checked by live_check. */
enum live_status live_read(pid_t pid, struct live_process *out, struct live_error *e);

/* The checks of a page's bytes (len of them, as read from its file), for a
 * process pid: magic, version, pid, a size within the file and the layout,
 * every string NUL-terminated within its field, every count and index of the
 * top site within its array and the frames within the recorded depth, every
 * module path absolute.  On LIVE_OK *out holds the copy, zero past its size. */
enum live_status live_check(const void *bytes, size_t len, pid_t pid, struct mb_statspage *out,
                            struct live_error *e);

/* The consistent copy of the page open as fd: its bytes read with pread,
 * kept when the sequence counter was even and unchanged around the read;
 * then live_check.  A page that shrinks or changes under the read is only
 * read again (at most a few hundred times, then LIVE_BAD). */
enum live_status live_read_fd(int fd, pid_t pid, struct mb_statspage *out, struct live_error *e);

/* Every readable live page, sorted by footprint, largest first: the pages of
 * every per-user directory this user may read (as root, every user's; each
 * page checked against its directory's uid as live_read checks it), pages of
 * processes that are gone skipped and removed.  A process younger than
 * MB_STATSPAGE_MIN_AGE_NS has no page yet and is not listed.  procs is
 * allocated; free it with live_scan_free. */
struct live_scan {
    struct live_process *procs;
    size_t count;
    size_t denied;        /* directories of other users, not readable */
    size_t refused;       /* pages refused (live_read's LIVE_REFUSED) */
    char refused_why[240]; /* the first refusal's reason */
    size_t cleaned;       /* stale pages removed */
};
int live_scan(struct live_scan *out); /* 0, or -1 with errno (no directory) */
void live_scan_free(struct live_scan *scan);

/* Removes the page of pid if its process is gone; true when it did. */
bool live_clean_if_stale(pid_t pid);

/* The per-user directory of uid, and the page's path in it for pid. */
void live_dir_path(char *out, size_t cap, uid_t uid);
void live_page_path(char *out, size_t cap, uid_t uid, pid_t pid);

/* The effective uid of pid, from /proc/<pid>/status; false when it cannot
 * be read (errno: ENOENT when there is no such process). */
bool live_process_owner(pid_t pid, uid_t *uid);

/* ---- the sampled top site ---------------------------------------------------
 * Symbolized here, in the reader, never in the watched process: each frame's
 * file and file offset (recorded in the page) give the file's load bias, and
 * tools/report_symbols.c (libdw) names the function and the line, exactly as
 * `membudget report` does for a dump.  A module path comes from the page: it
 * is handed to the symbolizer only when the process maps a file of that path
 * (/proc/<pid>/maps) and the path opens, without following a link or
 * blocking, as a regular file.  Without libdw at build time, or when a
 * file cannot be read, a frame is named module+offset. */
enum live_top_state {
    LIVE_TOP_UNKNOWN = 0, /* the page's writer predates the top site: "-" */
    LIVE_TOP_OFF,         /* sampling is off (MEMBUDGET_SAMPLE=0): "not sampled" */
    LIVE_TOP_NONE,        /* sampling, but no live sample at a recorded site yet */
    LIVE_TOP_OK
};

struct live_top_frame {
    uint64_t address;       /* in the watched process */
    const char *module;     /* the file's path; "" when in no file */
    uint64_t module_offset; /* virtual address in the file (its file offset when
                               the file cannot be read) */
    char name[160];         /* function, else "file+0xoffset", else "0xaddress" */
    bool symbolized;        /* name is a function */
    char file[256];         /* source file, "" when unknown */
    int line;
};

struct live_top_site {
    enum live_top_state state;
    uint64_t rate_bytes; /* the sampling rate */
    uint64_t est_bytes, est_objects, live_samples, live_sampled_bytes;
    uint64_t scan_ns;    /* what the writer's last full pass over its sites took */
    uint64_t scans;      /* full passes so far */
    uint64_t resolve_ns; /* what its last lookup of the frames' files took */
    uint32_t depth;     /* frames recorded for the site in the process */
    size_t frame_count; /* of them here, innermost first */
    struct live_top_frame frames[MB_STATSPAGE_TOP_FRAMES];
    char label[400]; /* up to 3 innermost frame names, "a < b < c"; or the state's word */
};

/* Fills *out from the page of lp (and the files it names).  The label of a
 * state other than LIVE_TOP_OK: "-", "not sampled", "none yet". */
void live_top_site(const struct live_process *lp, struct live_top_site *out);
const char *live_top_state_name(enum live_top_state s); /* "unknown", "off", "none", "ok" */

#endif
