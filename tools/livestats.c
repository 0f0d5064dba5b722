/* Reading live-statistics pages (see livestats.h). */
#include "tools/livestats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
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

void live_page_path(char *out, size_t cap, pid_t pid) {
    snprintf(out, cap, "%s/%s%ld", MB_STATSPAGE_DIR, MB_STATSPAGE_PREFIX, (long)pid);
}

/* The state (field 3) and start time (field 22) of /proc/<pid>/stat; false
 * when unreadable.  Fields are counted from the last ')': the command name may
 * hold both spaces and parentheses. */
static bool proc_stat_of(pid_t pid, char *state, uint64_t *start_ticks) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL || p[1] != ' ') return false;
    *state = p[2];
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ') p++;
        while (*p != ' ' && *p != '\0') p++;
    }
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p) return false;
    *start_ticks = v;
    return true;
}

/* Whether /proc/<pid>/maps names the page: a live process with the library
 * keeps its page mapped.  -1 when maps cannot be read. */
static int maps_page(pid_t pid, const char *page_path) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    bool any = false;
    while (!found && getline(&line, &cap, f) > 0) {
        any = true;
        char *name = strchr(line, '/');
        if (name == NULL) continue;
        size_t n = strlen(page_path);
        found = strncmp(name, page_path, n) == 0 && (name[n] == '\n' || name[n] == ' ');
    }
    free(line);
    fclose(f);
    return any ? found : -1; /* an empty read: a zombie, or no access */
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
    return start_ticks != 0 && maps_page(pid, page_path) == 0;
}

/* Removes path if it is still the file open as fd (not a new page that a new
 * process of the same pid made meanwhile). */
static bool remove_if_same(const char *path, int fd) {
    struct stat a, b;
    if (fstat(fd, &a) != 0 || lstat(path, &b) != 0) return false;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) return false;
    return unlink(path) == 0;
}

/* Copies the record under its sequence counter. */
static bool copy_consistent(const struct mb_statspage *shared, size_t avail,
                            struct mb_statspage *out) {
    size_t size = shared->size;
    if (size > sizeof *out) size = sizeof *out;
    if (size > avail) size = avail;
    for (int attempt = 0; attempt < 200; attempt++) {
        uint64_t before = atomic_load_explicit(&shared->seq, memory_order_acquire);
        if (before & 1) {
            struct timespec ts = {0, 100000}; /* an update takes microseconds */
            nanosleep(&ts, NULL);
            continue;
        }
        memset(out, 0, sizeof *out);
        memcpy(out, shared, size);
        atomic_thread_fence(memory_order_acquire);
        uint64_t after = atomic_load_explicit(&shared->seq, memory_order_relaxed);
        if (before == after) {
            out->size = (uint32_t)size;
            return true;
        }
    }
    return false;
}

static void terminate_strings(struct mb_statspage *p) {
    p->comm[sizeof p->comm - 1] = '\0';
    p->policy_name[sizeof p->policy_name - 1] = '\0';
    p->action[sizeof p->action - 1] = '\0';
    p->state[sizeof p->state - 1] = '\0';
    p->footprint_source[sizeof p->footprint_source - 1] = '\0';
    p->limit_source[sizeof p->limit_source - 1] = '\0';
    for (size_t m = 0; m < MB_STATSPAGE_TOP_MODULES; m++)
        p->top_modules[m][MB_STATSPAGE_MODULE_PATH - 1] = '\0';
}

enum live_status live_read(pid_t pid, struct live_process *out, int *err) {
    char path[128];
    live_page_path(path, sizeof path, pid);
    *err = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        if (errno == ENOENT) return LIVE_NONE;
        if (errno == EACCES || errno == EPERM) return LIVE_DENIED;
        return LIVE_BAD;
    }
    struct stat st;
    const size_t header = offsetof(struct mb_statspage, seq) + sizeof(uint64_t);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < header) {
        /* A page being created is empty for a moment: judge it by its pid. */
        enum live_status s = LIVE_BAD;
        if (process_gone(pid, 0, path)) {
            remove_if_same(path, fd);
            s = LIVE_STALE;
        }
        close(fd);
        *err = EPROTO;
        return s;
    }
    size_t avail =
        (size_t)st.st_size < MB_STATSPAGE_FILE_BYTES ? (size_t)st.st_size : MB_STATSPAGE_FILE_BYTES;
    void *map = mmap(NULL, avail, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        *err = errno;
        close(fd);
        return LIVE_BAD;
    }
    const struct mb_statspage *shared = map;
    uint32_t magic = __atomic_load_n(&shared->magic, __ATOMIC_ACQUIRE);
    enum live_status status = LIVE_OK;
    if (magic != MB_STATSPAGE_MAGIC || shared->version != MB_STATSPAGE_VERSION ||
        shared->pid != (uint32_t)pid) {
        status = magic == 0 ? LIVE_NONE : LIVE_BAD; /* 0: still being created */
        *err = EPROTO;
    } else if (!copy_consistent(shared, avail, &out->page)) {
        status = LIVE_BAD; /* a writer stuck mid-update: it died there */
        *err = EBUSY;
    }
    uint64_t start = status == LIVE_OK ? out->page.start_ticks : shared->start_ticks;
    munmap(map, avail);
    if (process_gone(pid, start, path)) {
        remove_if_same(path, fd);
        status = LIVE_STALE;
    }
    close(fd);
    if (status == LIVE_OK) {
        out->pid = pid;
        terminate_strings(&out->page);
    }
    return status;
}

bool live_clean_if_stale(pid_t pid) {
    struct live_process p;
    int err;
    return live_read(pid, &p, &err) == LIVE_STALE;
}

/* The pid of a page's file name, or 0 for any other name. */
static pid_t page_name_pid(const char *name) {
    size_t n = strlen(MB_STATSPAGE_PREFIX);
    if (strncmp(name, MB_STATSPAGE_PREFIX, n) != 0) return 0;
    const char *p = name + n;
    if (*p < '1' || *p > '9') return 0;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 0x7fffffffL) return 0;
    }
    return *p == '\0' ? (pid_t)v : 0;
}

static int by_footprint(const void *a, const void *b) {
    const struct live_process *x = a, *y = b;
    if (x->page.footprint_bytes != y->page.footprint_bytes)
        return x->page.footprint_bytes > y->page.footprint_bytes ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int live_scan(struct live_scan *out) {
    memset(out, 0, sizeof *out);
    DIR *dir = opendir(MB_STATSPAGE_DIR);
    if (dir == NULL) return -1;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        pid_t pid = page_name_pid(e->d_name);
        if (pid == 0) continue;
        struct live_process p;
        int err;
        switch (live_read(pid, &p, &err)) {
        case LIVE_OK:
            if (out->count == cap) {
                cap = cap ? cap * 2 : 16;
                struct live_process *grown = realloc(out->procs, cap * sizeof *grown);
                if (grown == NULL) {
                    closedir(dir);
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
        case LIVE_NONE:
        case LIVE_BAD:
            break;
        }
    }
    closedir(dir);
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
/* The virtual address in the ELF file at path of its file offset; false when
 * the file is not readable or no loadable segment holds the offset. */
static bool file_offset_vaddr(const char *path, uint64_t offset, uint64_t *vaddr) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool found = false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t n = 0;
    if (elf != NULL && elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &n) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_LOAD) continue;
            if (offset >= ph.p_offset && offset < ph.p_offset + ph.p_filesz) {
                *vaddr = ph.p_vaddr + (offset - ph.p_offset);
                found = true;
            }
        }
    }
    if (elf != NULL) elf_end(elf);
    close(fd);
    return found;
}

/* Names the frames through report_symbols.c: each readable module is placed at
 * the load bias its first frame gives (address minus virtual address). */
static void symbolize(const struct mb_statspage *p, struct live_top_site *out) {
    elf_version(EV_CURRENT);
    struct rp_module modules[MB_STATSPAGE_TOP_MODULES];
    struct rp_frame frames[MB_STATSPAGE_TOP_FRAMES];
    bool placed[MB_STATSPAGE_TOP_MODULES] = {false};
    memset(modules, 0, sizeof modules);
    memset(frames, 0, sizeof frames);
    size_t module_count = p->top_module_count;
    if (module_count > MB_STATSPAGE_TOP_MODULES) module_count = MB_STATSPAGE_TOP_MODULES;
    for (size_t m = 0; m < module_count; m++) {
        modules[m].path = p->top_modules[m];
        modules[m].name = base_name(p->top_modules[m]);
        modules[m].build_id = ""; /* not recorded: the process runs it now */
    }
    for (size_t f = 0; f < out->frame_count; f++) {
        const struct mb_statspage_frame *pf = &p->top_frames[f];
        frames[f].address = pf->address;
        if (pf->module >= module_count) continue;
        uint64_t vaddr;
        if (!file_offset_vaddr(modules[pf->module].path, pf->file_offset, &vaddr)) continue;
        out->frames[f].module_offset = vaddr;
        if (!placed[pf->module]) {
            modules[pf->module].base = pf->address - vaddr;
            placed[pf->module] = true;
        }
        frames[f].module = &modules[pf->module];
    }
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
static void symbolize(const struct mb_statspage *p, struct live_top_site *out) {
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
    symbolize(p, out);
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
