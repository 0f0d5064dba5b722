/* The report's symbolizer on macOS (tools/report_model.h: rp_symbolize,
 * rp_demangle).  libdw has no macOS build, so the frames of each module are
 * handed to atos(1), which reads the Mach-O symbols and, through the module's
 * UUID, its dSYM (file and line).  A module is given to atos only when its
 * file is a regular file (not a link, FIFO or device), no larger than
 * RP_MODULE_MAX_BYTES, whose LC_UUID equals the one the dump recorded.
 * Without atos (no developer tools), or for a module it cannot read, frames
 * stay module+offset: the text output names them so.  atos runs without a
 * shell, its arguments as a vector; what it prints is bounded and copied. */
#include <crt_externs.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mach-o/fat.h>
#include <mach-o/loader.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/report_model.h"

#define ATOS_BATCH 256                      /* addresses per atos run */
#define ATOS_OUTPUT_MAX ((size_t)16 << 20) /* bytes read from one run */

/* libc++abi's demangler, through its C symbol; the result is malloc'd. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *length, int *status);

char *rp_demangle(const char *s) {
    /* Mach-O symbols carry an extra leading underscore: "__Z...". */
    if (s != NULL && strncmp(s, "__Z", 3) == 0) s++;
    if (s == NULL || strncmp(s, "_Z", 2) != 0 || strnlen(s, RP_DEMANGLE_MAX + 1) > RP_DEMANGLE_MAX)
        return NULL;
    int status = -1;
    char *d = __cxa_demangle(s, NULL, NULL, &status);
    if (status != 0 || d == NULL) {
        free(d);
        return NULL;
    }
    char *copy = strndup(d, RP_PATH_MAX);
    free(d);
    return copy;
}

/* The module's file, opened only when it is a regular file of a size we read
 * (as report_symbols.c does on Linux); -1 with its state set otherwise. */
static int open_module(struct rp_module *m, const char *path) {
    struct stat before, st;
    if (lstat(path, &before) != 0) return m->state = RP_MODULE_MISSING, -1;
    if (!S_ISREG(before.st_mode)) return m->state = RP_MODULE_IRREGULAR, -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return m->state = errno == ELOOP ? RP_MODULE_IRREGULAR : RP_MODULE_MISSING, -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != before.st_dev ||
        st.st_ino != before.st_ino) {
        close(fd);
        return m->state = RP_MODULE_IRREGULAR, -1;
    }
    if ((uint64_t)st.st_size > RP_MODULE_MAX_BYTES) {
        close(fd);
        return m->state = RP_MODULE_TOO_LARGE, -1;
    }
    return fd;
}

/* Whether the thin 64-bit Mach-O image at `offset` of fd has LC_UUID `want`
 * (32 hex digits, as the dump writes it). */
static bool image_has_uuid(int fd, uint64_t offset, const char *want) {
    struct mach_header_64 mh;
    if (pread(fd, &mh, sizeof mh, (off_t)offset) != (ssize_t)sizeof mh || mh.magic != MH_MAGIC_64 ||
        mh.sizeofcmds > (1u << 24))
        return false;
    char *cmds = malloc(mh.sizeofcmds ? mh.sizeofcmds : 1);
    if (cmds == NULL) return false;
    bool found = false;
    if (pread(fd, cmds, mh.sizeofcmds, (off_t)(offset + sizeof mh)) == (ssize_t)mh.sizeofcmds) {
        for (uint32_t i = 0, at = 0; i < mh.ncmds && at + sizeof(struct load_command) <= mh.sizeofcmds;
             i++) {
            struct load_command lc;
            memcpy(&lc, cmds + at, sizeof lc);
            if (lc.cmdsize < sizeof lc || lc.cmdsize > mh.sizeofcmds - at) break;
            if (lc.cmd == LC_UUID && lc.cmdsize >= sizeof(struct uuid_command)) {
                struct uuid_command u;
                memcpy(&u, cmds + at, sizeof u);
                char hex[33];
                for (int k = 0; k < 16; k++) snprintf(hex + 2 * k, 3, "%02x", u.uuid[k]);
                found = strcmp(hex, want) == 0;
                break;
            }
            at += lc.cmdsize;
        }
    }
    free(cmds);
    return found;
}

/* A thin file, or any architecture of a universal one, with that UUID. */
static bool file_has_uuid(int fd, const char *want) {
    struct fat_header fh;
    if (pread(fd, &fh, sizeof fh, 0) != (ssize_t)sizeof fh) return false;
    if (OSSwapBigToHostInt32(fh.magic) != FAT_MAGIC) return image_has_uuid(fd, 0, want);
    uint32_t n = OSSwapBigToHostInt32(fh.nfat_arch);
    for (uint32_t i = 0; i < n && i < 64; i++) {
        struct fat_arch fa;
        if (pread(fd, &fa, sizeof fa, (off_t)(sizeof fh + i * sizeof fa)) != (ssize_t)sizeof fa)
            return false;
        if (image_has_uuid(fd, OSSwapBigToHostInt32(fa.offset), want)) return true;
    }
    return false;
}

/* atos -o PATH ADDR...: one line per address, "func (in module) (file:line)",
 * "func (in module) + N", or the address again when unknown.  The output, or
 * NULL when atos could not run. */
static char *run_atos(const char *path, char *const *addrs, size_t n, size_t *len) {
    char *argv[ATOS_BATCH + 4];
    size_t argc = 0;
    argv[argc++] = "atos";
    argv[argc++] = "-o";
    argv[argc++] = (char *)path;
    for (size_t i = 0; i < n; i++) argv[argc++] = addrs[i];
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0) return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "atos", &fa, NULL, argv, *_NSGetEnviron());
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return NULL;
    }
    size_t cap = 4096, used = 0;
    char *out = malloc(cap);
    ssize_t got;
    while (out != NULL && (got = read(fds[0], out + used, cap - used - 1)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        used += (size_t)got;
        if (used + 1 == cap && cap < ATOS_OUTPUT_MAX) {
            char *bigger = realloc(out, cap * 2);
            if (bigger == NULL) break;
            out = bigger;
            cap *= 2;
        } else if (used + 1 == cap) {
            break; /* the rest is left unread: frames stay module+offset */
        }
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (out == NULL) return NULL;
    out[used] = '\0';
    *len = used;
    return out;
}

/* Fills a frame from one line of atos. */
static void parse_atos_line(char *line, struct rp_frame *f) {
    if (strncmp(line, "0x", 2) == 0) return; /* not found */
    char *in = strstr(line, " (in ");
    if (in == NULL) return;
    *in = '\0';
    char *d = rp_demangle(line);
    f->function = d != NULL ? d : strndup(line, RP_PATH_MAX);
    if (d != NULL) f->mangled = strndup(line, RP_PATH_MAX);
    char *rest = strchr(in + 5, ')');
    if (rest == NULL) return;
    rest++;
    unsigned long long offset;
    if (sscanf(rest, " + %llu", &offset) == 1) f->function_offset = offset + 1;
    char *open = strrchr(rest, '('), *colon = open != NULL ? strrchr(open, ':') : NULL;
    int line_no;
    if (colon != NULL && sscanf(colon + 1, "%d)", &line_no) == 1 && line_no > 0) {
        f->file = strndup(open + 1, (size_t)(colon - open - 1));
        f->line = line_no;
    }
}

struct atos_batch {
    struct rp_frame *frames[ATOS_BATCH];
    char text[ATOS_BATCH][24];
    char *addrs[ATOS_BATCH];
    size_t n;
    bool failed; /* atos could not run: the rest stays module+offset */
};

static void flush(struct atos_batch *b, const char *path) {
    if (b->n == 0) return;
    size_t len = 0;
    char *out = b->failed ? NULL : run_atos(path, b->addrs, b->n, &len);
    if (out == NULL) b->failed = true;
    char *line = out;
    for (size_t k = 0; out != NULL && k < b->n && line != NULL && *line != '\0'; k++) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        parse_atos_line(line, b->frames[k]);
        line = next;
    }
    free(out);
    b->n = 0;
}

/* The frames of every site in module m, given to atos in batches. */
static void symbolize_module(struct rp_report *r, struct rp_module *m, const char *path) {
    struct atos_batch *b = calloc(1, sizeof *b);
    if (b == NULL) return;
    for (size_t s = 0; s < r->site_count && !b->failed; s++) {
        for (size_t f = 0; f < r->sites[s].frame_count; f++) {
            struct rp_frame *fr = &r->sites[s].frames[f];
            if (fr->module != m || fr->address <= m->base || fr->function != NULL) continue;
            /* A return address: the call is the instruction before it. */
            snprintf(b->text[b->n], sizeof b->text[b->n], "0x%" PRIx64, fr->address - m->base - 1);
            b->addrs[b->n] = b->text[b->n];
            b->frames[b->n++] = fr;
            if (b->n == ATOS_BATCH) flush(b, path);
        }
    }
    flush(b, path);
    free(b);
}

void rp_symbolize(struct rp_report *r) {
    size_t files = 0;
    for (size_t i = 0; i < r->module_count; i++) {
        struct rp_module *m = &r->modules[i];
        const char *path = m->open_path != NULL ? m->open_path : m->path;
        if (path[0] != '/') {
            m->state = RP_MODULE_MISSING;
            continue;
        }
        if (files == RP_MODULE_FILES_MAX) continue;
        files++;
        int fd = open_module(m, path);
        if (fd < 0) continue;
        bool same = m->build_id[0] == '\0' || file_has_uuid(fd, m->build_id);
        close(fd);
        if (!same) {
            m->state = RP_MODULE_MISMATCH;
            continue;
        }
        m->state = RP_MODULE_READ;
        symbolize_module(r, m, path);
    }
}
