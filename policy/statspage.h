/* The live-statistics page (DESIGN §5, §9): a small fixed binary record that a
 * process running with the library publishes as <root>/membudget-<uid>/<pid>
 * for `membudget stat` and `membudget top`, root being the platform's
 * (os_statspage_root, alloc/os.h: /dev/shm on Linux).
 *
 * The per-user directory (uid: the process's effective uid) is made mode 0700
 * and used only when it is a real directory (no link followed) owned by that
 * uid that no one else may write: another user cannot put a file where a
 * reader looks for this user's pages, so a reader that finds one knows who
 * wrote it.  When the directory is anything else (another user's, a FIFO, a
 * link, open to others) the process does not publish, says so in one line
 * with MEMBUDGET_VERBOSE, and runs on.  The page is created in it
 * O_CREAT|O_EXCL|O_NOFOLLOW with mode 0600; it is mapped shared once and then
 * rewritten in memory at monitor ticks under a sequence counter, so a tick
 * costs no system call.
 *
 * The page is created at the first monitor tick once the process (or the fork
 * child) has run for MB_STATSPAGE_MIN_AGE_NS, not at start-up: short-lived
 * processes (a shell running a command, a forked child that soon calls _exit)
 * never make one, and so never leave one behind.  It is unlinked at exit; a
 * process that ends without exit() (a budget death, a signal, _exit as dash
 * uses) leaves it behind, and readers remove the pages of processes that are
 * gone.
 *
 * This header is also the format the reader in tools/ compiles against: fields
 * are only ever appended, and `size` says how much of the record a writer
 * filled. */
#ifndef MEMBUDGET_POLICY_STATSPAGE_H
#define MEMBUDGET_POLICY_STATSPAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/os.h"

#define MB_STATSPAGE_ROOT os_statspage_root()
#define MB_STATSPAGE_USER_PREFIX "membudget-" /* + the decimal uid: a user's directory */
/* In it, each page's name is the decimal pid. */

/* "<root>/membudget-<uid>", and with pid >= 0 "<root>/membudget-<uid>/<pid>":
 * the one place the writer (policy/statspage.c) and the readers (tools/) make
 * the names.  Returns false, with what fits NUL-terminated, when cap is too
 * small (cap >= 1). */
static inline bool mb_statspage_path(char *out, size_t cap, const char *root, uint64_t uid,
                                     int64_t pid) {
    char digits[2][24];
    uint64_t values[2] = {uid, pid < 0 ? 0 : (uint64_t)pid};
    const char *parts[5] = {root, "/" MB_STATSPAGE_USER_PREFIX, digits[0], "/", digits[1]};
    for (int i = 0; i < 2; i++) {
        char *d = digits[i] + sizeof digits[i];
        *--d = '\0';
        uint64_t v = values[i];
        do {
            *--d = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        parts[2 + 2 * i] = d;
    }
    size_t len = 0;
    for (int i = 0; i < (pid < 0 ? 3 : 5); i++)
        for (const char *s = parts[i]; *s != '\0'; s++) {
            if (len + 1 >= cap) {
                out[len] = '\0';
                return false;
            }
            out[len++] = *s;
        }
    out[len] = '\0';
    return true;
}
#define MB_STATSPAGE_MAGIC 0x3170626du /* "mbp1" in memory on little-endian */
#define MB_STATSPAGE_VERSION 1u
#define MB_STATSPAGE_FILE_BYTES 4096u        /* the file's length: one page */
#define MB_STATSPAGE_MIN_AGE_NS 500000000ull /* no page before 0.5 s of life */
/* The publish bound: with MEMBUDGET_CONTROL=on (the default), a process's
 * control thread republishes its page at least this often, idle or not, so
 * a page's figures are never older than this (plus one update). */
#define MB_STATSPAGE_PUBLISH_NS 1000000000ull

/* The sampled top site (appended fields, below). */
#define MB_STATSPAGE_TOP_FRAMES 8      /* innermost frames of the site published */
#define MB_STATSPAGE_TOP_MODULES 4     /* distinct files those frames lie in */
#define MB_STATSPAGE_MODULE_PATH 256   /* a longer path is not recorded */
#define MB_STATSPAGE_NO_MODULE 0xffu   /* a frame in no recorded file */

/* The control area (appended after the top site): how `membudget state`,
 * `pages`, `release` and `dump` ask a running process to act (DESIGN §11).
 * Anyone who may write the page (its owner, root) may write here, so the
 * process takes every field as hostile: it copies a request once, checks it,
 * acts, and only then answers.
 *
 *   commander: takes `lock` (CAS 0 -> its pid; the lock of a pid that no
 *              longer exists may be taken over), makes `request` odd (being
 *              written), writes op, arg and requester, makes `request` even
 *              again (posted: R) and wakes it (FUTEX_WAKE, shared); then waits
 *              on `done` until it reads R, a few seconds at most; reads the
 *              result; sets `lock` back to 0.
 *   process:   its control thread waits on `request` (FUTEX_WAIT, shared,
 *              at most MB_STATSPAGE_PUBLISH_NS); an even R that differs from
 *              `done` is a new request: op and arg copied, R read again (a
 *              change means a commander is writing: the copy is dropped),
 *              checked, acted on; result, result_bytes and result_text
 *              written, then `done` = R (release order) and woken.
 * An odd `request` is never served: a commander that died mid-write leaves
 * nothing half-read. */
enum mb_control_op {
    MB_CONTROL_NONE = 0,
    MB_CONTROL_STATE,   /* arg: 0 active, 1 inactive (enum mb_state) */
    MB_CONTROL_PAGES,   /* arg: the page count, 1..MB_CONTROL_PAGES_MAX */
    MB_CONTROL_RELEASE, /* arg: a public level (enum membudget_level, 1..4) */
    MB_CONTROL_DUMP,    /* arg: 0; result_text: the report's path */
    MB_CONTROL_OP_COUNT
};
#define MB_CONTROL_PAGES_MAX 1000000u
/* `serving`: what the process says of its control thread. */
#define MB_CONTROL_OFF 0u     /* MEMBUDGET_CONTROL=off, or a writer without control */
#define MB_CONTROL_SERVING 1u /* its thread takes commands */
#define MB_CONTROL_NO_THREAD 2u /* MEMBUDGET_CONTROL=on, but the thread could not start */
#define MB_CONTROL_TEXT 1280u
struct mb_statspage_control {
    _Atomic uint32_t serving;   /* written by the process */
    _Atomic uint32_t lock;      /* 0, or the pid of the commander holding it */
    _Atomic uint32_t request;   /* the futex word the process waits on */
    _Atomic uint32_t done;      /* the last request answered; commanders wait on it */
    uint32_t op;                /* enum mb_control_op */
    uint32_t requester;         /* the commander's pid, as it says */
    uint64_t arg;
    int32_t result;             /* 0, or an errno value */
    uint32_t reserved;
    uint64_t result_bytes;      /* release: bytes released; state/pages: the new kill threshold */
    uint64_t result_footprint;  /* the footprint after acting */
    char result_text[MB_CONTROL_TEXT]; /* NUL-terminated: a path, or why it failed */
};

/* One frame of the top site, in a form another process can symbolize: the
 * return address, and the file and file offset it was mapped from (read from
 * /proc/self/maps by the writer when the site became the top).  A reader
 * finds the segment of the file holding the offset, and so the load bias. */
struct mb_statspage_frame {
    uint64_t address;     /* return address in the process */
    uint64_t file_offset; /* of that address in top_modules[module] */
    uint32_t module;      /* index into top_modules; MB_STATSPAGE_NO_MODULE: none */
    uint32_t reserved;
};

#include "policy/stats_list.h"

/* The page rows of the list as fields (names: char name[size]). */
#define MB_STATSPAGE_FIGURE(name, page, ...) MB_PAGE_FIELD_##page(name)
#define MB_STATSPAGE_THRESHOLD(stem, label, zero, page, help) MB_PAGE_FIELD_##page(stem##_bytes)
#define MB_STATSPAGE_TEXT(name, size, key, prom) char name[size];
#define MB_STATSPAGE_FIGURE_APPENDED(name, page, ...) MB_PAGE_APPENDED_FIELD_##page(name)
#define MB_STATSPAGE_THRESHOLD_APPENDED(stem, label, zero, page, help)                             \
    MB_PAGE_APPENDED_FIELD_##page(stem##_bytes)

struct mb_statspage {
    /* ---- written once, at creation ----
     * magic is stored last, with release order: a reader that sees it sees
     * the rest of the header and one complete update. */
    uint32_t magic;
    uint32_t version;
    uint32_t size; /* sizeof(struct mb_statspage) of the writer */
    uint32_t pid;
    /* Field 22 of /proc/<pid>/stat (clock ticks after boot): a page whose pid
     * now names a process that started at another time is stale. */
    uint64_t start_ticks;
    uint64_t created_unix_ns;
    char comm[16]; /* /proc/self/comm at creation, NUL-terminated */

    /* ---- rewritten at every monitor tick ----
     * seq is odd while an update is in progress; a reader copies the record
     * and keeps the copy when seq was even and unchanged around the copy. */
    _Atomic uint64_t seq;
    /* The figures and names, from the list (policy/stats_list.h): its page
     * rows, in order, are this part of the first layout. */
    MB_STATS(MB_STATSPAGE_FIGURE, MB_STATSPAGE_THRESHOLD, MB_STATSPAGE_TEXT)

    /* ---- appended: the sampled top site (writers before it have a smaller
     * size; see MB_STATSPAGE_SIZE_TOP_SITE) ----
     * The recorded allocation site whose live samples stand for the most live
     * bytes (DESIGN §6), found at ticks from the sampler's tables without a
     * lock; counters may be mid-update, the figures are estimates. */
    uint64_t sample_rate_bytes;  /* MEMBUDGET_SAMPLE; 0: sampling is off */
    uint64_t top_est_bytes;      /* live bytes the site's samples stand for */
    uint64_t top_est_objects;    /* live objects they stand for */
    uint64_t top_live_samples;   /* the site's samples not yet freed */
    uint64_t top_live_sampled_bytes; /* those samples' own sizes */
    uint64_t top_since_unix_ns;  /* when this site became the published top */
    uint64_t top_scan_ns;        /* what the last full pass over the sites took */
    uint64_t top_scans;          /* full passes so far */
    uint64_t top_resolve_ns;     /* what the last lookup of frames in /proc/self/maps took */
    uint32_t top_site;           /* 1 + the site's slot in the sampler; 0: no site yet */
    uint32_t top_depth;          /* frames the sampler recorded for it */
    uint32_t top_frame_count;    /* of them in top_frames (<= MB_STATSPAGE_TOP_FRAMES) */
    uint32_t top_module_count;   /* entries of top_modules in use */
    struct mb_statspage_frame top_frames[MB_STATSPAGE_TOP_FRAMES]; /* innermost first */
    char top_modules[MB_STATSPAGE_TOP_MODULES][MB_STATSPAGE_MODULE_PATH]; /* file paths */

    /* ---- appended: the control area (MB_STATSPAGE_SIZE_CONTROL), written
     * by commanders and the control thread, outside the sequence counter ---- */
    struct mb_statspage_control control;

    /* ---- appended: the list's rows with page appended, in its order (a
     * reader shows one only when the writer's size covers it) ---- */
    MB_STATS(MB_STATSPAGE_FIGURE_APPENDED, MB_STATSPAGE_THRESHOLD_APPENDED, MB_STATS_NONE)
};

/* A page whose size reaches this has the top-site fields; an older writer's
 * page reads with them zero, and readers show the site as unknown. */
#define MB_STATSPAGE_SIZE_TOP_SITE                                                                 \
    (offsetof(struct mb_statspage, top_modules) + sizeof(((struct mb_statspage *)0)->top_modules))
/* A page whose size reaches this has the control area. */
#define MB_STATSPAGE_SIZE_CONTROL                                                                  \
    (offsetof(struct mb_statspage, control) + sizeof(struct mb_statspage_control))
/* The size of a page written before the top site was added. */
#define MB_STATSPAGE_SIZE_V1 offsetof(struct mb_statspage, sample_rate_bytes)

_Static_assert(sizeof(struct mb_statspage) <= MB_STATSPAGE_FILE_BYTES,
               "the record fits in the file");
/* Readers and tests (tests/cli/run.py) know the layout by these sizes. */
_Static_assert(MB_STATSPAGE_SIZE_V1 == 448, "the first layout is frozen");
_Static_assert(MB_STATSPAGE_SIZE_TOP_SITE == 1752, "the top site's layout is frozen");
_Static_assert(offsetof(struct mb_statspage, control) == 1752 && MB_STATSPAGE_SIZE_CONTROL == 3088,
               "the control area's layout is frozen");
_Static_assert(offsetof(struct mb_statspage, updated_unix_ns) == 56 &&
                   offsetof(struct mb_statspage, strict_sync_bytes) == 152 &&
                   offsetof(struct mb_statspage, policy) == 168 &&
                   offsetof(struct mb_statspage, policy_name) == 176 &&
                   offsetof(struct mb_statspage, limit_source) == 256,
               "the list's page rows are the first layout, in its order");

/* Turns publishing on; from the constructor, after the policy has started.
 * verbose: when the page cannot be created (no /dev/shm, the directory not
 * this user's, ...), say so in one line on stderr; either way live statistics
 * are then unavailable for this process and nothing else changes. */
void mb_statspage_start(bool verbose);

/* From the monitor tick (any thread, possibly inside an allocation): creates
 * the page the first time, then copies the current figures into it.  Never
 * allocates, never waits: a second thread arriving during an update skips it. */
void mb_statspage_update(void);

/* The same from the library's own thread (policy/control.c), which must not
 * skip it: waits out an update in progress in another thread first. */
void mb_statspage_publish(void);

/* At exit: removes the page (the mapping stays valid until the process ends,
 * so a late tick from another thread writes harmlessly into it). */
void mb_statspage_close(void);

/* In the fork child: lets go of the parent's page without touching it. */
void mb_statspage_atfork_child(void);

/* This process's control area (NULL while it has no page of its own), for
 * the control thread (policy/control.h). */
struct mb_statspage_control *mb_statspage_control_area(void);
/* When the process may create its page (monotonic ns: start-up or fork, plus
 * MB_STATSPAGE_MIN_AGE_NS). */
uint64_t mb_statspage_due_ns(void);
/* What a new page says in control.serving (MB_CONTROL_*); set before the page
 * exists, by the code that starts the control thread. */
void mb_statspage_set_serving(uint32_t serving);

/* The per-user directory (<root>/membudget-<euid>), made 0700 when missing
 * and checked as the page's is (a real directory, ours, closed to others):
 * an O_DIRECTORY descriptor, or -errno with *why (when why is not NULL) saying
 * what was wrong ("owned by another user: ", followed by the path in a line).
 * The group files (policy/group.h) live there too. */
long mb_statspage_open_dir(const char **why);

#endif
