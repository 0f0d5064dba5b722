/* The machine's and the container's memory on Linux (alloc/os.h:
 * os_machine_files, os_machine_read; policy/machine.h): memory PSI
 * (/proc/pressure/memory, or the cgroup's memory.pressure on v2), MemTotal and
 * MemAvailable of /proc/meminfo, and the own memory cgroup's usage and limits
 * (v2: memory.current, memory.high, memory.max up the tree; v1:
 * memory.usage_in_bytes, memory.soft_limit_in_bytes, memory.limit_in_bytes and
 * memory.stat's hierarchical_memory_limit).  Read at pressure ticks, inside
 * allocations: the platform's small-file reader (no link followed, never
 * blocking), stack buffers, no allocation; every file is bounded and parsed as
 * untrusted text. */
#include <string.h>
#include <unistd.h>

#include "alloc/fmt.h"
#include "alloc/os.h"
#include "policy/limits.h"
#include "policy/machine.h"

/* A v1 limit at or above MB_CGROUP_UNLIMITED_MIN is none. */

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool copy_str(char *out, size_t cap, const char *s) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    mb_buf_str(&b, s);
    return !b.truncated;
}

/* out = a + b; false when it does not fit. */
static bool join_path(char *out, size_t cap, const char *a, const char *b) {
    struct mb_buf buf;
    mb_buf_init(&buf, out, cap);
    mb_buf_str(&buf, a);
    mb_buf_str(&buf, b);
    return !buf.truncated;
}

/* The value of "name value" lines (memory.stat); false when absent. */
static bool stat_value(char *text, const char *name, uint64_t *out) {
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if (starts_with(line, name) && line[strlen(name)] == ' ')
            return mb_parse_u64_text(line + strlen(name) + 1, out);
    }
    return false;
}

/* v1's memory.stat hierarchical_memory_limit: the limit with the ancestors'
 * (a container's parents that its mount does not show). */
static bool read_hierarchical_limit(const char *dir, uint64_t *out) {
    char path[MB_PATH_MAX], text[4096]; /* memory.stat is about 1 KiB */
    if (!join_path(path, sizeof path, dir, "/memory.stat") ||
        os_read_small_file(path, text, sizeof text) <= 0)
        return false;
    return stat_value(text, "hierarchical_memory_limit", out);
}

static bool dir_exists(const char *path) { return access(path, F_OK) == 0; }

/* "avg10=12.34" in a PSI line: hundredths of a percent, at most 100%. */
static bool parse_psi_avg10(const char *line, uint32_t *out) {
    const char *p = strstr(line, "avg10=");
    if (p == NULL) return false;
    p += strlen("avg10=");
    if (*p < '0' || *p > '9') return false;
    uint64_t whole = 0, frac = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > 100) return false;
    }
    unsigned places = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (places == 2) continue; /* further places only truncate */
            frac = frac * 10 + (uint64_t)(*p - '0');
            places++;
        }
    }
    for (; places < 2; places++) frac *= 10;
    if (*p != ' ' && *p != '\0' && *p != '\n') return false;
    uint64_t v = whole * 100 + frac;
    *out = (uint32_t)(v > 10000 ? 10000 : v);
    return true;
}

/* The "some" and "full" lines of a memory PSI file. */
static bool read_psi(const char *path, uint32_t *some, uint32_t *full) {
    char text[512];
    if (path[0] == '\0' || os_read_small_file(path, text, sizeof text) <= 0) return false;
    bool have_some = false, full_line = false, have_full = false;
    *full = 0; /* no full line: the system file of kernels before 5.13 on some setups */
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if (starts_with(line, "some ")) {
            have_some = parse_psi_avg10(line, some);
        } else if (starts_with(line, "full ")) {
            full_line = true;
            have_full = parse_psi_avg10(line, full);
        }
    }
    return have_some && (!full_line || have_full);
}

/* "Name:   123 kB" lines of a meminfo file, in bytes. */
static bool meminfo_value(const char *line, const char *name, uint64_t *out) {
    if (!starts_with(line, name)) return false;
    char number[32];
    const char *p = line + strlen(name);
    while (*p == ' ' || *p == '\t') p++;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < sizeof number - 1) n++;
    if (n == 0 || strcmp(p + n, " kB") != 0) return false;
    memcpy(number, p, n);
    number[n] = '\0';
    uint64_t kib;
    if (!mb_parse_u64_text(number, &kib) || kib > UINT64_MAX / 1024) return false;
    *out = kib * 1024;
    return true;
}

static bool read_meminfo(const char *path, uint64_t *total, uint64_t *available) {
    char text[1024]; /* MemTotal and MemAvailable are the first and third lines */
    if (path[0] == '\0' || os_read_small_file(path, text, sizeof text) <= 0) return false;
    bool have_total = false, have_available = false;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next == NULL) break; /* the last line may be cut: not used */
        *next++ = '\0';
        have_total = have_total || meminfo_value(line, "MemTotal:", total);
        have_available = have_available || meminfo_value(line, "MemAvailable:", available);
    }
    return have_total && have_available && *total != 0;
}

/* A number file of the cgroup: a byte count, or "max" / a v1 "no limit"
 * (read as 0 when limit is set). */
static bool read_cgroup_number(const char *dir, const char *name, bool limit, uint64_t *out) {
    char path[MB_PATH_MAX], text[64];
    if (!join_path(path, sizeof path, dir, name) ||
        os_read_small_file(path, text, sizeof text) <= 0)
        return false;
    if (limit && starts_with(text, "max")) {
        *out = 0;
        return true;
    }
    uint64_t v;
    if (!mb_parse_u64_text(text, &v)) return false;
    *out = limit && v >= MB_CGROUP_UNLIMITED_MIN ? 0 : v;
    return true;
}

/* The v1 limit including the ancestors': memory.stat's
 * hierarchical_memory_limit, else memory.limit_in_bytes. */
static bool read_v1_limit(const char *dir, uint64_t *out, char *file, size_t cap) {
    struct mb_buf b;
    mb_buf_init(&b, file, cap);
    mb_buf_str(&b, dir);
    uint64_t own = 0, hierarchical = 0;
    bool have_own = read_cgroup_number(dir, "/memory.limit_in_bytes", true, &own);
    if (read_hierarchical_limit(dir, &hierarchical) && hierarchical < MB_CGROUP_UNLIMITED_MIN &&
        hierarchical != 0 && (own == 0 || hierarchical < own)) {
        *out = hierarchical;
        mb_buf_str(&b, "/memory.stat hierarchical_memory_limit");
        return true;
    }
    mb_buf_str(&b, "/memory.limit_in_bytes");
    *out = own;
    return have_own;
}

/* The v2 limit: the smallest memory.max from the own cgroup up to the first
 * directory without one (the root cgroup has none). */
static bool read_v2_limit(const char *dir, uint64_t *out, char *file, size_t cap) {
    char at[MB_PATH_MAX];
    if (!copy_str(at, sizeof at, dir)) return false;
    bool any = false;
    *out = 0;
    for (int depth = 0; depth < 64; depth++) {
        uint64_t v;
        if (!read_cgroup_number(at, "/memory.max", true, &v)) break;
        any = true;
        if (v != 0 && (*out == 0 || v < *out)) {
            *out = v;
            struct mb_buf b;
            mb_buf_init(&b, file, cap);
            mb_buf_str(&b, at);
            mb_buf_str(&b, "/memory.max");
        }
        char *slash = strrchr(at, '/');
        if (slash == NULL || slash == at) break;
        *slash = '\0';
    }
    return any;
}

static void read_container(const struct mb_machine_files *f, struct mb_machine_reading *out) {
    const char *dir = f->cgroup_dir;
    if (f->cgroup_version == 0 || dir[0] == '\0') return;
    bool v2 = f->cgroup_version == 2;
    out->limit_valid = v2 ? read_v2_limit(dir, &out->limit_bytes, out->limit_file,
                                          sizeof out->limit_file)
                          : read_v1_limit(dir, &out->limit_bytes, out->limit_file,
                                          sizeof out->limit_file);
    out->cgroup_max_bytes = out->limit_valid ? out->limit_bytes : 0;
    if (!read_cgroup_number(dir, v2 ? "/memory.high" : "/memory.soft_limit_in_bytes", true,
                            &out->cgroup_high_bytes))
        out->cgroup_high_bytes = 0;
    out->cgroup_valid = read_cgroup_number(dir, v2 ? "/memory.current" : "/memory.usage_in_bytes",
                                           false, &out->cgroup_usage_bytes);
}

void os_machine_files(const struct mb_limits *lim, const char *psi_file, const char *meminfo_file,
                      struct mb_machine_files *out) {
    memset(out, 0, sizeof *out);
    out->cgroup_version = lim->cgroup_version;
    if (lim->cgroup_version != 0) copy_str(out->cgroup_dir, sizeof out->cgroup_dir, lim->cgroup_dir);
    if (psi_file != NULL && psi_file[0] != '\0') {
        copy_str(out->psi, sizeof out->psi, psi_file);
    } else {
        /* The container's own pressure where the kernel keeps one (v2). */
        char path[MB_PATH_MAX];
        bool own = lim->cgroup_version == 2 &&
                   join_path(path, sizeof path, lim->cgroup_dir, "/memory.pressure") &&
                   dir_exists(path);
        copy_str(out->psi, sizeof out->psi, own ? path : "/proc/pressure/memory");
    }
    copy_str(out->meminfo, sizeof out->meminfo,
             meminfo_file != NULL && meminfo_file[0] != '\0' ? meminfo_file : "/proc/meminfo");
}

void os_machine_read(const struct mb_machine_files *f, struct mb_machine_reading *out) {
    memset(out, 0, sizeof *out);
    out->psi_valid = read_psi(f->psi, &out->psi_some_avg10, &out->psi_full_avg10);
    out->mem_valid = read_meminfo(f->meminfo, &out->mem_total_bytes, &out->mem_available_bytes);
    read_container(f, out);
}
