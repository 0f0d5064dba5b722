/* Limits and thresholds (DESIGN §4).  ramSize is bmalloc's availableMemory with
 * the own cgroup playing iOS's jetsamLimit(); the kill threshold is WebKit's
 * thresholdForMemoryKill (or MEMBUDGET_LIMIT); the policy thresholds are
 * thresholdForPolicy's fractions of the base threshold.  Runs inside the first
 * malloc: no allocation, no stdio; files are read with open/read into stack
 * buffers, long files line by line. */
#include "policy/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

/* ---- reading files ------------------------------------------------------ */

/* Helpers that hold a line buffer or several paths stay out of line, so their
 * stack frames follow one another instead of adding up in one caller: the
 * deepest chain (probe_cgroup, probe_hierarchy, find_cgroup_mount) takes about
 * 13 KiB of stack, once, inside the first malloc. */
#define MB_OWN_FRAME __attribute__((noinline))

static bool root_is_slash(const char *root) {
    return root == NULL || root[0] == '\0' || (root[0] == '/' && root[1] == '\0');
}

/* out = root prefix + a + b (b may be NULL); false when it does not fit. */
static bool join_path(char *out, size_t cap, const char *root, const char *a, const char *b) {
    struct mb_buf buf;
    mb_buf_init(&buf, out, cap);
    if (!root_is_slash(root)) {
        size_t n = strlen(root);
        while (n > 1 && root[n - 1] == '/') n--;
        mb_buf_mem(&buf, root, n);
    }
    mb_buf_str(&buf, a);
    if (b != NULL) mb_buf_str(&buf, b);
    return !buf.truncated;
}

static int open_read(const char *path) {
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

static void close_fd(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

/* Reads a small file whole (up to cap - 1 bytes) and NUL-terminates it. */
static bool read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open_read(path);
    if (fd < 0) return false;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close_fd(fd);
    buf[len] = '\0';
    return true;
}

/* Lines of a file of any length through a fixed buffer.  A line longer than the
 * buffer (mountinfo lines of overlay mounts can be kilobytes) is skipped whole;
 * the lines we look for are short. */
struct line_reader {
    int fd;
    size_t pos, len;
    bool eof, skipping;
    char buf[4096];
};

static bool line_reader_open(struct line_reader *r, const char *path) {
    r->fd = open_read(path);
    r->pos = r->len = 0;
    r->eof = r->skipping = false;
    return r->fd >= 0;
}

static void line_reader_close(struct line_reader *r) {
    if (r->fd >= 0) close_fd(r->fd);
    r->fd = -1;
}

/* The next line, NUL-terminated in place and without its newline; NULL at end. */
static char *line_reader_next(struct line_reader *r) {
    for (;;) {
        char *start = r->buf + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        if (nl != NULL) {
            *nl = '\0';
            r->pos = (size_t)(nl - r->buf) + 1;
            if (r->skipping) {
                r->skipping = false;
                continue;
            }
            return start;
        }
        if (r->eof) {
            if (r->pos < r->len && !r->skipping) {
                r->buf[r->len] = '\0'; /* a last line without newline */
                r->pos = r->len;
                return start;
            }
            return NULL;
        }
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->len -= r->pos;
            r->pos = 0;
        }
        if (r->len == sizeof r->buf - 1) { /* no newline in a full buffer */
            r->skipping = true;
            r->len = 0;
        }
        ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            r->eof = true;
        else
            r->len += (size_t)n;
    }
}

/* Digits, then only blanks: the format of every number file we read. */
static bool parse_number_text(const char *s, uint64_t *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (*s != '\0') return false;
    *out = v;
    return true;
}

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- physical RAM -------------------------------------------------------- */

MB_OWN_FRAME static void probe_physical(struct mb_limits *lim, const char *root) {
    char path[MB_PATH_MAX];
    struct mb_buf src;
    mb_buf_init(&src, lim->phys_source, sizeof lim->phys_source);
    lim->phys_bytes = 0;

    struct line_reader r;
    bool opened = join_path(path, sizeof path, root, "/proc/meminfo", NULL) &&
                  line_reader_open(&r, path);
    if (opened) {
        char *line;
        while ((line = line_reader_next(&r)) != NULL) {
            if (!starts_with(line, "MemTotal:")) continue;
            /* "MemTotal:       24684084 kB" */
            char *p = line + strlen("MemTotal:");
            char *unit = strstr(p, " kB");
            if (unit != NULL) *unit = '\0';
            uint64_t kib;
            if (unit != NULL && parse_number_text(p, &kib) && kib > 0 &&
                kib <= UINT64_MAX / 1024) {
                lim->phys_bytes = kib * 1024;
                mb_buf_str(&src, "MemTotal of ");
                mb_buf_str(&src, path);
                mb_buf_str(&src, " = ");
                mb_buf_u64(&src, kib);
                mb_buf_str(&src, " kB");
            }
            break;
        }
        line_reader_close(&r);
        if (lim->phys_bytes != 0) return;
    }
    if (root_is_slash(root)) {
        /* What glibc's sysconf(_SC_PHYS_PAGES) asks, without its older
         * versions' stdio parse of /proc/meminfo. */
        struct sysinfo si;
        if (sysinfo(&si) == 0 && si.totalram > 0 && si.mem_unit > 0 &&
            (uint64_t)si.totalram <= UINT64_MAX / si.mem_unit) {
            lim->phys_bytes = (uint64_t)si.totalram * si.mem_unit;
            mb_buf_str(&src, "sysinfo(2) totalram (");
            mb_buf_str(&src, path);
            mb_buf_str(&src, opened ? " has no MemTotal)" : " unreadable)");
            return;
        }
    }
    mb_buf_str(&src, "unknown: ");
    mb_buf_str(&src, path);
    mb_buf_str(&src, opened ? " has no MemTotal" : " unreadable");
}

/* ---- the cgroup limit ---------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_octal(char *s) {
    char *out = s;
    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

static bool has_token(const char *list, char sep, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; *p != '\0';) {
        const char *e = strchr(p, sep);
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, word, n) == 0) return true;
        if (e == NULL) break;
        p = e + 1;
    }
    return false;
}

static bool copy_str(char *out, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) return false;
    memcpy(out, s, n + 1);
    return true;
}

/* The path of the own cgroup in the hierarchy of `version` from
 * /proc/self/cgroup: v1 is the line whose controllers include "memory", v2 the
 * "0::" line. */
MB_OWN_FRAME static bool read_cgroup_path(const char *root, int version, char *out, size_t cap) {
    char path[MB_PATH_MAX];
    struct line_reader r;
    if (!join_path(path, sizeof path, root, "/proc/self/cgroup", NULL) ||
        !line_reader_open(&r, path))
        return false;
    bool found = false;
    char *line;
    while (!found && (line = line_reader_next(&r)) != NULL) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL) continue;
        *c1 = *c2 = '\0';
        const char *id = line, *controllers = c1 + 1, *cgpath = c2 + 1;
        bool match = version == 2 ? strcmp(id, "0") == 0 && controllers[0] == '\0'
                                  : has_token(controllers, ',', "memory");
        if (match && cgpath[0] == '/') found = copy_str(out, cap, cgpath);
    }
    line_reader_close(&r);
    return found;
}

/* rel = where cgroup_path lies below mount_root ("" for the mount root itself,
 * else "/a/b"); false when it is not below it (a cgroup namespace or a
 * container showing the host's path), as in the JVM's set_subsystem_path. */
static bool path_below(const char *mount_root, const char *cgroup_path, char *rel, size_t cap) {
    /* A ".." component means a cgroup outside the namespace's root. */
    for (const char *p = cgroup_path; (p = strstr(p, "/..")) != NULL; p += 3)
        if (p[3] == '/' || p[3] == '\0') return false;
    const char *rest;
    if (strcmp(mount_root, "/") == 0) {
        rest = cgroup_path;
    } else {
        size_t n = strlen(mount_root);
        if (strncmp(cgroup_path, mount_root, n) != 0) return false;
        rest = cgroup_path + n;
        if (rest[0] != '/' && rest[0] != '\0') return false; /* /a is not below /ab */
    }
    size_t len = strlen(rest);
    while (len > 0 && rest[len - 1] == '/') len--; /* "/" -> "" */
    if (len >= cap) return false;
    memcpy(rel, rest, len);
    rel[len] = '\0';
    return true;
}

struct cgroup_mount {
    char root[MB_PATH_MAX / 2];  /* the mount's root inside the hierarchy */
    char point[MB_PATH_MAX / 2]; /* where it is mounted */
    bool below;                  /* cgroup_path lies below root */
};

/* Finds the mount of the hierarchy in <root>/proc/self/mountinfo; among several
 * the first one that the cgroup path lies below, else the first one. */
MB_OWN_FRAME static bool find_cgroup_mount(const char *root, int version, const char *cgroup_path,
                              struct cgroup_mount *m, char *rel, size_t rel_cap) {
    char path[MB_PATH_MAX];
    struct line_reader r;
    if (!join_path(path, sizeof path, root, "/proc/self/mountinfo", NULL) ||
        !line_reader_open(&r, path))
        return false;
    bool found = false;
    char *line;
    while ((line = line_reader_next(&r)) != NULL) {
        /* id parent major:minor root point options [optional...] - type source super */
        char *field[40];
        size_t n = 0;
        for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok != NULL && n < 40;
             tok = strtok_r(NULL, " ", &save))
            field[n++] = tok;
        size_t dash = 6;
        while (dash < n && strcmp(field[dash], "-") != 0) dash++;
        if (dash + 1 >= n) continue; /* no " - type" part: not a mountinfo line */
        const char *type = field[dash + 1];
        const char *super = dash + 3 < n ? field[dash + 3] : "";
        bool match = version == 2 ? strcmp(type, "cgroup2") == 0
                                  : strcmp(type, "cgroup") == 0 && has_token(super, ',', "memory");
        if (!match) continue;
        unescape_octal(field[3]);
        unescape_octal(field[4]);
        char candidate_rel[MB_PATH_MAX / 2];
        bool below = path_below(field[3], cgroup_path, candidate_rel, sizeof candidate_rel);
        if (found && (m->below || !below)) continue;
        if (!copy_str(m->root, sizeof m->root, field[3]) ||
            !copy_str(m->point, sizeof m->point, field[4]))
            continue;
        m->below = below;
        if (below)
            copy_str(rel, rel_cap, candidate_rel);
        else
            rel[0] = '\0';
        found = true;
        if (below) break;
    }
    line_reader_close(&r);
    return found;
}

/* What one hierarchy (v1 or v2) says about the own memory limit. */
struct cgroup_probe {
    bool has_memory;   /* the hierarchy holds the memory controller for us */
    uint64_t limit;    /* the smallest limit on the path; 0: none */
    char source[MB_SOURCE_MAX];
    char dir[MB_PATH_MAX]; /* the deepest existing directory on the path */
};

static bool dir_exists(const char *path) { return access(path, F_OK) == 0; }

/* A v1 memory.stat's hierarchical_memory_limit: the effective limit including
 * ancestors that the mount does not show (a container's parents). */
MB_OWN_FRAME static bool read_hierarchical_limit(const char *dir, uint64_t *out) {
    char path[MB_PATH_MAX];
    struct line_reader r;
    if (!join_path(path, sizeof path, NULL, dir, "/memory.stat") || !line_reader_open(&r, path))
        return false;
    bool found = false;
    char *line;
    while (!found && (line = line_reader_next(&r)) != NULL)
        if (starts_with(line, "hierarchical_memory_limit "))
            found = parse_number_text(line + strlen("hierarchical_memory_limit "), out);
    line_reader_close(&r);
    return found;
}

/* Walks from the own cgroup (rel below the mount) up to the mount root; the
 * smallest limit wins, as the kernel enforces every ancestor's limit too.
 * best_file receives the file that held it (cut to fit: it is provenance). */
MB_OWN_FRAME static void walk_up(const char *root, const char *mount_point, char *rel, const char *limit_file,
                    struct cgroup_probe *res, bool *any_file, char *best_file, size_t best_cap) {
    char dir[MB_PATH_MAX], file[MB_PATH_MAX], text[64];
    for (;;) {
        if (!join_path(dir, sizeof dir, root, mount_point, rel)) break;
        if (res->dir[0] == '\0' && dir_exists(dir)) copy_str(res->dir, sizeof res->dir, dir);
        if (join_path(file, sizeof file, NULL, dir, limit_file) &&
            read_small_file(file, text, sizeof text)) {
            *any_file = true;
            uint64_t v;
            /* v2 writes "max"; v1 a huge number; 0 would stop everything and
             * is taken as unreadable rather than as a limit. */
            bool limited = parse_number_text(text, &v) && v > 0 && v < MB_CGROUP_UNLIMITED_MIN;
            if (limited && (res->limit == 0 || v < res->limit)) {
                res->limit = v;
                struct mb_buf b;
                mb_buf_init(&b, best_file, best_cap);
                mb_buf_str(&b, file);
            }
        }
        if (rel[0] == '\0') break;
        *strrchr(rel, '/') = '\0'; /* rel is "" or starts with '/' */
    }
}

MB_OWN_FRAME static void probe_hierarchy(const char *root, int version, struct cgroup_probe *res) {
    const char *limit_file = version == 2 ? "/memory.max" : "/memory.limit_in_bytes";
    const char *name = version == 2 ? "cgroup v2" : "cgroup v1";
    struct mb_buf src;
    mb_buf_init(&src, res->source, sizeof res->source);
    res->has_memory = false;
    res->limit = 0;
    res->dir[0] = '\0';

    char cgroup_path[MB_PATH_MAX / 2];
    char rel[MB_PATH_MAX / 2];
    struct cgroup_mount mount;
    if (!read_cgroup_path(root, version, cgroup_path, sizeof cgroup_path)) {
        mb_buf_str(&src, name);
        mb_buf_str(&src, version == 2 ? ": no 0:: line" : ": no memory controller line");
        mb_buf_str(&src, " in /proc/self/cgroup");
        return;
    }
    if (!find_cgroup_mount(root, version, cgroup_path, &mount, rel, sizeof rel)) {
        mb_buf_str(&src, name);
        mb_buf_str(&src, ": no mount in /proc/self/mountinfo");
        return;
    }

    char best_file[MB_SOURCE_MAX];
    bool any_file = false;
    walk_up(root, mount.point, rel, limit_file, res, &any_file, best_file, sizeof best_file);

    uint64_t hierarchical = 0;
    bool from_stat = version == 1 && res->dir[0] != '\0' &&
                     read_hierarchical_limit(res->dir, &hierarchical) && hierarchical > 0 &&
                     hierarchical < MB_CGROUP_UNLIMITED_MIN &&
                     (res->limit == 0 || hierarchical < res->limit);
    if (from_stat) res->limit = hierarchical;

    char scratch[MB_PATH_MAX];
    if (version == 1) {
        res->has_memory = true;
    } else {
        res->has_memory = any_file || (res->dir[0] != '\0' &&
                                       join_path(scratch, sizeof scratch, NULL, res->dir,
                                                 "/memory.current") &&
                                       dir_exists(scratch));
    }

    mb_buf_str(&src, name);
    mb_buf_char(&src, ' ');
    if (from_stat) {
        mb_buf_str(&src, res->dir);
        mb_buf_str(&src, "/memory.stat hierarchical_memory_limit = ");
        mb_buf_u64(&src, res->limit);
    } else if (res->limit != 0) {
        mb_buf_str(&src, best_file);
        mb_buf_str(&src, " = ");
        mb_buf_u64(&src, res->limit);
    } else {
        mb_buf_str(&src, any_file ? "no limit: " : "no limit file: ");
        mb_buf_str(&src, limit_file + 1);
        mb_buf_str(&src, any_file ? " unlimited from " : " absent from ");
        mb_buf_str(&src, cgroup_path);
        mb_buf_str(&src, " up to the mount root ");
        join_path(scratch, sizeof scratch, root, mount.point, NULL);
        mb_buf_str(&src, scratch);
    }
    if (!mount.below) {
        mb_buf_str(&src, "; /proc/self/cgroup names ");
        mb_buf_str(&src, cgroup_path);
        mb_buf_str(&src, ", not below the mount's root ");
        mb_buf_str(&src, mount.root);
        mb_buf_str(&src, ", so the mount root was used");
    }
}

static void probe_cgroup(struct mb_limits *lim, const char *root) {
    /* The memory controller is bound to one hierarchy: v1 when a v1 memory
     * mount exists (hybrid systems also mount v2, without it), else v2.  Both
     * are read and the smaller limit kept, which is right either way. */
    struct cgroup_probe v1, v2;
    probe_hierarchy(root, 1, &v1);
    probe_hierarchy(root, 2, &v2);
    const struct cgroup_probe *mem = v1.has_memory ? &v1 : v2.has_memory ? &v2 : NULL;
    lim->cgroup_version = mem == &v1 ? 1 : mem == &v2 ? 2 : 0;
    lim->cgroup_dir[0] = '\0';
    if (mem != NULL) copy_str(lim->cgroup_dir, sizeof lim->cgroup_dir, mem->dir);

    const struct cgroup_probe *best = NULL;
    if (v1.limit != 0) best = &v1;
    if (v2.limit != 0 && (best == NULL || v2.limit < best->limit)) best = &v2;
    struct mb_buf src;
    mb_buf_init(&src, lim->cgroup_source, sizeof lim->cgroup_source);
    if (best != NULL) {
        lim->cgroup_bytes = best->limit;
        mb_buf_str(&src, best->source);
        return;
    }
    lim->cgroup_bytes = 0;
    mb_buf_str(&src, "none: ");
    mb_buf_str(&src, mem == &v2 ? v2.source : v1.source);
    if (mem == NULL) {
        mb_buf_str(&src, "; ");
        mb_buf_str(&src, v2.source);
    }
}

/* ---- ramSize ------------------------------------------------------------- */

uint64_t mb_ram_round_up(uint64_t bytes) {
    uint64_t mask = MB_RAM_MULTIPLE - 1;
    if (bytes > UINT64_MAX - mask) return bytes & ~mask;
    return (bytes + mask) & ~mask;
}

uint64_t mb_ram_cap(uint64_t ram_bytes) {
    /* floor(9 * ram / 10) without overflow: ram = 10q + r. */
    return ram_bytes / 10 * 9 + ram_bytes % 10 * 9 / 10;
}

static void ram_term(struct mb_buf *terms, unsigned *count, const char *what, uint64_t bytes) {
    mb_buf_str(terms, (*count)++ == 0 ? "" : ", ");
    mb_buf_str(terms, what);
    mb_buf_bytes(terms, bytes);
}

static void compute_ram(struct mb_limits *lim, const struct mb_config *cfg) {
    char text[MB_SOURCE_MAX], env[MB_CONFIG_RAW_MAX + 32];
    struct mb_buf terms, src;
    mb_buf_init(&terms, text, sizeof text);
    uint64_t smallest = 0;
    unsigned count = 0;
    if (lim->phys_bytes != 0) {
        smallest = lim->phys_bytes;
        ram_term(&terms, &count, "physical RAM ", lim->phys_bytes);
    }
    if (lim->cgroup_bytes != 0) {
        if (smallest == 0 || lim->cgroup_bytes < smallest) smallest = lim->cgroup_bytes;
        ram_term(&terms, &count, "cgroup limit ", lim->cgroup_bytes);
    }
    if (cfg != NULL && cfg->ram_bytes != 0) {
        if (smallest == 0 || cfg->ram_bytes < smallest) smallest = cfg->ram_bytes;
        struct mb_buf e;
        mb_buf_init(&e, env, sizeof env);
        mb_buf_str(&e, "MEMBUDGET_RAM=");
        mb_buf_str(&e, cfg->raw[MB_OPT_RAM]);
        mb_buf_str(&e, " = ");
        ram_term(&terms, &count, env, cfg->ram_bytes);
    }
    lim->ram_from_cgroup = lim->cgroup_bytes != 0 && lim->cgroup_bytes == smallest;
    mb_buf_init(&src, lim->ram_source, sizeof lim->ram_source);
    if (smallest == 0) {
        lim->ram_bytes = MB_RAM_GUESS_BYTES;
        mb_buf_str(&src, "nothing readable: bmalloc's availableMemoryGuess");
        return;
    }
    lim->ram_bytes = mb_ram_round_up(smallest);
    if (count > 1) mb_buf_str(&src, "min(");
    mb_buf_str(&src, text);
    if (count > 1) mb_buf_char(&src, ')');
    mb_buf_str(&src, lim->ram_bytes == smallest ? ", a multiple of 128 MiB"
                                                : " rounded up to a multiple of 128 MiB");
}

void mb_limits_probe(struct mb_limits *lim, const char *root, const struct mb_config *cfg) {
    /* Failed opens are expected (no cgroup, no memory.max); a malloc that
     * succeeds must not leave errno changed. */
    int saved = errno;
    probe_physical(lim, root);
    probe_cgroup(lim, root);
    compute_ram(lim, cfg);
    errno = saved;
}

/* ---- the kill threshold ---------------------------------------------------- */

/* The model's value before the 0.9 x ramSize cap. */
static uint64_t model_uncapped(enum mb_model model, enum mb_state state, unsigned pages,
                               bool is64, uint64_t ram_bytes) {
    const uint64_t GB = MB_GIB; /* WebKit's GB is 2^30 */
    bool active = state == MB_STATE_ACTIVE;
    if (model == MB_MODEL_WEBKIT) {
        /* MemoryPressureHandler.cpp: thresholdForMemoryKillOfInactiveProcess and
         * thresholdForMemoryKillOfActiveProcess. */
        if (!active) return is64 ? 3 * GB + (uint64_t)pages * GB : (pages > 1 ? 3 * GB : 2 * GB);
        if (!is64) return 3 * GB;
        return (ram_bytes > 16 * GB ? 15 * GB : 7 * GB) + (uint64_t)pages * GB;
    }
    /* The older thresholdForMemoryKillWithProcessState, as the seeds quote it. */
    uint64_t threshold = 2 * GB;
    if (is64) {
        if (active) threshold = 4 * GB;
        if (pages > 1) threshold += (uint64_t)(pages - 1 < 4 ? pages - 1 : 4) * GB;
    } else if (pages > 1 || active) {
        threshold = 3 * GB;
    }
    return threshold;
}

uint64_t mb_model_kill_threshold(enum mb_model model, enum mb_state state, unsigned pages,
                                 unsigned word_bits, uint64_t ram_bytes) {
    if (pages == 0) pages = 1;
    uint64_t t = model_uncapped(model, state, pages, word_bits != 32, ram_bytes);
    uint64_t cap = mb_ram_cap(ram_bytes);
    return t < cap ? t : cap;
}

/* "webkit model: active, 1 page, 64-bit: min(16 GiB, 0.9 x ramSize 24 GiB)" */
static void model_source(char *out, size_t cap, enum mb_model model, enum mb_state state,
                         unsigned pages, unsigned word_bits, uint64_t ram_bytes) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    mb_buf_str(&b, mb_option_value_name(MB_OPT_MODEL, model));
    mb_buf_str(&b, " model: ");
    mb_buf_str(&b, mb_option_value_name(MB_OPT_STATE, state));
    mb_buf_str(&b, ", ");
    mb_buf_u64(&b, pages);
    mb_buf_str(&b, pages == 1 ? " page, " : " pages, ");
    mb_buf_str(&b, word_bits == 32 ? "32-bit: min(" : "64-bit: min(");
    mb_buf_bytes(&b, model_uncapped(model, state, pages, word_bits != 32, ram_bytes));
    mb_buf_str(&b, ", 0.9 x ramSize ");
    mb_buf_bytes(&b, ram_bytes);
    mb_buf_char(&b, ')');
}

void mb_limits_params_from_config(struct mb_limits_params *p, const struct mb_config *cfg) {
    p->state = cfg->state;
    p->pages = cfg->pages;
    p->word_bits = (unsigned)(sizeof(void *) * 8);
    p->api_limit_bytes = 0;
}

/* ---- the policy thresholds ------------------------------------------------- */

static uint64_t amount_bytes(const struct mb_amount *a, uint64_t base) {
    return a->kind == MB_AMOUNT_BYTES ? a->bytes : mb_apply_ppb(base, a->ppb);
}

static void threshold_source(char *out, size_t cap, const struct mb_config *cfg,
                             enum mb_option_id id, const struct mb_amount *a, bool is_default) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    if (!is_default) {
        mb_buf_str(&b, mb_option_desc(id)->name);
        mb_buf_char(&b, '=');
        mb_buf_str(&b, cfg->raw[id]);
        if (a->kind == MB_AMOUNT_BYTES) return;
        mb_buf_str(&b, ": ");
    }
    mb_buf_ppb(&b, a->ppb);
    mb_buf_str(&b, " x base threshold");
    if (is_default) mb_buf_str(&b, " (default)");
}

static void report_order(const struct mb_sink *sink, const struct mb_config *cfg, uint64_t cons,
                         uint64_t strict, uint64_t kill) {
    char line[640];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    mb_buf_str(&b, "membudget: ");
    unsigned named = 0;
    for (int id = MB_OPT_CONSERVATIVE; id <= MB_OPT_STRICT; id++) {
        if (!mb_config_is_set(cfg, (enum mb_option_id)id)) continue;
        mb_buf_str(&b, named++ == 0 ? "" : " and ");
        mb_buf_str(&b, mb_option_desc((enum mb_option_id)id)->name);
        mb_buf_str(&b, "='");
        mb_buf_str(&b, cfg->raw[id]);
        mb_buf_char(&b, '\'');
    }
    mb_buf_str(&b, named > 1 ? " are" : " is");
    mb_buf_str(&b, " not valid (expected conservative < strict <= kill threshold, but ");
    mb_buf_u64(&b, cons);
    mb_buf_str(&b, " < ");
    mb_buf_u64(&b, strict);
    mb_buf_str(&b, " <= ");
    mb_buf_u64(&b, kill);
    mb_buf_str(&b, " bytes does not hold); using the defaults");
    mb_sink_line(sink, b.data, b.len);
}

unsigned mb_limits_compute(struct mb_limits *lim, const struct mb_config *cfg,
                           const struct mb_limits_params *p, const struct mb_sink *sink) {
    unsigned reported = 0;
    uint64_t ram = lim->ram_bytes != 0 ? lim->ram_bytes : MB_RAM_GUESS_BYTES;
    lim->model = cfg->model;
    lim->state = p->state;
    lim->pages = p->pages != 0 ? p->pages : 1;
    lim->word_bits = p->word_bits == 32 ? 32 : 64;
    struct mb_buf b;

    /* Kill threshold: an explicit limit, else the model. */
    bool explicit_limit = p->api_limit_bytes != 0 || cfg->limit.kind != MB_AMOUNT_NONE;
    lim->kill_from_ram = false;
    mb_buf_init(&b, lim->kill_source, sizeof lim->kill_source);
    if (p->api_limit_bytes != 0) {
        lim->kill_bytes = p->api_limit_bytes;
        mb_buf_str(&b, "membudget_set_limit(");
        mb_buf_u64(&b, p->api_limit_bytes);
        mb_buf_char(&b, ')');
    } else if (cfg->limit.kind == MB_AMOUNT_BYTES) {
        lim->kill_bytes = cfg->limit.bytes;
        mb_buf_str(&b, "MEMBUDGET_LIMIT=");
        mb_buf_str(&b, cfg->raw[MB_OPT_LIMIT]);
    } else if (cfg->limit.kind == MB_AMOUNT_FRACTION) {
        lim->kill_bytes = mb_apply_ppb(ram, cfg->limit.ppb);
        lim->kill_from_ram = true;
        mb_buf_str(&b, "MEMBUDGET_LIMIT=");
        mb_buf_str(&b, cfg->raw[MB_OPT_LIMIT]);
        mb_buf_str(&b, " of ramSize ");
        mb_buf_bytes(&b, ram);
        /* Sizes have a floor of 1 MiB; a percentage of ramSize >= 128 MiB only
         * goes below it under 0.8%. */
        if (lim->kill_bytes < MB_MIB) {
            lim->kill_bytes = MB_MIB;
            mb_buf_str(&b, ", raised to the 1 MiB minimum");
        }
    } else {
        lim->kill_bytes =
            mb_model_kill_threshold(cfg->model, p->state, lim->pages, lim->word_bits, ram);
        lim->kill_from_ram = lim->kill_bytes == mb_ram_cap(ram);
        model_source(lim->kill_source, sizeof lim->kill_source, cfg->model, p->state, lim->pages,
                     lim->word_bits, ram);
    }

    mb_buf_init(&b, lim->inactive_kill_source, sizeof lim->inactive_kill_source);
    if (explicit_limit) {
        lim->inactive_kill_bytes = lim->kill_bytes;
        mb_buf_str(&b, "the kill threshold (the limit is explicit)");
    } else {
        lim->inactive_kill_bytes = mb_model_kill_threshold(cfg->model, MB_STATE_INACTIVE,
                                                           lim->pages, lim->word_bits, ram);
        model_source(lim->inactive_kill_source, sizeof lim->inactive_kill_source, cfg->model,
                     MB_STATE_INACTIVE, lim->pages, lim->word_bits, ram);
    }

    /* Base threshold: the explicit limit, else WebKit's min(3 GB, ramSize). */
    mb_buf_init(&b, lim->base_source, sizeof lim->base_source);
    const struct mb_amount def_cons = {.kind = MB_AMOUNT_FRACTION, .ppb = 800000000u};
    const struct mb_amount def_strict = {.kind = MB_AMOUNT_FRACTION, .ppb = 900000000u};
    if (explicit_limit) {
        lim->base_bytes = lim->kill_bytes;
        mb_buf_str(&b, "the kill threshold (the limit is explicit)");
    } else {
        lim->base_bytes = ram < MB_BASE_THRESHOLD_DEFAULT ? ram : MB_BASE_THRESHOLD_DEFAULT;
        mb_buf_str(&b, "min(3 GiB, ramSize ");
        mb_buf_bytes(&b, ram);
        mb_buf_char(&b, ')');
        /* The 2 GB inactive variants of the model kill below 0.9 x 3 GB: lower
         * the base to the kill threshold so the default Strict level is still
         * reached before the kill, keeping conservative < strict <= kill. */
        if (amount_bytes(&def_strict, lim->base_bytes) > lim->kill_bytes) {
            lim->base_bytes = lim->kill_bytes;
            mb_buf_str(&b, ", lowered to the kill threshold so that strict <= kill");
        }
    }

    bool cons_set = mb_config_is_set(cfg, MB_OPT_CONSERVATIVE);
    bool strict_set = mb_config_is_set(cfg, MB_OPT_STRICT);
    const struct mb_amount *cons_amount = cons_set ? &cfg->conservative : &def_cons;
    const struct mb_amount *strict_amount = strict_set ? &cfg->strict : &def_strict;
    uint64_t cons = amount_bytes(cons_amount, lim->base_bytes);
    uint64_t strict = amount_bytes(strict_amount, lim->base_bytes);
    if (!(cons < strict && strict <= lim->kill_bytes)) {
        if (cons_set || strict_set) {
            report_order(sink, cfg, cons, strict, lim->kill_bytes);
            reported++;
        }
        cons_set = strict_set = false;
        cons_amount = &def_cons;
        strict_amount = &def_strict;
        cons = amount_bytes(cons_amount, lim->base_bytes);
        strict = amount_bytes(strict_amount, lim->base_bytes);
    }
    /* With the defaults the order holds by construction (base >= 1 MiB, and
     * 0.9 x base <= kill above); this only guards the invariant. */
    if (strict > lim->kill_bytes) strict = lim->kill_bytes;
    if (strict == 0) strict = 1; /* only for a membudget_set_limit() of bytes */
    if (cons >= strict) cons = strict - 1;
    lim->conservative_bytes = cons;
    lim->strict_bytes = strict;
    threshold_source(lim->conservative_source, sizeof lim->conservative_source, cfg,
                     MB_OPT_CONSERVATIVE, cons_amount, !cons_set);
    threshold_source(lim->strict_source, sizeof lim->strict_source, cfg, MB_OPT_STRICT,
                     strict_amount, !strict_set);

    mb_buf_init(&b, lim->strict_sync_source, sizeof lim->strict_sync_source);
    lim->strict_sync_bytes = lim->base_bytes;
    mb_buf_str(&b, "1.0 x base threshold");
    if (strict > lim->base_bytes) {
        lim->strict_sync_bytes = strict;
        mb_buf_str(&b, ", raised to the strict threshold");
    }
    return reported;
}

unsigned mb_limits_init(struct mb_limits *lim, const char *root, const struct mb_config *cfg,
                        const struct mb_sink *sink) {
    struct mb_limits_params p;
    mb_limits_probe(lim, root, cfg);
    mb_limits_params_from_config(&p, cfg);
    return mb_limits_compute(lim, cfg, &p, sink);
}

/* ---- text for `membudget limits` ------------------------------------------ */

static void format_line(struct mb_buf *b, const char *name, uint64_t bytes, bool known,
                        const char *source) {
    mb_buf_str(b, name);
    mb_buf_str(b, ": ");
    if (known) {
        mb_buf_bytes(b, bytes);
        mb_buf_str(b, " (");
        mb_buf_u64(b, bytes);
        mb_buf_str(b, " bytes): ");
    }
    mb_buf_str(b, source);
    mb_buf_char(b, '\n');
}

size_t mb_limits_format(const struct mb_limits *lim, char *buf, size_t cap) {
    struct mb_buf b;
    mb_buf_init(&b, buf, cap);
    format_line(&b, "physical RAM", lim->phys_bytes, lim->phys_bytes != 0, lim->phys_source);
    format_line(&b, "cgroup limit", lim->cgroup_bytes, lim->cgroup_bytes != 0,
                lim->cgroup_source);
    format_line(&b, "ramSize", lim->ram_bytes, true, lim->ram_source);
    format_line(&b, "kill threshold", lim->kill_bytes, true, lim->kill_source);
    format_line(&b, "inactive kill threshold", lim->inactive_kill_bytes, true,
                lim->inactive_kill_source);
    format_line(&b, "base threshold", lim->base_bytes, true, lim->base_source);
    format_line(&b, "conservative", lim->conservative_bytes, true, lim->conservative_source);
    format_line(&b, "strict", lim->strict_bytes, true, lim->strict_source);
    format_line(&b, "strict synchronous", lim->strict_sync_bytes, true,
                lim->strict_sync_source);
    return b.len;
}
