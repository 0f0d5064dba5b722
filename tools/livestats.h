/* Reading the live-statistics pages (policy/statspage.h) of processes running
 * with the library, for `membudget stat`, `membudget top` and `membudget run`.
 * A page is copied under its sequence counter, so a reader never sees half an
 * update; pages of processes that are gone (the process exited without exit(),
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
    struct mb_statspage page; /* a consistent copy; fields past page.size are zero */
};

enum live_status {
    LIVE_OK = 0,
    LIVE_NONE,   /* no page: not running with the library, or no tick yet */
    LIVE_DENIED, /* a page exists but belongs to another user */
    LIVE_STALE,  /* the page's process is gone; the page was removed if we could */
    LIVE_BAD     /* not a page this version can read */
};

/* Reads the page of pid.  *err receives errno for LIVE_DENIED and LIVE_BAD. */
enum live_status live_read(pid_t pid, struct live_process *out, int *err);

/* Every readable live page in the directory, sorted by footprint, largest
 * first.  procs is allocated; free it with live_scan_free. */
struct live_scan {
    struct live_process *procs;
    size_t count;
    size_t denied;  /* pages of other users, not readable */
    size_t cleaned; /* stale pages removed */
};
int live_scan(struct live_scan *out); /* 0, or -1 with errno (no directory) */
void live_scan_free(struct live_scan *scan);

/* Removes the page of pid if its process is gone; true when it did. */
bool live_clean_if_stale(pid_t pid);

/* The page's path for pid. */
void live_page_path(char *out, size_t cap, pid_t pid);

/* ---- the sampled top site ---------------------------------------------------
 * Symbolized here, in the reader, never in the watched process: each frame's
 * file and file offset (recorded in the page) give the file's load bias, and
 * tools/report_symbols.c (libdw) names the function and the line, exactly as
 * `membudget report` does for a dump.  Without libdw at build time, or when a
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
