/* Reading live-statistics pages (see livestats.h). */
#include "tools/livestats.h"

#include "tools/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef MB_TOOL_SYMBOLS
#include <gelf.h>

#include "tools/report_model.h"
#endif

void live_dir_path(char *out, size_t cap, uid_t uid) {
    mb_statspage_path(out, cap, MB_STATSPAGE_ROOT, uid, -1);
}

void live_page_path(char *out, size_t cap, uid_t uid, pid_t pid) {
    mb_statspage_path(out, cap, MB_STATSPAGE_ROOT, uid, pid);
}

static enum live_status say(struct live_error *e, enum live_status s, int err, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
static enum live_status say(struct live_error *e, enum live_status s, int err, const char *fmt,
                            ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof e->why, fmt, ap);
    va_end(ap);
    e->err = err;
    return s;
}

bool live_process_owner(pid_t pid, uid_t *uid) { return proc_owner(pid, uid); }

/* The state and start time of a process (tools/proc.h). */
static bool proc_stat_of(pid_t pid, char *state, uint64_t *start_ticks) {
    return proc_state_start(pid, state, start_ticks);
}

/* Calls fn with the path of each file mapping of the process until fn returns
 * true: -1 when its mappings cannot be read, else whether fn returned true. */
static int maps_paths(pid_t pid, bool (*fn)(void *ctx, const char *path), void *ctx) {
    return proc_maps_paths(pid, fn, ctx);
}

static bool names_page(void *ctx, const char *path) {
    const char *page = ctx;
    size_t n = strlen(page);
    return strncmp(path, page, n) == 0 && (path[n] == '\0' || path[n] == ' ');
}

/* Whether the process of a page is gone.  start_ticks 0: unknown (a page still
 * being created, or unreadable). */
static bool process_gone(pid_t pid, uint64_t start_ticks, const char *page_path) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    char state;
    uint64_t now_ticks;
    if (proc_stat_of(pid, &state, &now_ticks)) {
        if (state == 'Z' || state == 'X') return true;                 /* ended, not yet reaped */
        if (start_ticks != 0 && now_ticks != start_ticks) return true; /* pid reused */
    }
    /* The same process, now running a program without the library (it exec'd
     * with a cleaned environment): it no longer maps its page. */
    return start_ticks != 0 && maps_paths(pid, names_page, (void *)page_path) == 0;
}

/* Removes name in dir if it is still the file open as fd (not a new page that
 * a new process of the same pid made meanwhile). */
static bool remove_if_same(int dir, const char *name, int fd) {
    struct stat a, b;
    if (fstat(fd, &a) != 0 || fstatat(dir, name, &b, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) return false;
    return unlinkat(dir, name, 0) == 0;
}

/* ---- the page's figures and names (policy/stats_list.h) ---------------------- */

#define FIGURE_ROW(name, page, api, dump, json, prom, top, title, help)                            \
    MB_IF_PAGE_##page({#name, offsetof(struct mb_statspage, name),                                 \
                       sizeof(((struct mb_statspage *)0)->name), MB_BOOL_##json, MB_PROM_##prom,   \
                       top, title, help}, )
#define THRESHOLD_ROW(stem, label, zero, page, help)                                               \
    MB_IF_PAGE_##page({#stem "_bytes", offsetof(struct mb_statspage, stem##_bytes),                \
                       sizeof(uint64_t), true, "gauge", 0, NULL, help}, )
#define TEXT_ROW(name, size, key, prom)                                                            \
    {#name, offsetof(struct mb_statspage, name), size, key, MB_BOOL_##prom},

const struct live_figure live_figures[] = {MB_STATS(FIGURE_ROW, THRESHOLD_ROW, MB_STATS_NONE)};
const size_t live_figure_count = sizeof live_figures / sizeof live_figures[0];
const struct live_text live_texts[] = {MB_STATS(MB_STATS_NONE, MB_STATS_NONE, TEXT_ROW)};
const size_t live_text_count = sizeof live_texts / sizeof live_texts[0];

bool live_figure_present(const struct mb_statspage *p, const struct live_figure *f) {
    return f->offset + f->size <= p->size;
}

uint64_t live_figure_value(const struct mb_statspage *p, const struct live_figure *f) {
    const char *at = (const char *)p + f->offset;
    if (f->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, at, sizeof v);
        return v;
    }
    uint64_t v;
    memcpy(&v, at, sizeof v);
    return v;
}

const char *live_text_value(const struct mb_statspage *p, const struct live_text *t) {
    return (const char *)p + t->offset;
}

uint64_t live_age_ns(const struct mb_statspage *p) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return now > p->updated_unix_ns ? now - p->updated_unix_ns : 0;
}

enum live_age live_age_of(uint64_t age_ns) {
    if (age_ns > LIVE_STALE_NS) return LIVE_AGE_STALE;
    return age_ns > LIVE_BOUND_NS ? LIVE_AGE_LATE : LIVE_AGE_CURRENT;
}

/* A string field: NUL-terminated within its bytes. */
static bool terminated(const char *field, size_t size) { return memchr(field, '\0', size) != NULL; }

#define STRING_OK(p, field) terminated((p)->field, sizeof (p)->field)

enum live_status live_check(const void *bytes, size_t len, pid_t pid, struct mb_statspage *out,
                            struct live_error *e) {
    const size_t header = offsetof(struct mb_statspage, seq) + sizeof(uint64_t);
    struct mb_statspage *p = out;
    memset(p, 0, sizeof *p);
    if (len < header) return say(e, LIVE_BAD, EPROTO, "%zu bytes, fewer than a page's header", len);
    memcpy(p, bytes, header);
    if (p->magic == 0) return say(e, LIVE_NONE, EPROTO, "still being created");
    if (p->magic != MB_STATSPAGE_MAGIC) return say(e, LIVE_BAD, EPROTO, "not a live-statistics page");
    if (p->version != MB_STATSPAGE_VERSION)
        return say(e, LIVE_BAD, EPROTO, "page version %" PRIu32 ", not %u", p->version,
                   MB_STATSPAGE_VERSION);
    if (p->pid != (uint32_t)pid)
        return say(e, LIVE_BAD, EPROTO, "the page names pid %" PRIu32, p->pid);
    /* The first layout, or at least the one with the top site: fields are
     * only appended (one appended later is shown only when the size covers
     * it: live_figure_present), and a size between would be half a field
     * set. */
    uint32_t size = p->size;
    if (size > len || size > MB_STATSPAGE_FILE_BYTES ||
        (size != MB_STATSPAGE_SIZE_V1 && size < MB_STATSPAGE_SIZE_TOP_SITE))
        return say(e, LIVE_BAD, EPROTO, "record size %" PRIu32 " in a file of %zu bytes", size,
                   len);
    size_t copy = size < sizeof *p ? size : sizeof *p;
    memset(p, 0, sizeof *p);
    memcpy(p, bytes, copy);
    p->size = (uint32_t)copy;
    if (atomic_load_explicit(&p->seq, memory_order_relaxed) & 1)
        return say(e, LIVE_BAD, EBUSY, "copied in the middle of an update");
    bool names_ok = STRING_OK(p, comm);
    for (size_t i = 0; i < live_text_count; i++)
        names_ok = names_ok && terminated(live_text_value(p, &live_texts[i]), live_texts[i].size);
    if (!names_ok) return say(e, LIVE_BAD, EPROTO, "a name without its terminating NUL");
    if (copy < MB_STATSPAGE_SIZE_TOP_SITE) return LIVE_OK;
    if (p->top_frame_count > MB_STATSPAGE_TOP_FRAMES || p->top_module_count > MB_STATSPAGE_TOP_MODULES)
        return say(e, LIVE_BAD, EPROTO, "top site: %" PRIu32 " frames, %" PRIu32 " modules",
                   p->top_frame_count, p->top_module_count);
    if (p->top_frame_count > p->top_depth)
        return say(e, LIVE_BAD, EPROTO, "top site: %" PRIu32 " frames of a depth of %" PRIu32,
                   p->top_frame_count, p->top_depth);
    for (uint32_t f = 0; f < p->top_frame_count; f++) {
        uint32_t m = p->top_frames[f].module;
        if (m != MB_STATSPAGE_NO_MODULE && m >= p->top_module_count)
            return say(e, LIVE_BAD, EPROTO, "top site: frame %" PRIu32 " in module %" PRIu32
                       " of %" PRIu32, f, m, p->top_module_count);
    }
    for (uint32_t m = 0; m < MB_STATSPAGE_TOP_MODULES; m++) {
        if (m >= p->top_module_count) {
            memset(p->top_modules[m], 0, sizeof p->top_modules[m]); /* unused: never read */
            continue;
        }
        if (!terminated(p->top_modules[m], sizeof p->top_modules[m]) || p->top_modules[m][0] != '/')
            return say(e, LIVE_BAD, EPROTO, "top site: module %" PRIu32 " is not an absolute path",
                       m);
    }
    for (uint32_t f = p->top_frame_count; f < MB_STATSPAGE_TOP_FRAMES; f++)
        memset(&p->top_frames[f], 0, sizeof p->top_frames[f]);
    return LIVE_OK;
}

enum live_status live_read_fd(int fd, pid_t pid, struct mb_statspage *out, struct live_error *e) {
    static unsigned char bytes[MB_STATSPAGE_FILE_BYTES];
    const off_t seq_at = offsetof(struct mb_statspage, seq);
    for (int attempt = 0; attempt < 200; attempt++) {
        uint64_t before, after;
        if (pread(fd, &before, sizeof before, seq_at) != (ssize_t)sizeof before) {
            /* Shorter than its header: judged on what there is. */
            ssize_t n = pread(fd, bytes, sizeof bytes, 0);
            return live_check(bytes, n > 0 ? (size_t)n : 0, pid, out, e);
        }
        if (before & 1) {
            struct timespec ts = {0, 100000}; /* an update takes microseconds */
            nanosleep(&ts, NULL);
            continue;
        }
        atomic_thread_fence(memory_order_acquire);
        ssize_t n = pread(fd, bytes, sizeof bytes, 0);
        if (n < 0) return say(e, LIVE_BAD, errno, "read: %s", strerror(errno));
        atomic_thread_fence(memory_order_acquire);
        if (pread(fd, &after, sizeof after, seq_at) != (ssize_t)sizeof after || after != before)
            continue; /* changed, or cut short, under the read */
        return live_check(bytes, (size_t)n, pid, out, e);
    }
    return say(e, LIVE_BAD, EBUSY, "no consistent copy: its writer stays in the middle of an update");
}

/* Opens the per-user directory of uid: a real directory that uid owns and no
 * one else may write. */
static enum live_status open_user_dir(uid_t uid, int *dir, struct live_error *e) {
    char path[96];
    live_dir_path(path, sizeof path, uid);
    *dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*dir < 0) {
        int err = errno;
        if (err == ENOENT) return say(e, LIVE_NONE, err, "no %s", path);
        if (err == EACCES || err == EPERM) return say(e, LIVE_DENIED, err, "%s", strerror(err));
        if (err == ELOOP || err == ENOTDIR)
            return say(e, LIVE_REFUSED, err, "%s is not a directory", path);
        return say(e, LIVE_BAD, err, "%s: %s", path, strerror(err));
    }
    struct stat st;
    enum live_status s = LIVE_OK;
    if (fstat(*dir, &st) != 0)
        s = say(e, LIVE_BAD, errno, "%s: %s", path, strerror(errno));
    else if (st.st_uid != uid)
        s = say(e, LIVE_REFUSED, EPERM, "%s belongs to uid %lu, not to uid %lu, the process's owner",
                path, (unsigned long)st.st_uid, (unsigned long)uid);
    else if ((st.st_mode & 022) != 0)
        s = say(e, LIVE_REFUSED, EPERM, "%s may be written by other users (mode %04o)", path,
                (unsigned)(st.st_mode & 07777));
    if (s != LIVE_OK) {
        close(*dir);
        *dir = -1;
    }
    return s;
}

/* Reads the page of pid, a process of uid, in the directory open as dir. */
static enum live_status read_in(int dir, uid_t uid, pid_t pid, struct live_process *out,
                                struct live_error *e) {
    char name[24], path[128];
    snprintf(name, sizeof name, "%ld", (long)pid);
    live_page_path(path, sizeof path, uid, pid);
    int fd = openat(dir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) return say(e, LIVE_NONE, err, "no %s", path);
        if (err == EACCES || err == EPERM) return say(e, LIVE_DENIED, err, "%s: %s", path, strerror(err));
        if (err == ELOOP) return say(e, LIVE_REFUSED, err, "%s is a symbolic link", path);
        return say(e, LIVE_BAD, err, "%s: %s", path, strerror(err));
    }
    struct stat st;
    enum live_status status = LIVE_OK;
    if (fstat(fd, &st) != 0)
        status = say(e, LIVE_BAD, errno, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        status = say(e, LIVE_REFUSED, EPROTO, "%s is not a regular file", path);
    else if (st.st_uid != uid)
        status = say(e, LIVE_REFUSED, EPERM, "%s belongs to uid %lu, not to uid %lu, the owner of pid %ld",
                     path, (unsigned long)st.st_uid, (unsigned long)uid, (long)pid);
    else if (st.st_nlink != 1)
        status = say(e, LIVE_REFUSED, EPROTO, "%s has %lu links", path, (unsigned long)st.st_nlink);
    if (status != LIVE_OK) {
        close(fd); /* a file to be refused is not judged stale either: left alone */
        return status;
    }
    status = live_read_fd(fd, pid, &out->page, e);
    if (status == LIVE_BAD || status == LIVE_NONE) {
        /* A page being created is empty for a moment: judge it by its pid,
         * and by its start time when its header is a page's. */
        uint64_t start = out->page.magic == MB_STATSPAGE_MAGIC ? out->page.start_ticks : 0;
        if (process_gone(pid, start, path)) {
            remove_if_same(dir, name, fd);
            status = say(e, LIVE_STALE, 0, "the process is gone");
        }
    } else if (status == LIVE_OK && process_gone(pid, out->page.start_ticks, path)) {
        remove_if_same(dir, name, fd);
        status = say(e, LIVE_STALE, 0, "the process is gone");
    }
    close(fd);
    if (status == LIVE_OK) {
        out->pid = pid;
        out->uid = uid;
    }
    return status;
}

enum live_status live_read(pid_t pid, struct live_process *out, struct live_error *e) {
    e->err = 0;
    e->why[0] = '\0';
    uid_t uid;
    if (!live_process_owner(pid, &uid)) {
        int err = errno;
        /* No process: a page it left can only be judged stale; only ours
         * (our own directory) are looked for. */
        if (err != ENOENT)
            return say(e, LIVE_REFUSED, err,
                       "the owner of pid %ld cannot be told (/proc/%ld/status: %s)", (long)pid,
                       (long)pid, strerror(err));
        uid = geteuid();
    }
    int dir;
    enum live_status s = open_user_dir(uid, &dir, e);
    if (s != LIVE_OK) return s;
    s = read_in(dir, uid, pid, out, e);
    close(dir);
    return s;
}

bool live_clean_if_stale(pid_t pid) {
    struct live_process p;
    struct live_error e;
    return live_read(pid, &p, &e) == LIVE_STALE;
}

/* The decimal number that is all of name (no sign, no leading zero), within
 * max; 0 for any other name. */
static unsigned long decimal_name(const char *name, unsigned long max) {
    if (*name < '1' || *name > '9') return 0;
    unsigned long v = 0;
    for (const char *p = name; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max) return 0;
    }
    return v;
}

static int by_footprint(const void *a, const void *b) {
    const struct live_process *x = a, *y = b;
    if (x->page.footprint_bytes != y->page.footprint_bytes)
        return x->page.footprint_bytes > y->page.footprint_bytes ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static void refuse(struct live_scan *out, const struct live_error *e) {
    if (out->refused++ == 0) snprintf(out->refused_why, sizeof out->refused_why, "%s", e->why);
}

/* The pages of one user's directory (name: "membudget-<uid>"). */
static int scan_user(struct live_scan *out, uid_t uid, size_t *cap) {
    struct live_error e;
    int dir;
    enum live_status s = open_user_dir(uid, &dir, &e);
    if (s == LIVE_DENIED) out->denied++;
    if (s == LIVE_REFUSED) refuse(out, &e);
    if (s != LIVE_OK) return 0;
    int listing = dup(dir);
    DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
    if (d == NULL) {
        if (listing >= 0) close(listing);
        close(dir);
        return 0;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        pid_t pid = (pid_t)decimal_name(ent->d_name, 0x7fffffffUL);
        if (pid == 0) continue;
        uid_t owner;
        if (!live_process_owner(pid, &owner)) owner = uid; /* gone: judged stale below */
        if (owner != uid) {
            say(&e, LIVE_REFUSED, EPERM, "the page of pid %ld is in the directory of uid %lu, "
                "but the process belongs to uid %lu", (long)pid, (unsigned long)uid,
                (unsigned long)owner);
            refuse(out, &e);
            continue;
        }
        struct live_process p;
        switch (read_in(dir, uid, pid, &p, &e)) {
        case LIVE_OK:
            if (out->count == *cap) {
                *cap = *cap ? *cap * 2 : 16;
                struct live_process *grown = realloc(out->procs, *cap * sizeof *grown);
                if (grown == NULL) {
                    closedir(d);
                    close(dir);
                    return -1;
                }
                out->procs = grown;
            }
            out->procs[out->count++] = p;
            break;
        case LIVE_DENIED:
            out->denied++;
            break;
        case LIVE_STALE:
            out->cleaned++;
            break;
        case LIVE_REFUSED:
            refuse(out, &e);
            break;
        case LIVE_NONE:
        case LIVE_BAD:
            break;
        }
    }
    closedir(d);
    close(dir);
    return 0;
}

int live_scan(struct live_scan *out) {
    memset(out, 0, sizeof *out);
    DIR *root = opendir(MB_STATSPAGE_ROOT);
    if (root == NULL) return -1;
    size_t cap = 0, prefix = strlen(MB_STATSPAGE_USER_PREFIX);
    struct dirent *ent;
    while ((ent = readdir(root)) != NULL) {
        if (strncmp(ent->d_name, MB_STATSPAGE_USER_PREFIX, prefix) != 0) continue;
        const char *digits = ent->d_name + prefix;
        uid_t uid = (uid_t)decimal_name(digits, 0xfffffffeUL);
        if (uid == 0 && strcmp(digits, "0") != 0) continue;
        if (scan_user(out, uid, &cap) != 0) {
            closedir(root);
            return -1;
        }
    }
    closedir(root);
    if (out->count > 1) qsort(out->procs, out->count, sizeof *out->procs, by_footprint);
    return 0;
}

void live_scan_free(struct live_scan *scan) {
    free(scan->procs);
    scan->procs = NULL;
    scan->count = 0;
}

/* ---- the sampled top site --------------------------------------------------------- */

const char *live_top_state_name(enum live_top_state s) {
    switch (s) {
    case LIVE_TOP_OFF: return "off";
    case LIVE_TOP_NONE: return "none";
    case LIVE_TOP_OK: return "ok";
    case LIVE_TOP_UNKNOWN: break;
    }
    return "unknown";
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

#ifdef MB_TOOL_SYMBOLS
/* Whether path names a file that pid maps: the path of one of its file
 * mappings, exactly. */
static bool maps_names(void *ctx, const char *path) { return strcmp(path, ctx) == 0; }

/* The module path of a page, opened for reading when it can be trusted as
 * far as a path can: the process maps a file of that path, and it opens
 * without following a link or blocking as a regular file.  -1 otherwise. */
static int open_module(pid_t pid, const char *path) {
    if (path[0] != '/' || maps_paths(pid, maps_names, (void *)path) != 1) return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The virtual address in the ELF file open as fd of its file offset; false
 * when it is not ELF or no loadable segment holds the offset. */
static bool file_offset_vaddr(int fd, uint64_t offset, uint64_t *vaddr) {
    bool found = false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t n = 0;
    if (elf != NULL && elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &n) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_LOAD) continue;
            if (offset >= ph.p_offset && offset - ph.p_offset < ph.p_filesz) {
                *vaddr = ph.p_vaddr + (offset - ph.p_offset);
                found = true;
            }
        }
    }
    if (elf != NULL) elf_end(elf);
    return found;
}

/* Names the frames through report_symbols.c: each module that open_module
 * accepts is placed at the load bias its first frame gives (address minus
 * virtual address); only those are handed over. */
static void symbolize(pid_t pid, const struct mb_statspage *p, struct live_top_site *out) {
    elf_version(EV_CURRENT);
    struct rp_module modules[MB_STATSPAGE_TOP_MODULES];
    struct rp_frame frames[MB_STATSPAGE_TOP_FRAMES];
    bool placed[MB_STATSPAGE_TOP_MODULES] = {false};
    memset(modules, 0, sizeof modules);
    memset(frames, 0, sizeof frames);
    int fds[MB_STATSPAGE_TOP_MODULES];
    size_t module_count = p->top_module_count; /* live_check: within the array */
    for (size_t m = 0; m < module_count; m++) {
        modules[m].path = p->top_modules[m];
        modules[m].name = base_name(p->top_modules[m]);
        modules[m].build_id = ""; /* not recorded: the process runs it now */
        fds[m] = open_module(pid, p->top_modules[m]);
    }
    for (size_t f = 0; f < out->frame_count; f++) {
        const struct mb_statspage_frame *pf = &p->top_frames[f];
        frames[f].address = pf->address;
        if (pf->module >= module_count || fds[pf->module] < 0) continue;
        uint64_t vaddr;
        if (!file_offset_vaddr(fds[pf->module], pf->file_offset, &vaddr)) continue;
        out->frames[f].module_offset = vaddr;
        if (!placed[pf->module]) {
            modules[pf->module].base = pf->address - vaddr;
            placed[pf->module] = true;
        }
        frames[f].module = &modules[pf->module];
    }
    for (size_t m = 0; m < module_count; m++)
        if (fds[m] >= 0) close(fds[m]);
    /* Only the modules with a frame placed are handed over. */
    struct rp_module used[MB_STATSPAGE_TOP_MODULES];
    size_t used_count = 0;
    for (size_t m = 0; m < module_count; m++) {
        if (!placed[m]) continue;
        used[used_count] = modules[m];
        for (size_t f = 0; f < out->frame_count; f++)
            if (frames[f].module == &modules[m]) frames[f].module = &used[used_count];
        used_count++;
    }
    struct rp_site site = {.frame_count = out->frame_count, .frames = frames};
    struct rp_report r = {.modules = used, .module_count = used_count, .sites = &site,
                          .site_count = 1};
    rp_symbolize(&r);
    for (size_t f = 0; f < out->frame_count; f++) {
        struct live_top_frame *lf = &out->frames[f];
        if (frames[f].function != NULL) {
            snprintf(lf->name, sizeof lf->name, "%s", frames[f].function);
            lf->symbolized = true;
        }
        if (frames[f].file != NULL) {
            snprintf(lf->file, sizeof lf->file, "%s", frames[f].file);
            lf->line = frames[f].line;
        }
        free(frames[f].function);
        free(frames[f].file);
    }
}
#else
static void symbolize(pid_t pid, const struct mb_statspage *p, struct live_top_site *out) {
    (void)pid;
    (void)p;
    (void)out; /* built without libdw: module+offset only */
}
#endif

void live_top_site(const struct live_process *lp, struct live_top_site *out) {
    const struct mb_statspage *p = &lp->page;
    memset(out, 0, sizeof *out);
    if (p->size < MB_STATSPAGE_SIZE_TOP_SITE) {
        out->state = LIVE_TOP_UNKNOWN;
        snprintf(out->label, sizeof out->label, "-");
        return;
    }
    out->rate_bytes = p->sample_rate_bytes;
    out->scan_ns = p->top_scan_ns;
    out->scans = p->top_scans;
    out->resolve_ns = p->top_resolve_ns;
    if (p->sample_rate_bytes == 0) {
        out->state = LIVE_TOP_OFF;
        snprintf(out->label, sizeof out->label, "not sampled");
        return;
    }
    if (p->top_site == 0) {
        out->state = LIVE_TOP_NONE;
        snprintf(out->label, sizeof out->label, "none yet");
        return;
    }
    out->state = LIVE_TOP_OK;
    out->est_bytes = p->top_est_bytes;
    out->est_objects = p->top_est_objects;
    out->live_samples = p->top_live_samples;
    out->live_sampled_bytes = p->top_live_sampled_bytes;
    out->depth = p->top_depth;
    out->frame_count = p->top_frame_count;
    if (out->frame_count > MB_STATSPAGE_TOP_FRAMES) out->frame_count = MB_STATSPAGE_TOP_FRAMES;
    for (size_t f = 0; f < out->frame_count; f++) {
        const struct mb_statspage_frame *pf = &p->top_frames[f];
        struct live_top_frame *lf = &out->frames[f];
        lf->address = pf->address;
        lf->module = "";
        if (pf->module < p->top_module_count && pf->module < MB_STATSPAGE_TOP_MODULES) {
            lf->module = p->top_modules[pf->module];
            lf->module_offset = pf->file_offset;
        }
    }
    symbolize(lp->pid, p, out);
    size_t len = 0;
    for (size_t f = 0; f < out->frame_count; f++) {
        struct live_top_frame *lf = &out->frames[f];
        if (!lf->symbolized) {
            if (lf->module[0] != '\0')
                snprintf(lf->name, sizeof lf->name, "%s+0x%" PRIx64, base_name(lf->module),
                         lf->module_offset);
            else
                snprintf(lf->name, sizeof lf->name, "0x%" PRIx64, lf->address);
        }
        if (f < 3 && len + 4 < sizeof out->label)
            len += (size_t)snprintf(out->label + len, sizeof out->label - len, "%s%s",
                                    f > 0 ? " < " : "", lf->name);
    }
    if (out->frame_count == 0) snprintf(out->label, sizeof out->label, "[no frames]");
}
