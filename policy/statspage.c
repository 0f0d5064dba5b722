/* The live-statistics page (see statspage.h).  Everything here may run inside
 * an allocation: raw system calls only, no allocation, no stdio, and no lock
 * that anyone waits for — an update that finds another in progress is skipped,
 * since the next tick brings fresher figures anyway. */
#include "policy/statspage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "alloc/os.h"
#include "policy/budget.h"
#include "policy/config.h"
#include "policy/machine.h"
#include "policy/modules.h"
#include "policy/monitor.h"
#include "policy/pressure.h"
#include "policy/sample.h"

/* The top site (statspage.h): a full pass over the recorded sites at most this
 * often, and in between only the hint the sampler keeps (mb_sample_top_site). */
#define TOP_RESCAN_NS (500 * 1000 * 1000ull)
/* A new top site's frames are looked up in the mappings (mb_maps_each) at most this often:
 * two sites taking turns cannot make every tick read the maps. */
#define TOP_RESOLVE_NS (250 * 1000 * 1000ull)
#define MAPS_CHUNK_BYTES 8192

static struct mb_statspage *page; /* this process's mapped page, or NULL */
static pid_t page_pid;            /* the pid in its file name */
static pid_t failed_pid;          /* creation failed in this process: no retry */
static bool wanted;               /* mb_statspage_start was called */
static bool verbose_failure;      /* say in one line when creation fails */
static uint64_t birth_ns;         /* start-up, or the fork: when this process began */
static _Atomic bool closed;       /* exit has begun: never create again */
static _Atomic int busy;          /* an update (or creation) is in progress */
static _Atomic uint32_t serving;  /* what a new page says in control.serving */

/* The published top site, its frames resolved to files; only touched under
 * `busy`, so one static copy is enough. */
static struct {
    uint32_t site; /* MB_SAMPLE_NO_SITE: none */
    uint32_t depth, frame_count, module_count;
    uint64_t since_unix_ns;
    uint64_t last_scan_ns, last_resolve_ns; /* monotonic; 0: never */
    uint64_t scan_ns, scans, resolve_ns;
    struct mb_statspage_frame frames[MB_STATSPAGE_TOP_FRAMES];
    char modules[MB_STATSPAGE_TOP_MODULES][MB_STATSPAGE_MODULE_PATH];
} top = {.site = MB_SAMPLE_NO_SITE};
static char maps_chunk[MAPS_CHUNK_BYTES];

/* The per-user directory of the process's effective uid (statspage.h), and
 * the page's path in it. */
static void dir_path(char *out, size_t cap) {
    mb_statspage_path(out, cap, os_statspage_root(), os_geteuid(), -1);
}

static void page_path(char *out, size_t cap, pid_t pid) {
    mb_statspage_path(out, cap, os_statspage_root(), os_geteuid(), pid);
}

static void unlink_path(const char *path) { os_unlinkat(AT_FDCWD, path); }

static void copy_text(char *dst, size_t cap, const char *src) {
    struct mb_buf b;
    mb_buf_init(&b, dst, cap);
    mb_buf_str(&b, src);
}

/* ---- the top site ------------------------------------------------------------ */

/* The module slot of path, added if there is room; MB_STATSPAGE_NO_MODULE. */
static uint32_t top_module(const char *path, size_t len) {
    if (len >= MB_STATSPAGE_MODULE_PATH) return MB_STATSPAGE_NO_MODULE;
    for (uint32_t m = 0; m < top.module_count; m++)
        if (strncmp(top.modules[m], path, len) == 0 && top.modules[m][len] == '\0') return m;
    if (top.module_count == MB_STATSPAGE_TOP_MODULES) return MB_STATSPAGE_NO_MODULE;
    memcpy(top.modules[top.module_count], path, len);
    top.modules[top.module_count][len] = '\0';
    return top.module_count++;
}


/* One mapping (mb_maps_each): the frames it holds get their file and file
 * offset. */
static void top_maps_line(void *ctx, const struct mb_maps_line *l) {
    (void)ctx;
    if (l->path[0] != '/') return; /* anonymous, [vdso], [heap]: no file */
    for (uint32_t f = 0; f < top.frame_count; f++) {
        struct mb_statspage_frame *fr = &top.frames[f];
        if (fr->module != MB_STATSPAGE_NO_MODULE || fr->address < l->start || fr->address >= l->end)
            continue;
        fr->module = top_module(l->path, strlen(l->path));
        if (fr->module != MB_STATSPAGE_NO_MODULE) fr->file_offset = l->offset + (fr->address - l->start);
    }
}

/* Makes site the published top: its frames, and the files they lie in. */
static void top_resolve(uint32_t site) {
    struct mb_site_view v;
    top.site = site;
    top.since_unix_ns = os_realtime_ns();
    top.frame_count = top.module_count = 0;
    top.depth = 0;
    memset(top.frames, 0, sizeof top.frames);
    memset(top.modules, 0, sizeof top.modules);
    if (!mb_sample_site(site, &v)) return;
    top.depth = v.depth;
    top.frame_count = v.depth < MB_STATSPAGE_TOP_FRAMES ? v.depth : MB_STATSPAGE_TOP_FRAMES;
    for (uint32_t f = 0; f < top.frame_count; f++)
        top.frames[f] = (struct mb_statspage_frame){.address = v.frames[f],
                                                    .module = MB_STATSPAGE_NO_MODULE};
    mb_maps_each(maps_chunk, sizeof maps_chunk, top_maps_line, NULL);
}

/* Chooses the top site at a tick (before the page's sequence counter is
 * bumped: a lookup in the maps must not keep readers waiting). */
static void top_refresh(void) {
    if (mb_sample_rate() == 0) {
        top.site = MB_SAMPLE_NO_SITE;
        return;
    }
    uint64_t now = os_now_ns();
    bool full = top.last_scan_ns == 0 || now - top.last_scan_ns >= TOP_RESCAN_NS;
    uint32_t best = mb_sample_top_site(full, top.site);
    if (full) {
        uint64_t done = os_now_ns();
        top.scan_ns = done - now;
        top.scans++;
        top.last_scan_ns = done;
    }
    if (best == top.site) return;
    if (best == MB_SAMPLE_NO_SITE) { /* no live sample left anywhere */
        top.site = MB_SAMPLE_NO_SITE;
        return;
    }
    if (top.site != MB_SAMPLE_NO_SITE && top.last_resolve_ns != 0 &&
        now - top.last_resolve_ns < TOP_RESOLVE_NS)
        return; /* the last top stays a little longer */
    top_resolve(best);
    top.last_resolve_ns = os_now_ns();
    top.resolve_ns = top.last_resolve_ns - now;
}

static void top_fill(struct mb_statspage *p) {
    struct mb_site_view v;
    p->sample_rate_bytes = mb_sample_rate();
    p->top_scan_ns = top.scan_ns;
    p->top_scans = top.scans;
    p->top_resolve_ns = top.resolve_ns;
    if (top.site == MB_SAMPLE_NO_SITE || !mb_sample_site(top.site, &v)) {
        p->top_site = 0;
        p->top_est_bytes = p->top_est_objects = p->top_live_samples = 0;
        p->top_live_sampled_bytes = p->top_since_unix_ns = 0;
        p->top_depth = p->top_frame_count = p->top_module_count = 0;
        return;
    }
    bool changed = p->top_site != top.site + 1 || p->top_since_unix_ns != top.since_unix_ns;
    p->top_site = top.site + 1;
    p->top_est_bytes = v.est_bytes;
    p->top_est_objects = v.est_objects_1024 / 1024;
    p->top_live_samples = v.live_samples;
    p->top_live_sampled_bytes = v.live_bytes;
    if (!changed) return; /* the frames and files are those of the last update */
    p->top_since_unix_ns = top.since_unix_ns;
    p->top_depth = top.depth;
    p->top_frame_count = top.frame_count;
    p->top_module_count = top.module_count;
    memcpy(p->top_frames, top.frames, sizeof p->top_frames);
    memcpy(p->top_modules, top.modules, sizeof p->top_modules);
}

/* ---- the page -------------------------------------------------------------------- */

/* The thresholds the page carries (policy/stats_list.h), as computed. */
#define COPY_THRESHOLD(stem, label, zero, page, help)                                              \
    MB_IF_PAGE_##page(p->stem##_bytes = lim->stem##_bytes;)

/* The machine's and the container's memory as last read (policy/machine.h). */
static void outside_fill(struct mb_statspage *p) {
    struct mb_machine_reading r;
    struct mb_outside o;
    mb_machine_last(&r, &o);
    p->outside_policy = o.level;
    p->outside_source = o.source;
    p->psi_some = r.psi_some_avg10;
    p->psi_full = r.psi_full_avg10;
    p->mem_available_bytes = r.mem_available_bytes;
    p->mem_total_bytes = r.mem_total_bytes;
    p->cgroup_usage_bytes = r.cgroup_usage_bytes;
}

/* One update of the changing part, under the sequence counter. */
static void fill(struct mb_statspage *p) {
    top_refresh();

    uint64_t seq = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);

    const struct mb_config *cfg = mb_pressure_config();
    const struct mb_limits *lim = mb_pressure_limits();
    struct mb_os_view view;
    mb_monitor_last_view(&view);
    uint64_t events = 0;
    mb_pressure_events(NULL, 0, &events);
    uint64_t footprint = mb_monitor_footprint();
    enum mb_policy policy = mb_pressure_policy();

    p->updated_unix_ns = os_realtime_ns();
    p->uptime_ns = os_now_ns() - mb_pressure_start_ns();
    p->updates++;
    p->footprint_bytes = footprint;
    if (footprint > p->footprint_peak_bytes) p->footprint_peak_bytes = footprint;
    p->counter_bytes = budget_counter();
    p->counter_peak_bytes = budget_peak();
    p->baseline_bytes = mb_monitor_baseline();
    p->os_bytes = view.os_bytes;
    p->limit_bytes = mb_pressure_kill_bytes();
    MB_STATS(MB_STATS_NONE, COPY_THRESHOLD, MB_STATS_NONE)
    p->policy_events_total = events;
    p->policy = (uint32_t)policy;
    p->pages = lim->pages;
    copy_text(p->policy_name, sizeof p->policy_name, mb_policy_name(policy));
    copy_text(p->action, sizeof p->action, mb_option_value_name(MB_OPT_ACTION, cfg->action));
    copy_text(p->state, sizeof p->state, mb_option_value_name(MB_OPT_STATE, lim->state));
    copy_text(p->footprint_source, sizeof p->footprint_source, mb_monitor_source_name());
    copy_text(p->limit_source, sizeof p->limit_source, lim->kill_source);
    top_fill(p);
    outside_fill(p);

    atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
}

/* Why the page could not be created, for the one line of report_failure. */
static const char *failure_why;
static long open_dir(void);

long mb_statspage_open_dir(const char **why) {
    const char *saved = failure_why;
    long fd = open_dir();
    if (why != NULL) *why = failure_why;
    failure_why = saved;
    return fd;
}

/* Opens the per-user directory, made 0700 if missing: a directory (no link
 * followed, never blocking) owned by our effective uid that no one else may
 * write, else -errno with failure_why set.  A directory someone else made or
 * opened to others is left as it is: we do not publish. */
static long open_dir(void) {
    char path[64];
    dir_path(path, sizeof path);
    long rc = os_mkdir(path, 0700);
    if (rc < 0 && rc != -EEXIST) {
        failure_why = "cannot make ";
        return rc;
    }
    long fd = os_open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) {
        failure_why = fd == -ENOTDIR || fd == -ELOOP ? "not a directory: " : "cannot open ";
        return fd;
    }
    struct stat st;
    rc = os_fstat((int)fd, &st);
    long euid = (long)os_geteuid();
    if (rc < 0)
        failure_why = "cannot examine ";
    else if (!S_ISDIR(st.st_mode))
        failure_why = "not a directory: ";
    else if ((long)st.st_uid != euid)
        failure_why = "owned by another user: ";
    else if ((st.st_mode & 022) != 0)
        failure_why = "writable by other users: ";
    else
        return fd;
    os_close((int)fd);
    return rc < 0 ? rc : -EPERM;
}

/* Creates, maps and fills the page of the calling process.  0 or -errno. */
static int create(void) {
    pid_t pid = os_getpid();
    char path[64], name[24];
    page_path(path, sizeof path, pid);
    struct mb_buf b;
    mb_buf_init(&b, name, sizeof name);
    mb_buf_u64(&b, (uint64_t)pid);
    long dir = open_dir();
    if (dir < 0) return (int)dir;
    const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    long fd = os_openat((int)dir, name, flags, 0600);
    if (fd == -EEXIST) {
        /* Left by an earlier program this process exec'd from, or by a dead
         * process of the same pid: in our own directory, ours to remove. */
        os_unlinkat((int)dir, name);
        fd = os_openat((int)dir, name, flags, 0600);
    }
    os_close((int)dir);
    if (fd < 0) {
        failure_why = "cannot create a page in ";
        return (int)fd;
    }
    long rc = os_file_allocate((int)fd, MB_STATSPAGE_FILE_BYTES);
    long addr = rc < 0 ? rc
                       : os_mmap(NULL, MB_STATSPAGE_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
                                 (int)fd, 0);
    os_close((int)fd);
    if (rc < 0 || os_failed(addr)) {
        unlink_path(path);
        return rc < 0 ? (int)rc : (int)addr;
    }
    struct mb_statspage *p = (struct mb_statspage *)addr;
    p->version = MB_STATSPAGE_VERSION;
    p->size = (uint32_t)sizeof *p;
    p->pid = (uint32_t)pid;
    p->start_ticks = os_start_time();
    p->created_unix_ns = os_realtime_ns();
    char comm[32];
    os_read_comm(comm, sizeof comm);
    copy_text(p->comm, sizeof p->comm, comm);
    atomic_store_explicit(&p->control.serving, atomic_load_explicit(&serving, memory_order_relaxed),
                          memory_order_relaxed);
    fill(p);
    __atomic_store_n(&p->magic, MB_STATSPAGE_MAGIC, __ATOMIC_RELEASE);
    page = p;
    page_pid = pid;
    return 0;
}

static bool busy_try(void) { return !atomic_exchange_explicit(&busy, 1, memory_order_acquire); }

static void busy_release(void) { atomic_store_explicit(&busy, 0, memory_order_release); }

void mb_statspage_start(bool verbose) {
    verbose_failure = verbose;
    birth_ns = os_now_ns();
    wanted = true;
}

static void report_failure(int err) {
    char line[200], dir[64];
    struct mb_buf b;
    dir_path(dir, sizeof dir);
    mb_buf_init(&b, line, sizeof line);
    mb_buf_str(&b, "membudget: live statistics unavailable: ");
    mb_buf_str(&b, failure_why != NULL ? failure_why : "cannot create a page in ");
    mb_buf_str(&b, dir);
    mb_buf_str(&b, " (errno ");
    mb_buf_u64(&b, (uint64_t)err);
    mb_buf_char(&b, ')');
    mb_sink_line(NULL, b.data, b.len);
}

/* With busy held: the update itself. */
static void update_held(void) {
    if (page != NULL) {
        fill(page);
    } else if (failed_pid != os_getpid() && os_now_ns() - birth_ns >= MB_STATSPAGE_MIN_AGE_NS) {
        int rc = create();
        if (rc != 0) {
            failed_pid = os_getpid();
            if (verbose_failure) report_failure(-rc);
        }
    }
}

void mb_statspage_update(void) {
    if (!wanted || atomic_load_explicit(&closed, memory_order_relaxed)) return;
    if (!busy_try()) return;
    update_held();
    busy_release();
}

void mb_statspage_publish(void) {
    if (!wanted) return;
    /* An update in progress in another thread takes microseconds and never
     * blocks: wait it out, so that this one is not skipped (a bounded wait:
     * a thread stopped in the middle of one costs this update, nothing else). */
    for (unsigned tries = 0; !busy_try(); tries++) {
        if (tries == 100000) return;
        os_yield();
    }
    if (!atomic_load_explicit(&closed, memory_order_relaxed)) update_held();
    busy_release();
}

void mb_statspage_close(void) {
    atomic_store_explicit(&closed, true, memory_order_relaxed);
    /* Wait out an update in progress (it never blocks) so that a creation in
     * another thread cannot follow the removal.  Bounded: exit() called by a
     * signal handler that interrupted this very thread inside an update would
     * wait for itself; the page is then left for readers to remove. */
    for (unsigned tries = 0; !busy_try(); tries++) {
        if (tries == 100000) return;
        os_yield();
    }
    if (page != NULL && page_pid == os_getpid()) {
        char path[64];
        page_path(path, sizeof path, page_pid);
        unlink_path(path);
    }
    busy_release();
}

void mb_statspage_atfork_child(void) {
    /* The parent's page is shared with the parent: unmap it unwritten (the
     * child is single-threaded here).  The child's own page comes at its first
     * tick. */
    if (page != NULL) os_munmap(page, MB_STATSPAGE_FILE_BYTES);
    page = NULL;
    page_pid = 0;
    failed_pid = 0;
    birth_ns = os_now_ns();
    /* The sites and their addresses are the parent's, valid here too; the
     * child's own page gets them at its first tick. */
    top.last_scan_ns = 0;
    atomic_store_explicit(&busy, 0, memory_order_relaxed);
}

struct mb_statspage_control *mb_statspage_control_area(void) {
    struct mb_statspage *p = page;
    return p != NULL && page_pid == os_getpid() ? &p->control : NULL;
}

uint64_t mb_statspage_due_ns(void) { return birth_ns + MB_STATSPAGE_MIN_AGE_NS; }

void mb_statspage_set_serving(uint32_t value) {
    atomic_store_explicit(&serving, value, memory_order_relaxed);
    struct mb_statspage_control *c = mb_statspage_control_area();
    if (c != NULL) atomic_store_explicit(&c->serving, value, memory_order_release);
}
