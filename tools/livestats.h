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

#endif
