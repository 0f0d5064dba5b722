/* RAM and container limits on Linux (alloc/os.h: os_limits_probe,
 * os_container_usage_file): MemTotal of /proc/meminfo or sysinfo(2), and the
 * own memory cgroup's limit, v1 or v2, the smallest up the hierarchy.  Every
 * file is read under a root prefix, so tests can use fake /proc and /sys
 * trees, with the platform's readers (os_read_small_file, and the line reader
 * below on os_open/os_read): no allocation, no stdio, stack buffers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "alloc/fmt.h"
#include "alloc/os.h"
#include "policy/limits.h"

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
    r->fd = (int)os_open_small_file(path);
    r->pos = r->len = 0;
    r->eof = r->skipping = false;
    return r->fd >= 0;
}

/* Opens <root><rel>; false when the path does not fit or the file cannot be
 * opened. */
MB_OWN_FRAME static bool line_reader_open_under(struct line_reader *r, const char *root,
                                                const char *rel) {
    char path[MB_PATH_MAX];
    return join_path(path, sizeof path, root, rel, NULL) && line_reader_open(r, path);
}

static void line_reader_close(struct line_reader *r) {
    if (r->fd >= 0) os_close(r->fd);
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
        long n = os_read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n == -EINTR) continue;
        if (n <= 0)
            r->eof = true;
        else
            r->len += (size_t)n;
    }
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
            if (unit != NULL && mb_parse_u64_text(p, &kib) && kib > 0 &&
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
    struct line_reader r;
    if (!line_reader_open_under(&r, root, "/proc/self/cgroup")) return false;
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
    struct line_reader r;
    if (!line_reader_open_under(&r, root, "/proc/self/mountinfo")) return false;
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
            found = mb_parse_u64_text(line + strlen("hierarchical_memory_limit "), out);
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
            os_read_small_file(file, text, sizeof text) >= 0) {
            *any_file = true;
            uint64_t v;
            /* v2 writes "max"; v1 a huge number; 0 would stop everything and
             * is taken as unreadable rather than as a limit. */
            bool limited = mb_parse_u64_text(text, &v) && v > 0 && v < MB_CGROUP_UNLIMITED_MIN;
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

/* ---- the platform interface ------------------------------------------------ */

void os_limits_probe(struct mb_limits *lim, const char *root) {
    probe_physical(lim, root);
    probe_cgroup(lim, root);
}

bool os_container_usage_file(const struct mb_limits *lim, char *out, size_t cap) {
    if (lim->cgroup_version == 0 || lim->cgroup_dir[0] == '\0') return false;
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    mb_buf_str(&b, lim->cgroup_dir);
    mb_buf_str(&b, lim->cgroup_version == 2 ? "/memory.current" : "/memory.usage_in_bytes");
    return !b.truncated;
}
