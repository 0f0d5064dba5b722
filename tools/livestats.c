/* Reading live-statistics pages (see livestats.h). */
#include "tools/livestats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
