/* Limits, thresholds and configuration (DESIGN §4, §10): the jetsam model by
 * table, ramSize from fake /proc and /sys/fs/cgroup trees built in a temporary
 * directory, every MEMBUDGET_* parser with good and bad values (each bad one
 * must cost exactly one line and keep the default), and, where root may create
 * a v1 memory cgroup, the same numbers seen from inside a real one. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/budget.h"
#include "policy/config.h"
#include "policy/limits.h"
#include "tests/harness.h"

#define GIB ((uint64_t)1 << 30)
#define MIB ((uint64_t)1 << 20)

/* expect_*_eq of harness.h take a plain message; this one takes a format. */
#define expect_eq_ctx(a, b, fmt, ...)                                                       \
    do {                                                                                    \
        uint64_t ea_ = (uint64_t)(a), eb_ = (uint64_t)(b);                                  \
        if (ea_ != eb_)                                                                     \
            harness_fail(__FILE__, __LINE__, "%s == %" PRIu64 ", expected %" PRIu64 ": " fmt, \
                         #a, ea_, eb_, __VA_ARGS__);                                        \
    } while (0)

static char temp_root[256];
static int skipped;
static bool current_skipped;

/* ---- helpers: fake trees, a captured sink, a table environment ---------- */

static void make_dirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

/* Writes root/rel (creating directories), content as given. */
static void put_file(const char *root, const char *rel, const char *content) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    make_dirs(path);
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

/* A fresh empty directory for one fake tree. */
static const char *new_tree(char *out, size_t cap) {
    static int serial;
    snprintf(out, cap, "%s/tree%d", temp_root, ++serial);
    make_dirs(out);
    return out;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

struct capture {
    char text[8192];
    size_t len;
    unsigned lines;
};

static void capture_write(void *ctx, const char *line, size_t len) {
    struct capture *c = ctx;
    if (c->len + len + 2 < sizeof c->text) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len++] = '\n';
        c->text[c->len] = '\0';
    }
    c->lines++;
}

static struct mb_sink capture_sink(struct capture *c) {
    memset(c, 0, sizeof *c);
    return (struct mb_sink){.write = capture_write, .ctx = c};
}

struct env_table {
    const char *pairs[32][2];
};

static const char *table_getenv(void *ctx, const char *name) {
    const struct env_table *t = ctx;
    for (int i = 0; i < 26 && t->pairs[i][0] != NULL; i++)
        if (strcmp(t->pairs[i][0], name) == 0) return t->pairs[i][1];
    return NULL;
}

static void config_from(struct mb_config *cfg, const struct env_table *env, struct capture *cap) {
    struct mb_sink sink = capture_sink(cap);
    mb_config_read(cfg, table_getenv, (void *)env, &sink);
}

static bool amount_equal(const struct mb_amount *a, const struct mb_amount *b) {
    return a->kind == b->kind && a->bytes == b->bytes && a->ppb == b->ppb;
}

/* Field by field: padding bytes are not part of a configuration. */
static bool levels_equal(const struct mb_levels *a, const struct mb_levels *b) {
    return a->conservative_ppb == b->conservative_ppb && a->strict_ppb == b->strict_ppb;
}

static bool config_equal(const struct mb_config *a, const struct mb_config *b, bool with_masks) {
    bool same = amount_equal(&a->limit, &b->limit) && a->action == b->action &&
                a->model == b->model && a->state == b->state && a->pages == b->pages &&
                a->ram_bytes == b->ram_bytes && amount_equal(&a->conservative, &b->conservative) &&
                amount_equal(&a->strict, &b->strict) && a->footprint == b->footprint &&
                a->monitor == b->monitor && a->interval_ns == b->interval_ns &&
                a->sample_bytes == b->sample_bytes &&
                strcmp(a->report_path, b->report_path) == 0 && a->backend == b->backend &&
                a->verbose == b->verbose && a->machine == b->machine &&
                levels_equal(&a->psi, &b->psi) && levels_equal(&a->mem_used, &b->mem_used) &&
                levels_equal(&a->cgroup_used, &b->cgroup_used) &&
                strcmp(a->psi_file, b->psi_file) == 0 &&
                strcmp(a->meminfo_file, b->meminfo_file) == 0;
    if (with_masks) {
        same = same && a->set_mask == b->set_mask && a->error_mask == b->error_mask;
        for (int i = 0; i < MB_OPT_COUNT; i++) same = same && strcmp(a->raw[i], b->raw[i]) == 0;
    }
    return same;
}

/* ---- the jetsam model, by table ----------------------------------------- */

struct model_case {
    enum mb_model model;
    enum mb_state state;
    unsigned pages, bits;
    uint64_t ram, want;
};

static void test_model_table(void) {
    static const struct model_case cases[] = {
        /* current WebKit, 64-bit */
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 64, 24 * GIB, 16 * GIB}, /* 15 + 1, cap 21.6 */
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 64, 8 * GIB, 7730941132}, /* cap 0.9 x 8 GiB */
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 64, 32 * GIB, 16 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 3, 64, 32 * GIB, 18 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 64, 16 * GIB, 8 * GIB}, /* not > 16 GB: 7 + 1 */
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 64, 1024 * MIB, 966367641}, /* 921.6 MiB */
        {MB_MODEL_WEBKIT, MB_STATE_INACTIVE, 3, 64, 24 * GIB, 6 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_INACTIVE, 1, 64, 24 * GIB, 4 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_INACTIVE, 30, 64, 24 * GIB, 23192823398}, /* cap 21.6 GiB */
        /* current WebKit, 32-bit */
        {MB_MODEL_WEBKIT, MB_STATE_INACTIVE, 1, 32, 24 * GIB, 2 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_INACTIVE, 3, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 1, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 9, 32, 2 * GIB, 1932735283}, /* cap 0.9 x 2 GiB */
        /* legacy: 1, 3 and 9 pages, active and inactive, 64- and 32-bit */
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 1, 64, 24 * GIB, 4 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 3, 64, 24 * GIB, 6 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 9, 64, 24 * GIB, 8 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 1, 64, 24 * GIB, 2 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 3, 64, 24 * GIB, 4 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 9, 64, 24 * GIB, 6 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 1, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 3, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 9, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 1, 32, 24 * GIB, 2 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 3, 32, 24 * GIB, 3 * GIB},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 9, 32, 24 * GIB, 3 * GIB},
        /* legacy with the 0.9 x ramSize cap */
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_ACTIVE, 9, 64, 4 * GIB, 3865470566},
        {MB_MODEL_WEBKIT_LEGACY, MB_STATE_INACTIVE, 1, 32, 1024 * MIB, 966367641},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct model_case *c = &cases[i];
        uint64_t got = mb_model_kill_threshold(c->model, c->state, c->pages, c->bits, c->ram);
        if (got != c->want)
            harness_fail(__FILE__, __LINE__,
                         "case %zu: %s %s %u pages %u-bit ram %" PRIu64 ": got %" PRIu64
                         ", want %" PRIu64,
                         i, mb_option_value_name(MB_OPT_MODEL, c->model),
                         mb_option_value_name(MB_OPT_STATE, c->state), c->pages, c->bits, c->ram,
                         got, c->want);
    }
    /* pages == 0 is taken as 1 */
    expect_zu_eq(mb_model_kill_threshold(MB_MODEL_WEBKIT, MB_STATE_ACTIVE, 0, 64, 24 * GIB),
                 16 * GIB);
}

static void test_ram_rounding_and_cap(void) {
    expect_zu_eq(mb_ram_round_up(1000 * MIB), 1024 * MIB);
    expect_zu_eq(mb_ram_round_up(1024 * MIB), 1024 * MIB);
    expect_zu_eq(mb_ram_round_up(1), 128 * MIB);
    expect_zu_eq(mb_ram_round_up(24684084ull * 1024), 189 * 128 * MIB);
    expect_zu_eq(mb_ram_round_up(UINT64_MAX), UINT64_MAX & ~(128 * MIB - 1));
    /* The integer cap equals WebKit's static_cast<size_t>(ramSize * 0.9) on
     * every ramSize up to 64 TiB (they are multiples of 128 MiB). */
    unsigned mismatches = 0;
    for (uint64_t k = 1; k <= 512 * 1024; k++) {
        uint64_t ram = k * 128 * MIB;
        if (mb_ram_cap(ram) != (uint64_t)((double)ram * 0.9)) mismatches++;
    }
    expect_int_eq(mismatches, 0);
    expect_zu_eq(mb_ram_cap(UINT64_MAX), UINT64_MAX / 10 * 9 + 4);
}

/* ---- ramSize from fake trees --------------------------------------------- */

#define MEMINFO_24G "MemTotal:       25165824 kB\nMemFree:        20000000 kB\n"
#define MEMINFO_8G "MemTotal:        8388608 kB\nMemFree:         1000000 kB\n"
#define MOUNTS_BASE                                                                         \
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"                              \
    "25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
#define MOUNTS_V1                                                                           \
    MOUNTS_BASE                                                                             \
    "31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755\n" \
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "          \
    "rw,cpu,cpuacct\n"                                                                      \
    "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup " \
    "cgroup rw,memory\n"
#define MOUNTS_V2                                                                           \
    MOUNTS_BASE                                                                             \
    "30 25 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 " \
    "rw,nsdelegate,memory_recursiveprot\n"
#define CGROUP_V1(path) "12:memory:" path "\n11:cpu,cpuacct:" path "\n1:name=systemd:" path "\n"
#define CGROUP_V2(path) "0::" path "\n"
#define V1_UNLIMITED "9223372036854771712\n"
#define M1000 "1048576000\n"

struct tree_case {
    const char *name;
    const char *files[12][2]; /* relative path, content */
    const char *env[4][2];
    uint64_t phys, cgroup, ram, kill;
    int version;
    const char *cgroup_source; /* a substring of lim.cgroup_source */
    const char *cgroup_dir;    /* the end of lim.cgroup_dir; NULL: not checked */
};

static const struct tree_case tree_cases[] = {
    {"24 GiB, no cgroup, active 1 page",
     {{"proc/meminfo", MEMINFO_24G}},
     {{NULL, NULL}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 0, "none: cgroup v1: no memory controller line", ""},
    {"8 GiB active",
     {{"proc/meminfo", MEMINFO_8G}},
     {{NULL, NULL}},
     8 * GIB, 0, 8 * GIB, 7730941132, 0, NULL, NULL},
    {"inactive 3 pages on 24 GiB",
     {{"proc/meminfo", MEMINFO_24G}},
     {{"MEMBUDGET_STATE", "inactive"}, {"MEMBUDGET_PAGES", "3"}},
     24 * GIB, 0, 24 * GIB, 6 * GIB, 0, NULL, NULL},
    {"MemTotal not a multiple of 128 MiB",
     {{"proc/meminfo", "MemTotal:       24684084 kB\n"}},
     {{NULL, NULL}},
     24684084ull * 1024, 0, 189 * 128 * MIB, 16 * GIB, 0, NULL, NULL},
    {"v1 1000 MiB cgroup",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V1},
      {"proc/self/cgroup", CGROUP_V1("/mb")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", V1_UNLIMITED},
      {"sys/fs/cgroup/memory/mb/memory.limit_in_bytes", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1,
     "cgroup v1 ", "/sys/fs/cgroup/memory/mb"},
    {"v2 1000 MiB cgroup",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/mb")},
      {"sys/fs/cgroup/mb/memory.max", M1000},
      {"sys/fs/cgroup/mb/memory.current", "4096\n"}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 2,
     "/sys/fs/cgroup/mb/memory.max = 1048576000", "/sys/fs/cgroup/mb"},
    {"v2 nested: 2G parent, max leaf",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/a/b")},
      {"sys/fs/cgroup/a/memory.max", "2147483648\n"},
      {"sys/fs/cgroup/a/b/memory.max", "max\n"}},
     {{NULL, NULL}},
     24 * GIB, 2 * GIB, 2 * GIB, 1932735283, 2,
     "/sys/fs/cgroup/a/memory.max = 2147483648", "/sys/fs/cgroup/a/b"},
    {"v2 nested: 4G > 3G > max, the smallest up the path wins",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/a/b/c")},
      {"sys/fs/cgroup/a/memory.max", "4294967296\n"},
      {"sys/fs/cgroup/a/b/memory.max", "3221225472\n"},
      {"sys/fs/cgroup/a/b/c/memory.max", "max\n"}},
     {{NULL, NULL}},
     24 * GIB, 3 * GIB, 3 * GIB, 2899102924, 2, "/sys/fs/cgroup/a/b/memory.max = 3221225472",
     "/sys/fs/cgroup/a/b/c"},
    {"v2 nested: leaf smaller than its parent",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/a/b")},
      {"sys/fs/cgroup/a/memory.max", "3221225472\n"},
      {"sys/fs/cgroup/a/b/memory.max", "1073741824\n"}},
     {{NULL, NULL}},
     24 * GIB, 1 * GIB, 1 * GIB, 966367641, 2, "/sys/fs/cgroup/a/b/memory.max = 1073741824",
     NULL},
    {"v1 nested: 1500M parent, unlimited leaf",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V1},
      {"proc/self/cgroup", CGROUP_V1("/a/b")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", V1_UNLIMITED},
      {"sys/fs/cgroup/memory/a/memory.limit_in_bytes", "1572864000\n"},
      {"sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", V1_UNLIMITED}},
     {{NULL, NULL}},
     24 * GIB, 1500 * MIB, 1536 * MIB, 1449551462, 1,
     "/sys/fs/cgroup/memory/a/memory.limit_in_bytes = 1572864000", "/sys/fs/cgroup/memory/a/b"},
    {"v2 max everywhere: no limit",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/a/b")},
      {"sys/fs/cgroup/a/memory.max", "max\n"},
      {"sys/fs/cgroup/a/b/memory.max", "max\n"}},
     {{NULL, NULL}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 2, "none: cgroup v2 no limit: memory.max unlimited from /a/b",
     "/sys/fs/cgroup/a/b"},
    {"v1 unlimited huge value: no limit",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V1},
      {"proc/self/cgroup", CGROUP_V1("/mb")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", V1_UNLIMITED},
      {"sys/fs/cgroup/memory/mb/memory.limit_in_bytes", "9223372036854710272\n"}},
     {{NULL, NULL}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 1, "none: cgroup v1 no limit", "/sys/fs/cgroup/memory/mb"},
    {"v1 path not below the mount's root: the mount root is used",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo",
       MOUNTS_BASE "35 25 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup "
                   "rw,memory\n"},
      {"proc/self/cgroup", CGROUP_V1("/kubepods/pod1/xyz")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1,
     "not below the mount's root /docker/abc, so the mount root was used",
     "/sys/fs/cgroup/memory"},
    {"v1 path below a non-root mount root",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo",
       MOUNTS_BASE "35 25 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup "
                   "rw,memory\n"},
      {"proc/self/cgroup", CGROUP_V1("/docker/abc/sub")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n"},
      {"sys/fs/cgroup/memory/sub/memory.limit_in_bytes", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1,
     "/sys/fs/cgroup/memory/sub/memory.limit_in_bytes = 1048576000", "/sys/fs/cgroup/memory/sub"},
    {"several v1 memory mounts: the one the path lies below wins",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo",
       MOUNTS_BASE "36 25 0:32 /other /mnt/other-memory rw - cgroup cgroup rw,memory\n"
                   "35 25 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"},
      {"proc/self/cgroup", CGROUP_V1("/mb")},
      {"mnt/other-memory/memory.limit_in_bytes", "104857600\n"},
      {"sys/fs/cgroup/memory/mb/memory.limit_in_bytes", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1,
     "/sys/fs/cgroup/memory/mb/memory.limit_in_bytes = 1048576000", "/sys/fs/cgroup/memory/mb"},
    {"v1 a prefix that is not a path component is not below",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo",
       MOUNTS_BASE "35 25 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"},
      {"proc/self/cgroup", CGROUP_V1("/docker/abcdef")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", M1000},
      {"sys/fs/cgroup/memory/def/memory.limit_in_bytes", "104857600\n"}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1, "so the mount root was used", NULL},
    {"v2 cgroup namespace: a .. path falls back to the mount root",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/../../other/x")},
      {"sys/fs/cgroup/memory.max", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 2, "so the mount root was used",
     "/sys/fs/cgroup"},
    {"nothing readable: 512 MiB",
     {{NULL, NULL}},
     {{NULL, NULL}},
     0, 0, 512 * MIB, 483183820, 0, "none: ", ""},
    {"a cgroup but no meminfo",
     {{"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/mb")},
      {"sys/fs/cgroup/mb/memory.max", M1000}},
     {{NULL, NULL}},
     0, 1000 * MIB, 1024 * MIB, 966367641, 2, NULL, NULL},
    {"MEMBUDGET_RAM below physical RAM",
     {{"proc/meminfo", MEMINFO_24G}},
     {{"MEMBUDGET_RAM", "2G"}},
     24 * GIB, 0, 2 * GIB, 1932735283, 0, NULL, NULL},
    {"MEMBUDGET_RAM above physical RAM changes nothing",
     {{"proc/meminfo", MEMINFO_24G}},
     {{"MEMBUDGET_RAM", "64G"}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 0, NULL, NULL},
    {"MEMBUDGET_RAM alone",
     {{NULL, NULL}},
     {{"MEMBUDGET_RAM", "3000M"}},
     0, 0, 3072 * MIB, 2899102924, 0, NULL, NULL},
    {"hybrid: v1 memory plus a v2 mount without memory files",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo",
       MOUNTS_V1 "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"},
      {"proc/self/cgroup", CGROUP_V1("/mb") "0::/\n"},
      {"sys/fs/cgroup/unified/cgroup.procs", "1\n"},
      {"sys/fs/cgroup/memory/mb/memory.limit_in_bytes", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 1, "cgroup v1 ", "/sys/fs/cgroup/memory/mb"},
    {"v1 hierarchical_memory_limit from an invisible ancestor",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V1},
      {"proc/self/cgroup", CGROUP_V1("/mb")},
      {"sys/fs/cgroup/memory/memory.limit_in_bytes", V1_UNLIMITED},
      {"sys/fs/cgroup/memory/mb/memory.limit_in_bytes", V1_UNLIMITED},
      {"sys/fs/cgroup/memory/mb/memory.stat",
       "cache 0\nrss 4096\nhierarchical_memory_limit 734003200\nhierarchical_memsw_limit 1\n"}},
     {{NULL, NULL}},
     24 * GIB, 700 * MIB, 768 * MIB, 724775731, 1,
     "/mb/memory.stat hierarchical_memory_limit = 734003200", NULL},
    {"garbage in memory.max is not a limit",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/mb")},
      {"sys/fs/cgroup/mb/memory.max", "lots\n"}},
     {{NULL, NULL}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 2, "none: ", NULL},
    {"v2 without limits but with memory.current: the dir for the cgroup footprint",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/user.slice/app")},
      {"sys/fs/cgroup/user.slice/app/memory.current", "1234\n"}},
     {{NULL, NULL}},
     24 * GIB, 0, 24 * GIB, 16 * GIB, 2, "no limit file: memory.max absent",
     "/sys/fs/cgroup/user.slice/app"},
    {"the leaf directory does not exist: its ancestors still count",
     {{"proc/meminfo", MEMINFO_24G},
      {"proc/self/mountinfo", MOUNTS_V2},
      {"proc/self/cgroup", CGROUP_V2("/a/gone")},
      {"sys/fs/cgroup/a/memory.max", M1000}},
     {{NULL, NULL}},
     24 * GIB, 1000 * MIB, 1024 * MIB, 966367641, 2, "/sys/fs/cgroup/a/memory.max", "/sys/fs/cgroup/a"},
};

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void test_trees(void) {
    for (size_t i = 0; i < sizeof tree_cases / sizeof tree_cases[0]; i++) {
        const struct tree_case *c = &tree_cases[i];
        char root[512];
        new_tree(root, sizeof root);
        for (int f = 0; f < 12 && c->files[f][0] != NULL; f++)
            put_file(root, c->files[f][0], c->files[f][1]);
        struct env_table env = {{{NULL, NULL}}};
        for (int e = 0; e < 4 && c->env[e][0] != NULL; e++) {
            env.pairs[e][0] = c->env[e][0];
            env.pairs[e][1] = c->env[e][1];
        }
        struct mb_config cfg;
        struct capture cap;
        config_from(&cfg, &env, &cap);
        expect_eq_ctx(cap.lines, 0, "tree \"%s\": %s", c->name, cap.text);
        struct mb_limits lim;
        struct mb_sink sink = capture_sink(&cap);
        unsigned reported = mb_limits_init(&lim, root, &cfg, &sink);

        bool ok = lim.phys_bytes == c->phys && lim.cgroup_bytes == c->cgroup &&
                  lim.ram_bytes == c->ram && lim.kill_bytes == c->kill &&
                  lim.cgroup_version == c->version && reported == 0 && cap.lines == 0;
        if (c->cgroup_source != NULL && strstr(lim.cgroup_source, c->cgroup_source) == NULL)
            ok = false;
        if (c->cgroup_dir != NULL &&
            (c->cgroup_dir[0] == '\0' ? lim.cgroup_dir[0] != '\0'
                                      : !ends_with(lim.cgroup_dir, c->cgroup_dir)))
            ok = false;
        if (!ok) {
            char text[4096];
            mb_limits_format(&lim, text, sizeof text);
            harness_fail(__FILE__, __LINE__,
                         "tree \"%s\": phys %" PRIu64 " (want %" PRIu64 "), cgroup %" PRIu64
                         " (want %" PRIu64 "), ram %" PRIu64 " (want %" PRIu64 "), kill %" PRIu64
                         " (want %" PRIu64 "), version %d (want %d), dir '%s' (want ...'%s'), "
                         "source must contain '%s', %u lines reported\n%s",
                         c->name, lim.phys_bytes, c->phys, lim.cgroup_bytes, c->cgroup,
                         lim.ram_bytes, c->ram, lim.kill_bytes, c->kill, lim.cgroup_version,
                         c->version, lim.cgroup_dir, c->cgroup_dir ? c->cgroup_dir : "(any)",
                         c->cgroup_source ? c->cgroup_source : "", cap.lines + reported, text);
        }
    }
}

/* The provenance names the exact file and value, and the model inputs. */
static void test_tree_sources(void) {
    char root[512];
    new_tree(root, sizeof root);
    put_file(root, "proc/meminfo", MEMINFO_24G);
    put_file(root, "proc/self/mountinfo", MOUNTS_V1);
    put_file(root, "proc/self/cgroup", CGROUP_V1("/x"));
    put_file(root, "sys/fs/cgroup/memory/x/memory.limit_in_bytes", M1000);
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_limits lim;
    mb_limits_init(&lim, root, &cfg, NULL);

    char want[1024];
    snprintf(want, sizeof want,
             "cgroup v1 %s/sys/fs/cgroup/memory/x/memory.limit_in_bytes = 1048576000", root);
    expect_true(strcmp(lim.cgroup_source, want) == 0, "'%s' != '%s'", lim.cgroup_source, want);
    snprintf(want, sizeof want, "MemTotal of %s/proc/meminfo = 25165824 kB", root);
    expect_true(strcmp(lim.phys_source, want) == 0, "'%s' != '%s'", lim.phys_source, want);
    expect_true(strcmp(lim.ram_source, "min(physical RAM 24 GiB, cgroup limit 1000 MiB) rounded "
                                       "up to a multiple of 128 MiB") == 0,
                "'%s'", lim.ram_source);
    expect_true(strcmp(lim.kill_source,
                       "webkit model: active, 1 page, 64-bit: min(8 GiB, 0.9 x ramSize 1 GiB)") ==
                    0,
                "'%s'", lim.kill_source);
    expect_true(strcmp(lim.inactive_kill_source,
                       "webkit model: inactive, 1 page, 64-bit: min(4 GiB, 0.9 x ramSize 1 GiB)") ==
                    0,
                "'%s'", lim.inactive_kill_source);
    /* The kill threshold is 0.9 x ramSize and the cgroup set ramSize: the
     * death line names the cgroup file. */
    expect_true(lim.ram_from_cgroup && lim.kill_from_ram);
    struct mb_limits other = lim;
    mb_config_set(&cfg, MB_OPT_LIMIT, "512M", NULL);
    struct mb_limits_params params;
    mb_limits_params_from_config(&params, &cfg);
    mb_limits_compute(&other, &cfg, &params, NULL);
    expect_true(!other.kill_from_ram, "%s", other.kill_source);
    mb_config_set(&cfg, MB_OPT_LIMIT, "50%", NULL);
    mb_limits_compute(&other, &cfg, &params, NULL);
    expect_true(other.kill_from_ram, "%s", other.kill_source);
    mb_config_defaults(&cfg);
    mb_config_set(&cfg, MB_OPT_RAM, "512M", NULL);
    mb_limits_init(&other, root, &cfg, NULL);
    expect_true(!other.ram_from_cgroup && other.kill_from_ram, "%s", other.ram_source);
    mb_config_defaults(&cfg);

    char text[4096];
    size_t n = mb_limits_format(&lim, text, sizeof text);
    expect_zu_eq(n, strlen(text));
    expect_true(strstr(text, "kill threshold: 921.6 MiB (966367641 bytes): webkit model: active, "
                             "1 page, 64-bit") != NULL,
                "%s", text);
    expect_true(strstr(text, "ramSize: 1 GiB (1073741824 bytes): min(") != NULL, "%s", text);
    expect_true(strstr(text, "conservative: 819.2 MiB (858993459 bytes): 0.8 x base threshold "
                             "(default)") != NULL,
                "%s", text);
    expect_true(strstr(text, "strict: 921.6 MiB (966367641 bytes)") != NULL, "%s", text);
    expect_true(strstr(text, "strict synchronous: 1 GiB (1073741824 bytes)") != NULL, "%s", text);
    /* A buffer too small is cut, still terminated. */
    char small[40];
    n = mb_limits_format(&lim, small, sizeof small);
    expect_zu_eq(n, sizeof small - 1);
    expect_zu_eq(strlen(small), sizeof small - 1);
}

/* A mountinfo line longer than the reader's buffer (overlay mounts with many
 * layers) is skipped whole; a mount point with an escaped space still works. */
static void test_long_mountinfo_and_escapes(void) {
    char root[512];
    new_tree(root, sizeof root);
    static char mountinfo[20000];
    char *p = mountinfo;
    p += sprintf(p, "%s", MOUNTS_BASE);
    p += sprintf(p, "40 22 0:50 / /var/lib/docker/overlay rw - overlay overlay rw,lowerdir=");
    for (int i = 0; i < 1500; i++) p += sprintf(p, "/l/%05d:", i);
    p += sprintf(p, "\n");
    p += sprintf(p, "30 25 0:27 / /sys/fs/cgroup\\040two rw - cgroup2 cgroup2 rw\n");
    expect_true(strlen(mountinfo) > 3 * 4096); /* three times the reader's buffer */
    put_file(root, "proc/meminfo", MEMINFO_24G);
    put_file(root, "proc/self/mountinfo", mountinfo);
    put_file(root, "proc/self/cgroup", CGROUP_V2("/mb"));
    put_file(root, "sys/fs/cgroup two/mb/memory.max", M1000);
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_limits lim;
    mb_limits_init(&lim, root, &cfg, NULL);
    expect_eq_ctx(lim.cgroup_bytes, 1000 * MIB, "%s", lim.cgroup_source);
    expect_int_eq(lim.cgroup_version, 2);
    expect_true(ends_with(lim.cgroup_dir, "/sys/fs/cgroup two/mb"), "%s", lim.cgroup_dir);
}

/* ---- kill threshold and policy thresholds from the configuration --------- */

struct threshold_case {
    const char *name;
    const char *env[5][2];
    uint64_t ram;
    unsigned bits;
    uint64_t kill, inactive, base, cons, strict, sync;
    const char *line; /* the one line reported, or NULL for none */
    const char *kill_source;
};

static const struct threshold_case threshold_cases[] = {
    {"defaults on 24 GiB",
     {{NULL, NULL}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB, NULL,
     "webkit model: active, 1 page, 64-bit: min(16 GiB, 0.9 x ramSize 24 GiB)"},
    {"MEMBUDGET_LIMIT as a size",
     {{"MEMBUDGET_LIMIT", "64M"}},
     24 * GIB, 64, 64 * MIB, 64 * MIB, 64 * MIB, 53687091, 60397977, 64 * MIB, NULL,
     "MEMBUDGET_LIMIT=64M"},
    {"MEMBUDGET_LIMIT as a decimal size",
     {{"MEMBUDGET_LIMIT", "1.5G"}},
     24 * GIB, 64, 1610612736, 1610612736, 1610612736, 1288490188, 1449551462, 1610612736, NULL,
     "MEMBUDGET_LIMIT=1.5G"},
    {"MEMBUDGET_LIMIT in plain bytes",
     {{"MEMBUDGET_LIMIT", "2147483648"}},
     24 * GIB, 64, 2 * GIB, 2 * GIB, 2 * GIB, 1717986918, 1932735283, 2 * GIB, NULL,
     "MEMBUDGET_LIMIT=2147483648"},
    {"MEMBUDGET_LIMIT as a percentage of ramSize",
     {{"MEMBUDGET_LIMIT", "80%"}},
     24 * GIB, 64, 20615843020, 20615843020, 20615843020, 16492674416, 18554258718, 20615843020,
     NULL, "MEMBUDGET_LIMIT=80% of ramSize 24 GiB"},
    {"MEMBUDGET_LIMIT 100% of a 1 GiB ramSize",
     {{"MEMBUDGET_LIMIT", "100%"}},
     1 * GIB, 64, 1 * GIB, 1 * GIB, 1 * GIB, 858993459, 966367641, 1 * GIB, NULL, NULL},
    {"a tiny percentage is raised to 1 MiB",
     {{"MEMBUDGET_LIMIT", "0.5%"}},
     128 * MIB, 64, MIB, MIB, MIB, 838860, 943718, MIB, NULL,
     "MEMBUDGET_LIMIT=0.5% of ramSize 128 MiB, raised to the 1 MiB minimum"},
    {"a 1000 MiB cgroup: strict meets kill, strict synchronous above it",
     {{NULL, NULL}},
     1024 * MIB, 64, 966367641, 966367641, 1024 * MIB, 858993459, 966367641, 1024 * MIB, NULL,
     NULL},
    {"legacy inactive 1 page: the base is lowered to the kill threshold",
     {{"MEMBUDGET_MODEL", "webkit-legacy"}, {"MEMBUDGET_STATE", "inactive"}},
     24 * GIB, 64, 2 * GIB, 2 * GIB, 2 * GIB, 1717986918, 1932735283, 2 * GIB, NULL,
     "webkit-legacy model: inactive, 1 page, 64-bit: min(2 GiB, 0.9 x ramSize 24 GiB)"},
    {"webkit 32-bit inactive 1 page: base lowered too",
     {{"MEMBUDGET_STATE", "inactive"}},
     24 * GIB, 32, 2 * GIB, 2 * GIB, 2 * GIB, 1717986918, 1932735283, 2 * GIB, NULL,
     "webkit model: inactive, 1 page, 32-bit: min(2 GiB, 0.9 x ramSize 24 GiB)"},
    {"legacy active 3 pages 64-bit",
     {{"MEMBUDGET_MODEL", "webkit-legacy"}, {"MEMBUDGET_PAGES", "3"}},
     24 * GIB, 64, 6 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB, NULL,
     "webkit-legacy model: active, 3 pages, 64-bit: min(6 GiB, 0.9 x ramSize 24 GiB)"},
    {"fractions overridden",
     {{"MEMBUDGET_CONSERVATIVE", "0.5"}, {"MEMBUDGET_STRICT", "0.75"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 1610612736, 2415919104, 3 * GIB, NULL, NULL},
    {"sizes overridden",
     {{"MEMBUDGET_CONSERVATIVE", "1G"}, {"MEMBUDGET_STRICT", "2G"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 1 * GIB, 2 * GIB, 3 * GIB, NULL, NULL},
    {"percentages overridden",
     {{"MEMBUDGET_CONSERVATIVE", "50%"}, {"MEMBUDGET_STRICT", "60%"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 1610612736, 1932735283, 3 * GIB, NULL, NULL},
    {"strict above the base raises strict synchronous",
     {{"MEMBUDGET_STRICT", "4G"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 4 * GIB, 4 * GIB, NULL, NULL},
    {"strict equal to the kill threshold is allowed",
     {{"MEMBUDGET_LIMIT", "1G"}, {"MEMBUDGET_STRICT", "1"}},
     24 * GIB, 64, 1 * GIB, 1 * GIB, 1 * GIB, 858993459, 1 * GIB, 1 * GIB, NULL, NULL},
    {"wrong order: conservative above strict",
     {{"MEMBUDGET_CONSERVATIVE", "0.95"}, {"MEMBUDGET_STRICT", "0.9"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB,
     "membudget: MEMBUDGET_CONSERVATIVE='0.95' and MEMBUDGET_STRICT='0.9' are not valid "
     "(expected conservative < strict <= kill threshold, but 3060164198 < 2899102924 <= "
     "17179869184 bytes does not hold); using the defaults\n",
     NULL},
    {"wrong order: strict above the kill threshold",
     {{"MEMBUDGET_STRICT", "20G"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB,
     "membudget: MEMBUDGET_STRICT='20G' is not valid (expected conservative < strict <= kill "
     "threshold, but 2576980377 < 21474836480 <= 17179869184 bytes does not hold); using the "
     "defaults\n",
     NULL},
    {"wrong order: strict below the default conservative",
     {{"MEMBUDGET_STRICT", "0.5"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB,
     "membudget: MEMBUDGET_STRICT='0.5' is not valid (expected conservative < strict <= kill "
     "threshold, but 2576980377 < 1610612736 <= 17179869184 bytes does not hold); using the "
     "defaults\n",
     NULL},
    {"wrong order: equal thresholds",
     {{"MEMBUDGET_CONSERVATIVE", "2G"}, {"MEMBUDGET_STRICT", "2G"}},
     24 * GIB, 64, 16 * GIB, 4 * GIB, 3 * GIB, 2576980377, 2899102924, 3 * GIB,
     "membudget: MEMBUDGET_CONSERVATIVE='2G' and MEMBUDGET_STRICT='2G' are not valid (expected "
     "conservative < strict <= kill threshold, but 2147483648 < 2147483648 <= 17179869184 bytes "
     "does not hold); using the defaults\n",
     NULL},
    {"wrong order against MEMBUDGET_LIMIT",
     {{"MEMBUDGET_LIMIT", "64M"}, {"MEMBUDGET_CONSERVATIVE", "100M"}},
     24 * GIB, 64, 64 * MIB, 64 * MIB, 64 * MIB, 53687091, 60397977, 64 * MIB,
     "membudget: MEMBUDGET_CONSERVATIVE='100M' is not valid (expected conservative < strict <= "
     "kill threshold, but 104857600 < 60397977 <= 67108864 bytes does not hold); using the "
     "defaults\n",
     NULL},
};

static void case_env(const struct threshold_case *c, struct env_table *env) {
    memset(env, 0, sizeof *env);
    for (int e = 0; e < 5 && c->env[e][0] != NULL; e++) {
        env->pairs[e][0] = c->env[e][0];
        env->pairs[e][1] = c->env[e][1];
    }
}

static void test_thresholds(void) {
    for (size_t i = 0; i < sizeof threshold_cases / sizeof threshold_cases[0]; i++) {
        const struct threshold_case *c = &threshold_cases[i];
        struct env_table env;
        case_env(c, &env);
        struct mb_config cfg;
        struct capture cap;
        config_from(&cfg, &env, &cap);
        expect_eq_ctx(cap.lines, 0, "%s: the configuration itself is valid: %s", c->name,
                      cap.text);
        struct mb_limits lim;
        memset(&lim, 0, sizeof lim);
        lim.ram_bytes = c->ram;
        struct mb_limits_params p;
        mb_limits_params_from_config(&p, &cfg);
        p.word_bits = c->bits;
        struct mb_sink sink = capture_sink(&cap);
        unsigned reported = mb_limits_compute(&lim, &cfg, &p, &sink);

        bool ok = lim.kill_bytes == c->kill && lim.inactive_kill_bytes == c->inactive &&
                  lim.base_bytes == c->base && lim.conservative_bytes == c->cons &&
                  lim.strict_bytes == c->strict && lim.strict_sync_bytes == c->sync;
        if (!ok)
            harness_fail(__FILE__, __LINE__,
                         "\"%s\": kill %" PRIu64 "/%" PRIu64 " inactive %" PRIu64 "/%" PRIu64
                         " base %" PRIu64 "/%" PRIu64 " cons %" PRIu64 "/%" PRIu64
                         " strict %" PRIu64 "/%" PRIu64 " sync %" PRIu64 "/%" PRIu64
                         " (got/want)",
                         c->name, lim.kill_bytes, c->kill, lim.inactive_kill_bytes, c->inactive,
                         lim.base_bytes, c->base, lim.conservative_bytes, c->cons,
                         lim.strict_bytes, c->strict, lim.strict_sync_bytes, c->sync);
        expect_true(lim.conservative_bytes < lim.strict_bytes &&
                        lim.strict_bytes <= lim.kill_bytes &&
                        lim.strict_bytes <= lim.strict_sync_bytes,
                    "\"%s\": the invariant", c->name);
        if (c->line != NULL) {
            expect_eq_ctx(reported, 1, "\"%s\"", c->name);
            expect_eq_ctx(cap.lines, 1, "\"%s\"", c->name);
            expect_true(strcmp(cap.text, c->line) == 0, "\"%s\":\n got '%s'\nwant '%s'", c->name,
                        cap.text, c->line);
            expect_true(strstr(lim.conservative_source, "(default)") != NULL &&
                            strstr(lim.strict_source, "(default)") != NULL,
                        "\"%s\": defaults used: '%s' / '%s'", c->name, lim.conservative_source,
                        lim.strict_source);
        } else {
            expect_eq_ctx(reported, 0, "\"%s\": %s", c->name, cap.text);
            expect_eq_ctx(cap.lines, 0, "\"%s\": %s", c->name, cap.text);
        }
        if (c->kill_source != NULL)
            expect_true(strcmp(lim.kill_source, c->kill_source) == 0, "\"%s\": '%s' != '%s'",
                        c->name, lim.kill_source, c->kill_source);
    }
}

/* The arithmetic alone (mb_thresholds_compute): the same numbers as the
 * cases above, the rule that gave the kill threshold, a rejected order, and no
 * state: the same inputs give the same result, and the inputs are unchanged. */
static void test_thresholds_arithmetic(void) {
    for (size_t i = 0; i < sizeof threshold_cases / sizeof threshold_cases[0]; i++) {
        const struct threshold_case *c = &threshold_cases[i];
        struct env_table env;
        case_env(c, &env);
        struct mb_config cfg, cfg_before;
        struct capture cap;
        config_from(&cfg, &env, &cap);
        cfg_before = cfg;
        struct mb_limits_params p;
        mb_limits_params_from_config(&p, &cfg);
        p.word_bits = c->bits;
        struct mb_thresholds t, again;
        mb_thresholds_compute(&t, c->ram, &cfg, &p);
        mb_thresholds_compute(&again, c->ram, &cfg, &p);
        expect_true(memcmp(&t, &again, sizeof t) == 0 && memcmp(&cfg, &cfg_before, sizeof cfg) == 0,
                    "\"%s\": the same inputs, the same result, the inputs untouched", c->name);
        expect_true(t.kill_bytes == c->kill && t.inactive_kill_bytes == c->inactive &&
                        t.base_bytes == c->base && t.conservative_bytes == c->cons &&
                        t.strict_bytes == c->strict && t.strict_sync_bytes == c->sync,
                    "\"%s\": kill %" PRIu64 " inactive %" PRIu64 " base %" PRIu64 " cons %" PRIu64
                    " strict %" PRIu64 " sync %" PRIu64,
                    c->name, t.kill_bytes, t.inactive_kill_bytes, t.base_bytes,
                    t.conservative_bytes, t.strict_bytes, t.strict_sync_bytes);
        expect_true(t.order_rejected == (c->line != NULL), "\"%s\": order rejected %d", c->name,
                    (int)t.order_rejected);
        enum mb_kill_rule rule = cfg.limit.kind == MB_AMOUNT_BYTES      ? MB_KILL_SIZE
                                 : cfg.limit.kind == MB_AMOUNT_FRACTION ? MB_KILL_PERCENT
                                                                        : MB_KILL_MODEL;
        expect_true(t.kill_rule == rule && t.explicit_limit == (rule != MB_KILL_MODEL),
                    "\"%s\": kill rule %d", c->name, (int)t.kill_rule);
    }
    /* membudget_set_limit() comes before MEMBUDGET_LIMIT; ramSize 0 is the guess. */
    struct env_table env = {{{"MEMBUDGET_LIMIT", "64M"}}};
    struct mb_config cfg;
    struct capture cap;
    config_from(&cfg, &env, &cap);
    struct mb_limits_params p;
    mb_limits_params_from_config(&p, &cfg);
    p.api_limit_bytes = 100 * MIB;
    struct mb_thresholds t;
    mb_thresholds_compute(&t, 0, &cfg, &p);
    expect_true(t.kill_rule == MB_KILL_API && t.kill_bytes == 100 * MIB &&
                    t.ram_bytes == MB_RAM_GUESS_BYTES && !t.kill_from_ram,
                "membudget_set_limit: rule %d, kill %" PRIu64 ", ram %" PRIu64, (int)t.kill_rule,
                t.kill_bytes, t.ram_bytes);
}

static void test_threshold_sources(void) {
    struct env_table env = {{{"MEMBUDGET_CONSERVATIVE", "0.5"}, {"MEMBUDGET_STRICT", "2G"}}};
    struct mb_config cfg;
    struct capture cap;
    config_from(&cfg, &env, &cap);
    struct mb_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.ram_bytes = 24 * GIB;
    struct mb_limits_params p;
    mb_limits_params_from_config(&p, &cfg);
    p.word_bits = 64;
    mb_limits_compute(&lim, &cfg, &p, NULL);
    expect_true(strcmp(lim.conservative_source, "MEMBUDGET_CONSERVATIVE=0.5: 0.5 x base threshold") ==
                    0,
                "'%s'", lim.conservative_source);
    expect_true(strcmp(lim.strict_source, "MEMBUDGET_STRICT=2G") == 0, "'%s'", lim.strict_source);
    expect_true(strcmp(lim.base_source, "min(3 GiB, ramSize 24 GiB)") == 0, "'%s'",
                lim.base_source);
    expect_true(strcmp(lim.strict_sync_source, "1.0 x base threshold") == 0, "'%s'",
                lim.strict_sync_source);

    /* membudget_set_limit() overrides MEMBUDGET_LIMIT and says so (the 2G strict
     * override no longer fits under it: reported once, defaults used). */
    p.api_limit_bytes = 100 * MIB;
    struct mb_sink sink = capture_sink(&cap);
    expect_int_eq(mb_limits_compute(&lim, &cfg, &p, &sink), 1);
    expect_int_eq(cap.lines, 1);
    expect_zu_eq(lim.strict_bytes, 94371840);
    expect_zu_eq(lim.kill_bytes, 100 * MIB);
    expect_zu_eq(lim.base_bytes, 100 * MIB);
    expect_true(strcmp(lim.kill_source, "membudget_set_limit(104857600)") == 0, "'%s'",
                lim.kill_source);

    /* State and page count change at run time without reading a file. */
    p.api_limit_bytes = 0;
    p.state = MB_STATE_INACTIVE;
    p.pages = 2;
    mb_limits_compute(&lim, &cfg, &p, NULL);
    expect_zu_eq(lim.kill_bytes, 5 * GIB);
    expect_int_eq(lim.state, MB_STATE_INACTIVE);
    expect_int_eq(lim.pages, 2);

    /* A zero ramSize (never probed) is taken as the 512 MiB guess. */
    memset(&lim, 0, sizeof lim);
    mb_config_defaults(&cfg);
    mb_limits_params_from_config(&p, &cfg);
    p.word_bits = 64;
    mb_limits_compute(&lim, &cfg, &p, NULL);
    expect_zu_eq(lim.kill_bytes, 483183820);
}

/* ---- parsers ---------------------------------------------------------------- */

static void test_parse_size(void) {
    static const struct {
        const char *text;
        uint64_t want;
    } good[] = {
        {"512M", 536870912},      {"1.5G", 1610612736},   {"2147483648", 2147483648},
        {"1K", 1024},             {"1k", 1024},           {"64kb", 65536},
        {"512MiB", 536870912},    {"512mib", 536870912},  {"1T", 1099511627776},
        {"0.5K", 512},            {"100B", 100},          {" 8G ", 8589934592},
        {"1.25M", 1310720},       {"0.1K", 102},          {"0", 0},
        {"16777215T", 18446742974197923840ull},           {"18446744073709551615", UINT64_MAX},
        {"1.5 G", 1610612736},    {"0.000000000001T", 1}, {"3.999999999999999999999G", 4294967295},
        {"16777215.999999999999999999T", UINT64_MAX}, /* the largest fraction of the largest T */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        bool ok = mb_parse_size(good[i].text, &v);
        if (!ok || v != good[i].want)
            harness_fail(__FILE__, __LINE__, "size '%s': ok %d, %" PRIu64 ", want %" PRIu64,
                         good[i].text, ok, v, good[i].want);
    }
    static const char *const bad[] = {
        "",      " ",        "abc",  "-5",      "+5",     "1e99",  "12Q",   "1.5",
        "1.",    ".5G",      "1..5G", "1.5.5G", "0x100",  "5M5",   "1GG",   "1Gi",
        "1.5B",  "99999999999999999999T",       "18446744073709551616", "16777216T",
        "1 2",   "1G\n2G",   "1 K B", "１G",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        if (mb_parse_size(bad[i], &v) || v != 777)
            harness_fail(__FILE__, __LINE__, "size '%s' accepted as %" PRIu64, bad[i], v);
    }
}

static void test_parse_fraction_percent_duration(void) {
    static const struct {
        const char *text;
        uint32_t want;
    } fractions[] = {{"0.8", 800000000},       {"1", MB_PPB},        {"1.0", MB_PPB},
                     {"0", 0},                 {"0.123456789", 123456789},
                     {"0.1234567899", 123456789}, {" 0.9 ", 900000000}, {"1.000", MB_PPB}};
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
        uint32_t v = 1;
        bool ok = mb_parse_fraction(fractions[i].text, &v);
        if (!ok || v != fractions[i].want)
            harness_fail(__FILE__, __LINE__, "fraction '%s': ok %d, %u, want %u",
                         fractions[i].text, ok, v, fractions[i].want);
    }
    static const char *const bad_fractions[] = {"1.1", "2", "-0.5", ".5", "0.5x", "", "1.0000001",
                                                "80%"};
    for (size_t i = 0; i < sizeof bad_fractions / sizeof bad_fractions[0]; i++) {
        uint32_t v = 7;
        if (mb_parse_fraction(bad_fractions[i], &v) || v != 7)
            harness_fail(__FILE__, __LINE__, "fraction '%s' accepted as %u", bad_fractions[i], v);
    }

    static const struct {
        const char *text;
        uint32_t want;
    } percents[] = {{"80%", 800000000},  {"100%", MB_PPB},    {"12.5%", 125000000},
                    {"0.5%", 5000000},   {"33.333333333%", 333333333}, {"0%", 0},
                    {"80 %", 800000000}, {" 1% ", 10000000}};
    for (size_t i = 0; i < sizeof percents / sizeof percents[0]; i++) {
        uint32_t v = 1;
        bool ok = mb_parse_percent(percents[i].text, &v);
        if (!ok || v != percents[i].want)
            harness_fail(__FILE__, __LINE__, "percent '%s': ok %d, %u, want %u", percents[i].text,
                         ok, v, percents[i].want);
    }
    static const char *const bad_percents[] = {"200%", "100.1%", "%", "-5%", "80", "80%%", "x%",
                                               "1e2%", "99999999999999999999%"};
    for (size_t i = 0; i < sizeof bad_percents / sizeof bad_percents[0]; i++) {
        uint32_t v = 7;
        if (mb_parse_percent(bad_percents[i], &v) || v != 7)
            harness_fail(__FILE__, __LINE__, "percent '%s' accepted as %u", bad_percents[i], v);
    }

    static const struct {
        const char *text;
        uint64_t want_ns;
    } durations[] = {{"100ms", 100000000},   {"2s", 2000000000},  {"1.5s", 1500000000},
                     {"250", 250000000},     {"0.5s", 500000000}, {"1.5ms", 1500000},
                     {"3600s", 3600000000000}, {"0", 0},          {"10 MS", 10000000}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        uint64_t v = 1;
        bool ok = mb_parse_duration(durations[i].text, &v);
        if (!ok || v != durations[i].want_ns)
            harness_fail(__FILE__, __LINE__, "duration '%s': ok %d, %" PRIu64 ", want %" PRIu64,
                         durations[i].text, ok, v, durations[i].want_ns);
    }
    static const char *const bad_durations[] = {"1h", "10us", "-100ms", "ms", "", "1.5.5s",
                                                "99999999999999999999s", "100 ms s"};
    for (size_t i = 0; i < sizeof bad_durations / sizeof bad_durations[0]; i++) {
        uint64_t v = 7;
        if (mb_parse_duration(bad_durations[i], &v) || v != 7)
            harness_fail(__FILE__, __LINE__, "duration '%s' accepted as %" PRIu64,
                         bad_durations[i], v);
    }

    uint64_t u = 0;
    expect_true(mb_parse_uint("4294967295", UINT32_MAX, &u) && u == 4294967295u);
    expect_true(!mb_parse_uint("4294967296", UINT32_MAX, &u));
    expect_true(!mb_parse_uint("1.0", 10, &u));
    unsigned idx = 9;
    static const char *const names[] = {"abort", "fail", "warn", NULL};
    expect_true(mb_parse_enum(" WARN ", names, &idx) && idx == 2);
    expect_true(!mb_parse_enum("war", names, &idx) && idx == 2);
    expect_true(!mb_parse_enum("warned", names, &idx));

    struct mb_amount a;
    expect_true(mb_parse_size_or_fraction("1", &a) && a.kind == MB_AMOUNT_FRACTION &&
                a.ppb == MB_PPB);
    expect_true(mb_parse_size_or_fraction("2", &a) && a.kind == MB_AMOUNT_BYTES && a.bytes == 2);
    expect_true(mb_parse_size_or_fraction("0.75", &a) && a.kind == MB_AMOUNT_FRACTION &&
                a.ppb == 750000000);
    expect_true(mb_parse_size_or_fraction("2G", &a) && a.kind == MB_AMOUNT_BYTES &&
                a.bytes == 2 * GIB);
    static const char seventy_five_percent[] = "75%";
    expect_true(mb_parse_size_or_fraction(seventy_five_percent, &a) &&
                a.kind == MB_AMOUNT_FRACTION && a.ppb == 750000000);
    expect_true(!mb_parse_size_or_fraction("1.5", &a));
    static const char eighty_percent[] = "80%";
    expect_true(mb_parse_size_or_percent(eighty_percent, &a) && a.kind == MB_AMOUNT_FRACTION);
    expect_true(mb_parse_size_or_percent("80", &a) && a.kind == MB_AMOUNT_BYTES && a.bytes == 80);

    expect_zu_eq(mb_apply_ppb(UINT64_MAX, MB_PPB), UINT64_MAX);
    expect_zu_eq(mb_apply_ppb(3 * GIB, 800000000), 2576980377);
    expect_zu_eq(mb_apply_ppb(0, 500000000), 0);
}

/* Every malformed value costs exactly one line — variable, value, accepted form
 * — and leaves the configuration exactly as it was. */
struct bad_case {
    enum mb_option_id id;
    const char *value;
    const char *line; /* the exact line; NULL: built from the table's accepted form */
};

static const struct bad_case bad_cases[] = {
    {MB_OPT_LIMIT, "12Q",
     "membudget: MEMBUDGET_LIMIT='12Q' is not valid (expected a size from 1M to 65536T such "
     "as 512M, 1.5G or 2147483648, or a percentage of RAM such as 80%); using the default"},
    {MB_OPT_LIMIT, "abc", NULL},
    {MB_OPT_LIMIT, "-5", NULL},
    {MB_OPT_LIMIT, "0", NULL},
    {MB_OPT_LIMIT, "200%", NULL},
    {MB_OPT_LIMIT, "0%", NULL},
    {MB_OPT_LIMIT, "1e99", NULL},
    {MB_OPT_LIMIT, "", "membudget: MEMBUDGET_LIMIT='' is not valid (expected a size from 1M "
                       "to 65536T such as 512M, 1.5G or 2147483648, or a percentage of RAM "
                       "such as 80%); using the default"},
    {MB_OPT_LIMIT, "99999999999999999999T", NULL},
    {MB_OPT_LIMIT, "16777216T", NULL},
    {MB_OPT_LIMIT, "100K", NULL},
    /* Sizes past 2^56, the largest address space a process has: a limit or
     * RAM no machine can give would carry unreadable numbers into reports. */
    {MB_OPT_LIMIT, "8388608T",
     "membudget: MEMBUDGET_LIMIT='8388608T' is not valid (expected a size from 1M to 65536T "
     "such as 512M, 1.5G or 2147483648, or a percentage of RAM such as 80%); using the default"},
    {MB_OPT_LIMIT, "65536.5T", NULL},
    {MB_OPT_LIMIT, "72057594037927937", NULL},
    {MB_OPT_LIMIT, "9223372036854775808", NULL},
    {MB_OPT_RAM, "65537T",
     "membudget: MEMBUDGET_RAM='65537T' is not valid (expected a size up to 65536T such as 8G, "
     "1536M or 8589934592); using the default"},
    {MB_OPT_RAM, "18446744073709551615", NULL},
    {MB_OPT_CONSERVATIVE, "100000T", NULL},
    {MB_OPT_STRICT, "9223372036854775807", NULL},
    {MB_OPT_SAMPLE, "65536.001T",
     "membudget: MEMBUDGET_SAMPLE='65536.001T' is not valid (expected a size up to 65536T such "
     "as 512K or 1M, or 0 to turn sampling off); using the default"},
    {MB_OPT_LIMIT, "1.5", NULL},
    {MB_OPT_LIMIT, "1G\n2G",
     "membudget: MEMBUDGET_LIMIT='1G\\x0a2G' is not valid (expected a size from 1M to 65536T "
     "such as 512M, 1.5G or 2147483648, or a percentage of RAM such as 80%); using the default"},
    {MB_OPT_ACTION, "kill",
     "membudget: MEMBUDGET_ACTION='kill' is not valid (expected abort, fail or warn); using the "
     "default"},
    {MB_OPT_ACTION, "", NULL},
    {MB_OPT_MODEL, "chrome",
     "membudget: MEMBUDGET_MODEL='chrome' is not valid (expected webkit or webkit-legacy); using "
     "the default"},
    {MB_OPT_MODEL, "webkit_legacy", NULL},
    {MB_OPT_STATE, "background",
     "membudget: MEMBUDGET_STATE='background' is not valid (expected active or inactive); using "
     "the default"},
    {MB_OPT_PAGES, "0",
     "membudget: MEMBUDGET_PAGES='0' is not valid (expected a whole number of pages from 1 to "
     "4294967295); using the default"},
    {MB_OPT_PAGES, "-1", NULL},
    {MB_OPT_PAGES, "1.5", NULL},
    {MB_OPT_PAGES, "4294967296", NULL},
    {MB_OPT_PAGES, "two", NULL},
    {MB_OPT_RAM, "0", NULL},
    {MB_OPT_RAM, "lots", NULL},
    {MB_OPT_RAM, "-8G", NULL},
    {MB_OPT_CONSERVATIVE, "0",
     "membudget: MEMBUDGET_CONSERVATIVE='0' is not valid (expected a size up to 65536T such as "
     "2G, or a fraction of the base threshold such as 0.8 or 80% (above 0, at most 1)); using "
     "the default"},
    {MB_OPT_CONSERVATIVE, "1.5", NULL},
    {MB_OPT_CONSERVATIVE, "0%", NULL},
    {MB_OPT_CONSERVATIVE, "101%", NULL},
    {MB_OPT_CONSERVATIVE, "-0.5", NULL},
    {MB_OPT_STRICT, "2.0", NULL},
    {MB_OPT_STRICT, "abc", NULL},
    {MB_OPT_FOOTPRINT, "pss",
     "membudget: MEMBUDGET_FOOTPRINT='pss' is not valid (expected rss or cgroup); using the "
     "default"},
    {MB_OPT_MONITOR, "async", NULL},
    {MB_OPT_INTERVAL, "0",
     "membudget: MEMBUDGET_INTERVAL='0' is not valid (expected a duration from 1ms to 3600s such "
     "as 100ms or 2s; a plain number is milliseconds); using the default"},
    {MB_OPT_INTERVAL, "0.5ms", NULL},
    {MB_OPT_INTERVAL, "1h", NULL},
    {MB_OPT_INTERVAL, "3601s", NULL},
    {MB_OPT_INTERVAL, "-100ms", NULL},
    {MB_OPT_SAMPLE, "-1", NULL},
    {MB_OPT_SAMPLE, "512Q", NULL},
    {MB_OPT_SAMPLE, "1e6", NULL},
    {MB_OPT_REPORT, "",
     "membudget: MEMBUDGET_REPORT='' is not valid (expected a path shorter than 1024 bytes where "
     "%p stands for the pid and %% for a percent sign); using the default"},
    {MB_OPT_REPORT, "/tmp/x%d.json", NULL},
    {MB_OPT_REPORT, "/tmp/x%", NULL},
    {MB_OPT_BACKEND, "tcmalloc",
     "membudget: MEMBUDGET_BACKEND='tcmalloc' is not valid (expected native or jemalloc); using "
     "the default"},
    {MB_OPT_VERBOSE, "3",
     "membudget: MEMBUDGET_VERBOSE='3' is not valid (expected 0, 1 or 2); using the default"},
    {MB_OPT_VERBOSE, "yes", NULL},
    {MB_OPT_VERBOSE, "-1", NULL},
    {MB_OPT_CONTROL, "maybe",
     "membudget: MEMBUDGET_CONTROL='maybe' is not valid (expected on or off); using the default"},
    {MB_OPT_GROUP, "a/b",
     "membudget: MEMBUDGET_GROUP='a/b' is not valid (expected a group name of 1 to 64 characters "
     "from A-Z a-z 0-9 . _ -); using the default"},
    {MB_OPT_GROUP, "..", NULL},
    {MB_OPT_GROUP, "", NULL},
    {MB_OPT_GROUP, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL},
    {MB_OPT_GROUP_LIMIT, "1K", NULL},
    {MB_OPT_GROUP_LIMIT, "50%", NULL},
    {MB_OPT_PRIORITY, "10",
     "membudget: MEMBUDGET_PRIORITY='10' is not valid (expected a band from 0 (least important) "
     "to 9); using the default"},
};

static void test_bad_values(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        const struct mb_option_desc *d = mb_option_desc(c->id);
        struct mb_config cfg, before;
        mb_config_defaults(&cfg);
        before = cfg;
        struct capture cap;
        struct mb_sink sink = capture_sink(&cap);
        bool ok = mb_config_set(&cfg, c->id, c->value, &sink);
        char want[1024];
        if (c->line != NULL)
            snprintf(want, sizeof want, "%s\n", c->line);
        else
            snprintf(want, sizeof want, "membudget: %s='%s' is not valid (expected %s); using the "
                     "default\n", d->name, c->value, d->expected);
        expect_true(!ok, "%s='%s' accepted", d->name, c->value);
        expect_eq_ctx(cap.lines, 1, "%s='%s'", d->name, c->value);
        expect_true(strcmp(cap.text, want) == 0, "%s:\n got '%s'\nwant '%s'", d->name, cap.text,
                    want);
        expect_true(strchr(cap.text, '\n') == cap.text + cap.len - 1, "%s: one line", d->name);
        expect_true((cfg.error_mask >> c->id) & 1u, "%s: error bit", d->name);
        cfg.error_mask = before.error_mask;
        expect_true(config_equal(&cfg, &before, true), "%s='%s': the default changed", d->name,
                    c->value);
    }
    expect_true(sizeof bad_cases / sizeof bad_cases[0] >= 20);

    /* A long value is cut in the message; a long path is rejected. */
    static char long_value[3000];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[0] = '/';
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct capture cap;
    struct mb_sink sink = capture_sink(&cap);
    expect_true(!mb_config_set(&cfg, MB_OPT_REPORT, long_value, &sink));
    expect_int_eq(cap.lines, 1);
    expect_true(strstr(cap.text, "xxx...' is not valid") != NULL, "%s", cap.text);
    expect_true(cap.len < 400, "%zu", cap.len);
    expect_true(cfg.report_path[0] == '\0');
}

/* The bound itself is accepted for every size variable, in bytes or units. */
static void test_size_bound(void) {
    static const enum mb_option_id ids[] = {MB_OPT_LIMIT, MB_OPT_RAM, MB_OPT_CONSERVATIVE,
                                            MB_OPT_STRICT, MB_OPT_SAMPLE};
    static const char *const texts[] = {"65536T", "72057594037927936", "65536.0 T"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const struct mb_option_desc *d = mb_option_desc(ids[i]);
        expect_true(d->max == MB_SIZE_SETTING_MAX, "%s: max %" PRIu64, d->name, d->max);
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            struct mb_config cfg;
            mb_config_defaults(&cfg);
            struct capture cap;
            struct mb_sink sink = capture_sink(&cap);
            bool ok = mb_config_set(&cfg, ids[i], texts[t], &sink);
            expect_true(ok && cap.lines == 0, "%s='%s' rejected: %s", d->name, texts[t], cap.text);
        }
    }
    expect_true(MB_SIZE_SETTING_MAX == (uint64_t)65536 * MB_TIB);
}

/* The default writer: one write(2) of the line and its newline on fd 2. */
static void test_default_sink_writes_stderr(void) {
    int fds[2];
    expect_int_eq(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fds[1], 2);
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    bool ok = mb_config_set(&cfg, MB_OPT_ACTION, "explode", NULL);
    dup2(saved, 2);
    close(saved);
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    expect_true(!ok);
    expect_true(n > 0 && strcmp(buf, "membudget: MEMBUDGET_ACTION='explode' is not valid "
                                     "(expected abort, fail or warn); using the default\n") == 0,
                "'%s'", buf);
    /* A sink without a writer discards. */
    struct mb_sink quiet = {0};
    expect_true(!mb_config_set(&cfg, MB_OPT_ACTION, "explode", &quiet));
}

static void test_good_environment(void) {
    struct env_table env = {{
        {"MEMBUDGET_LIMIT", "1.5G"},
        {"MEMBUDGET_ACTION", "fail"},
        {"MEMBUDGET_MODEL", "webkit-legacy"},
        {"MEMBUDGET_STATE", "inactive"},
        {"MEMBUDGET_PAGES", "9"},
        {"MEMBUDGET_RAM", "8G"},
        {"MEMBUDGET_CONSERVATIVE", "0.6"},
        {"MEMBUDGET_STRICT", "1200M"},
        {"MEMBUDGET_FOOTPRINT", "cgroup"},
        {"MEMBUDGET_MONITOR", "thread"},
        {"MEMBUDGET_INTERVAL", "2s"},
        {"MEMBUDGET_SAMPLE", "0"},
        {"MEMBUDGET_REPORT", "/var/tmp/mb.%p.json"},
        {"MEMBUDGET_BACKEND", "jemalloc"},
        {"MEMBUDGET_VERBOSE", "2"},
        {"MEMBUDGET_MACHINE", "off"},
        {"MEMBUDGET_PSI", "10%,50%"},
        {"MEMBUDGET_MEM_USED", "off"},
        {"MEMBUDGET_CGROUP_USED", "80%,0%"},
        {"MEMBUDGET_PSI_FILE", "/tmp/psi"},
        {"MEMBUDGET_MEMINFO_FILE", "/tmp/meminfo"},
        {"MEMBUDGET_CONTROL", "off"},
        {"MEMBUDGET_GROUP", "make-j8.1"},
        {"MEMBUDGET_GROUP_LIMIT", "2G"},
        {"MEMBUDGET_PRIORITY", "0"},
        {"UNRELATED", "x"},
    }};
    struct mb_config cfg;
    struct capture cap;
    struct mb_sink sink = capture_sink(&cap);
    unsigned errors = mb_config_read(&cfg, table_getenv, &env, &sink);
    expect_eq_ctx(errors, 0, "%s", cap.text);
    expect_eq_ctx(cap.lines, 0, "%s", cap.text);
    expect_int_eq(cfg.limit.kind, MB_AMOUNT_BYTES);
    expect_zu_eq(cfg.limit.bytes, 1610612736);
    expect_int_eq(cfg.action, MB_ACTION_FAIL);
    expect_int_eq(cfg.model, MB_MODEL_WEBKIT_LEGACY);
    expect_int_eq(cfg.state, MB_STATE_INACTIVE);
    expect_int_eq(cfg.pages, 9);
    expect_zu_eq(cfg.ram_bytes, 8 * GIB);
    expect_int_eq(cfg.conservative.kind, MB_AMOUNT_FRACTION);
    expect_int_eq(cfg.conservative.ppb, 600000000);
    expect_int_eq(cfg.strict.kind, MB_AMOUNT_BYTES);
    expect_zu_eq(cfg.strict.bytes, 1200 * MIB);
    expect_int_eq(cfg.footprint, MB_FOOTPRINT_CGROUP);
    expect_int_eq(cfg.monitor, MB_MONITOR_THREAD);
    expect_zu_eq(cfg.interval_ns, 2000000000);
    expect_zu_eq(cfg.sample_bytes, 0);
    static const char report[] = "/var/tmp/mb.%p.json";
    expect_true(strcmp(cfg.report_path, report) == 0, "'%s'", cfg.report_path);
    expect_int_eq(cfg.backend, MB_BACKEND_JEMALLOC);
    expect_int_eq(cfg.verbose, 2);
    expect_int_eq(cfg.machine, MB_MACHINE_OFF);
    expect_int_eq(cfg.psi.conservative_ppb, 100000000);
    expect_int_eq(cfg.psi.strict_ppb, 500000000);
    expect_int_eq(cfg.mem_used.conservative_ppb + cfg.mem_used.strict_ppb, 0);
    expect_int_eq(cfg.cgroup_used.conservative_ppb, 800000000);
    expect_int_eq(cfg.cgroup_used.strict_ppb, 0);
    expect_true(strcmp(cfg.psi_file, "/tmp/psi") == 0, "'%s'", cfg.psi_file);
    expect_true(strcmp(cfg.meminfo_file, "/tmp/meminfo") == 0, "'%s'", cfg.meminfo_file);
    expect_int_eq(cfg.control, MB_CONTROL_MODE_OFF);
    expect_true(strcmp(cfg.group, "make-j8.1") == 0, "'%s'", cfg.group);
    expect_zu_eq(cfg.group_limit_bytes, 2 * GIB);
    expect_int_eq(cfg.priority, 0);
    expect_int_eq(cfg.set_mask, (1u << MB_OPT_COUNT) - 1);
    expect_int_eq(cfg.error_mask, 0);
    expect_true(strcmp(cfg.raw[MB_OPT_LIMIT], "1.5G") == 0);

    /* Reading again starts from the defaults: nothing leaks between reads. */
    struct env_table none = {{{NULL, NULL}}};
    mb_config_read(&cfg, table_getenv, &none, &sink);
    struct mb_config defaults;
    mb_config_defaults(&defaults);
    expect_true(config_equal(&cfg, &defaults, true));

    /* Several bad values: one line each, the good ones still taken. */
    struct env_table mixed = {{{"MEMBUDGET_LIMIT", "12Q"},
                               {"MEMBUDGET_ACTION", "warn"},
                               {"MEMBUDGET_PAGES", "0"},
                               {"MEMBUDGET_SAMPLE", "1M"}}};
    sink = capture_sink(&cap);
    errors = mb_config_read(&cfg, table_getenv, &mixed, &sink);
    expect_int_eq(errors, 2);
    expect_eq_ctx(cap.lines, 2, "%s", cap.text);
    expect_int_eq(cfg.limit.kind, MB_AMOUNT_NONE);
    expect_int_eq(cfg.action, MB_ACTION_WARN);
    expect_int_eq(cfg.pages, 1);
    expect_zu_eq(cfg.sample_bytes, MIB);
    expect_int_eq(cfg.error_mask, (1u << MB_OPT_LIMIT) | (1u << MB_OPT_PAGES));
}

/* The process environment, through secure_getenv. */
static void test_read_env(void) {
    setenv("MEMBUDGET_ACTION", "warn", 1);
    setenv("MEMBUDGET_INTERVAL", "250", 1);
    setenv("MEMBUDGET_VERBOSE", "9", 1);
    struct mb_config cfg;
    struct capture cap;
    struct mb_sink sink = capture_sink(&cap);
    unsigned errors = mb_config_read_env(&cfg, &sink);
    unsetenv("MEMBUDGET_ACTION");
    unsetenv("MEMBUDGET_INTERVAL");
    unsetenv("MEMBUDGET_VERBOSE");
    expect_int_eq(errors, 1);
    expect_int_eq(cfg.action, MB_ACTION_WARN);
    expect_zu_eq(cfg.interval_ns, 250000000);
    expect_int_eq(cfg.verbose, 0);
    expect_true(strcmp(cap.text, "membudget: MEMBUDGET_VERBOSE='9' is not valid (expected 0, 1 "
                                 "or 2); using the default\n") == 0,
                "'%s'", cap.text);
}

/* The table's default texts, where they are values, parse to the defaults. */
static void test_defaults_match_table(void) {
    struct mb_config defaults, cfg;
    mb_config_defaults(&defaults);
    for (int id = 0; id < MB_OPT_COUNT; id++) {
        if (id == MB_OPT_LIMIT || id == MB_OPT_RAM || id == MB_OPT_REPORT ||
            id == MB_OPT_PSI_FILE || id == MB_OPT_MEMINFO_FILE || id == MB_OPT_GROUP ||
            id == MB_OPT_GROUP_LIMIT || id == MB_OPT_PRIORITY)
            continue;
        const struct mb_option_desc *d = mb_option_desc((enum mb_option_id)id);
        cfg = defaults;
        expect_true(mb_config_set(&cfg, (enum mb_option_id)id, d->default_text, NULL), "%s",
                    d->name);
        expect_true(config_equal(&cfg, &defaults, false), "%s default '%s'", d->name,
                    d->default_text);
        expect_int_eq(mb_option_lookup(d->name), id);
    }
    expect_int_eq(mb_option_lookup("MEMBUDGET_LIMT"), -1);
    expect_true(strcmp(mb_option_value_name(MB_OPT_ACTION, MB_ACTION_WARN), "warn") == 0);
    expect_true(strcmp(mb_option_value_name(MB_OPT_ACTION, 7), "?") == 0);
    expect_true(strcmp(mb_option_value_name(MB_OPT_PAGES, 0), "?") == 0);
}

/* The outside pressure's variables (policy/machine.h): two percentages or
 * off, on or off, absolute paths; each bad value one line naming the
 * variable, the default kept. */
static void test_machine_variables(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    expect_eq_ctx(cfg.psi.conservative_ppb, 70000000u, "%s", "PSI default");
    expect_eq_ctx(cfg.psi.strict_ppb, 700000000u, "%s", "PSI default");
    expect_eq_ctx(cfg.mem_used.conservative_ppb, 900000000u, "%s", "MEM_USED default");
    expect_eq_ctx(cfg.cgroup_used.strict_ppb, 950000000u, "%s", "CGROUP_USED default");
    expect_true(mb_config_set(&cfg, MB_OPT_PSI, " 12.5%, 0% ", NULL));
    expect_eq_ctx(cfg.psi.conservative_ppb, 125000000u, "%s", "12.5%");
    expect_eq_ctx(cfg.psi.strict_ppb, 0u, "%s", "0%");
    expect_true(mb_config_set(&cfg, MB_OPT_MEM_USED, "OFF", NULL));
    expect_eq_ctx(cfg.mem_used.conservative_ppb + cfg.mem_used.strict_ppb, 0u, "%s", "off");
    expect_true(mb_config_set(&cfg, MB_OPT_MACHINE, "off", NULL));
    expect_int_eq(cfg.machine, MB_MACHINE_OFF);
    expect_true(mb_config_set(&cfg, MB_OPT_PSI_FILE, "/tmp/psi", NULL));
    expect_true(strcmp(cfg.psi_file, "/tmp/psi") == 0, "%s", cfg.psi_file);
    static const struct {
        enum mb_option_id id;
        const char *value;
    } bad[] = {{MB_OPT_PSI, "7"},         {MB_OPT_PSI, "7%"},        {MB_OPT_PSI, "7%,101%"},
               {MB_OPT_PSI, "7%,70%,1%"}, {MB_OPT_MEM_USED, "-1%,5%"}, {MB_OPT_CGROUP_USED, ""},
               {MB_OPT_MACHINE, "yes"},   {MB_OPT_PSI_FILE, "psi"},  {MB_OPT_MEMINFO_FILE, ""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct capture cap;
        struct mb_sink sink = capture_sink(&cap);
        struct mb_config before = cfg;
        expect_true(!mb_config_set(&cfg, bad[i].id, bad[i].value, &sink), "%s", bad[i].value);
        expect_int_eq(cap.lines, 1);
        expect_true(strstr(cap.text, mb_option_desc(bad[i].id)->name) != NULL, "%s", cap.text);
        expect_true(config_equal(&cfg, &before, false), "'%s' kept the value", bad[i].value);
    }
}

static void test_unknown_variables(void) {
    char *envp[] = {"PATH=/bin", "MEMBUDGET_LIMIT=1G", "MEMBUDGET_LIMT=1G", "MEMBUDGET_=x",
                    "XMEMBUDGET_FOO=1", NULL};
    struct capture cap;
    struct mb_sink sink = capture_sink(&cap);
    expect_int_eq(mb_config_check_unknown(envp, &sink), 2);
    expect_int_eq(cap.lines, 2);
    static const char first[] = "membudget: MEMBUDGET_LIMT is not a known variable (known: "
                                "MEMBUDGET_LIMIT, MEMBUDGET_ACTION, ";
    expect_true(strncmp(cap.text, first, sizeof first - 1) == 0, "%s", cap.text);
    expect_true(strstr(cap.text, "MEMBUDGET_CONTROL, MEMBUDGET_GROUP, MEMBUDGET_GROUP_LIMIT, MEMBUDGET_PRIORITY); ignored\n") != NULL,
                "%s", cap.text);
}

static void test_text_helpers(void) {
    static const struct {
        uint64_t bytes;
        const char *text;
    } sizes[] = {{0, "0 B"},           {512, "512 B"},           {1023, "1023 B"},
                 {1024, "1 KiB"},      {1536, "1.5 KiB"},        {966367641, "921.6 MiB"},
                 {16 * GIB, "16 GiB"}, {23192823398, "21.6 GiB"}, {UINT64_MAX, "16 EiB"}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char out[32];
        struct mb_buf b;
        mb_buf_init(&b, out, sizeof out);
        mb_buf_bytes(&b, sizes[i].bytes);
        expect_true(strcmp(out, sizes[i].text) == 0, "%" PRIu64 ": '%s' != '%s'", sizes[i].bytes,
                    out, sizes[i].text);
    }
    /* The column form prints the same number, up to four digits. */
    static const struct {
        uint64_t bytes;
        const char *text;
    } columns[] = {{512, "512B"},
                   {12 * MIB, "12M"},
                   {966367641, "921.6M"},
                   {1023 * MIB + MIB / 2, "1024M"},
                   {1020 * MIB + MIB / 4, "1020M"},
                   {UINT64_MAX, "16E"}};
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
        char out[8];
        expect_true(
            strcmp(mb_bytes_short_text(out, sizeof out, columns[i].bytes), columns[i].text) == 0,
            "%" PRIu64 ": '%s' != '%s'", columns[i].bytes, out, columns[i].text);
    }
    {
        char hex[32];
        struct mb_buf h = mb_buf_on(hex, sizeof hex);
        mb_buf_hex(&h, 0x7f3a5c820000);
        mb_buf_char(&h, ' ');
        mb_buf_hex(&h, 0);
        mb_buf_char(&h, ' ');
        mb_buf_hex_bytes(&h, "\x2f\xe9", 2);
        expect_true(strcmp(hex, "0x7f3a5c820000 0x0 2fe9") == 0, "'%s'", hex);
    }
    char out[8];
    struct mb_buf b;
    mb_buf_init(&b, out, sizeof out);
    mb_buf_str(&b, "membudget");
    expect_true(b.truncated && strcmp(out, "membudg") == 0, "'%s'", out);
    mb_buf_init(&b, out, sizeof out);
    mb_buf_ppb(&b, 800000000);
    expect_true(strcmp(out, "0.8") == 0, "'%s'", out);
    mb_buf_init(&b, out, sizeof out);
    mb_buf_ppb(&b, MB_PPB);
    expect_true(strcmp(out, "1") == 0, "'%s'", out);
    mb_buf_init(&b, out, sizeof out);
    mb_buf_u64(&b, 0);
    expect_true(strcmp(out, "0") == 0, "'%s'", out);
    char wide[64];
    mb_buf_init(&b, wide, sizeof wide);
    mb_buf_value(&b, "a\tb\\c\x7f", 10);
    expect_true(strcmp(wide, "a\\x09b\\x5cc\\x7f") == 0, "'%s'", wide);
    mb_buf_init(&b, wide, sizeof wide);
    mb_buf_u64(&b, UINT64_MAX);
    expect_true(strcmp(wide, "18446744073709551615") == 0, "'%s'", wide);
}

/* ---- this machine, and a real v1 memory cgroup ------------------------------ */

static void test_this_machine(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_limits lim;
    mb_limits_init(&lim, "/", &cfg, NULL);
    expect_true(lim.phys_bytes > 0, "%s", lim.phys_source);
    uint64_t rest = lim.ram_bytes & (128 * MIB - 1);
    expect_true(lim.ram_bytes > 0 && rest == 0);
    expect_true(lim.ram_bytes <= mb_ram_round_up(lim.phys_bytes));
    expect_true(lim.conservative_bytes < lim.strict_bytes && lim.strict_bytes <= lim.kill_bytes);
    /* Probing inside malloc must not change errno, though it fails opens. */
    errno = 12345;
    mb_limits_init(&lim, "/nonexistent-root", &cfg, NULL);
    expect_int_eq(errno, 12345);
    mb_limits_init(&lim, "/", &cfg, NULL);
    char text[4096];
    mb_limits_format(&lim, text, sizeof text);
    /* Printed for whoever reads the results file. */
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        printf("# %s\n", line);
    if (lim.cgroup_version != 0) printf("# cgroup v%d directory: %s\n", lim.cgroup_version,
                                        lim.cgroup_dir);
}

static bool write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(text);
}

/* Creates a child of our own v1 memory cgroup with a 1000 MiB limit, moves only
 * a forked child into it, and checks what the child computes there.  Skipped
 * where no such cgroup can be created (not root, cgroup v2 only, read-only). */
static void test_real_v1_cgroup(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_limits lim;
    mb_limits_init(&lim, "/", &cfg, NULL);
    char dir[1200];
    if (lim.cgroup_version != 1 || lim.cgroup_dir[0] == '\0') {
        printf("# skipped test_real_v1_cgroup: no cgroup v1 memory controller\n");
        current_skipped = true;
        return;
    }
    snprintf(dir, sizeof dir, "%s/membudget-test-%d", lim.cgroup_dir, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        printf("# skipped test_real_v1_cgroup: mkdir %s: %s\n", dir, strerror(errno));
        current_skipped = true;
        return;
    }
    char path[1300];
    snprintf(path, sizeof path, "%s/memory.limit_in_bytes", dir);
    if (!write_text(path, "1048576000")) {
        printf("# skipped test_real_v1_cgroup: %s: %s\n", path, strerror(errno));
        rmdir(dir);
        current_skipped = true;
        return;
    }

    int go[2], result[2];
    if (pipe(go) != 0 || pipe(result) != 0) {
        harness_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
        rmdir(dir);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child == 0) {
        close(go[1]);
        close(result[0]);
        char byte;
        if (read(go[0], &byte, 1) != 1) _exit(3);
        struct mb_config child_cfg;
        mb_config_defaults(&child_cfg);
        struct mb_limits child_lim;
        mb_limits_init(&child_lim, "/", &child_cfg, NULL);
        ssize_t n = write(result[1], &child_lim, sizeof child_lim);
        _exit(n == (ssize_t)sizeof child_lim ? 0 : 4);
    }
    close(go[0]);
    close(result[1]);
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%d", (int)child);
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    bool moved = write_text(path, pid_text);
    int move_errno = errno;
    if (write(go[1], "g", 1) != 1) moved = false;
    close(go[1]);

    struct mb_limits seen;
    memset(&seen, 0, sizeof seen);
    size_t got = 0;
    while (got < sizeof seen) {
        ssize_t n = read(result[0], (char *)&seen + got, sizeof seen - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(result[0]);
    int status = 0;
    waitpid(child, &status, 0);
    /* The child has exited, so the cgroup is empty and can go. */
    if (rmdir(dir) != 0) harness_fail(__FILE__, __LINE__, "rmdir %s: %s", dir, strerror(errno));
    if (!moved) {
        printf("# skipped test_real_v1_cgroup: cannot move the child into %s: %s\n", dir,
               strerror(move_errno));
        current_skipped = true;
        return;
    }
    expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    expect_zu_eq(got, sizeof seen);
    expect_eq_ctx(seen.cgroup_bytes, 1000 * MIB, "%s", seen.cgroup_source);
    expect_eq_ctx(seen.ram_bytes, 1024 * MIB, "%s", seen.ram_source);
    expect_eq_ctx(seen.kill_bytes, 966367641, "%s", seen.kill_source);
    expect_int_eq(seen.cgroup_version, 1);
    expect_true(seen.ram_from_cgroup && seen.kill_from_ram);
    expect_true(strcmp(seen.cgroup_dir, dir) == 0, "'%s' != '%s'", seen.cgroup_dir, dir);
    expect_true(strstr(seen.cgroup_source, "/memory.limit_in_bytes = 1048576000") != NULL, "%s",
                seen.cgroup_source);
    printf("# real cgroup %s: ramSize %" PRIu64 ", kill threshold %" PRIu64 "\n", dir,
           seen.ram_bytes, seen.kill_bytes);
}

static void run_maybe_skipped(const char *name, harness_test_fn fn) {
    current_skipped = false;
    run_test(name, fn);
    if (current_skipped && !harness_current_failed) {
        harness_passed--;
        skipped++;
    }
}

/* ---- the counter's charge rules (policy/budget.c) ---------------------------- */

static unsigned handler_calls;
static bool handler_allows;
static uint64_t handler_counter;
static size_t handler_charge;

static bool test_handler(uint64_t counter, size_t charge) {
    handler_calls++;
    handler_counter = counter;
    handler_charge = charge;
    return handler_allows;
}

/* budget_charge runs the handler at the threshold and undoes a refused charge;
 * budget_try_charge (the jemalloc backend's hooks, under jemalloc's locks)
 * never runs it and refuses instead; budget_charge_committed always stands. */
static void test_budget_charges(void) {
    uint64_t base = budget_counter();
    budget_set_threshold(base + 1000, test_handler);
    handler_calls = 0;
    handler_allows = true;
    expect_true(budget_charge(400), "a charge below the threshold stands");
    expect_true(handler_calls == 0, "no handler below the threshold (%u calls)", handler_calls);
    expect_true(budget_try_charge(400), "a try-charge below the threshold stands");
    expect_true(budget_counter() == base + 800, "counter %llu", (unsigned long long)budget_counter());
    expect_true(!budget_try_charge(300), "a try-charge that reaches the threshold is refused");
    expect_true(handler_calls == 0, "budget_try_charge never runs the handler (%u calls)", handler_calls);
    expect_true(budget_counter() == base + 800, "a refused try-charge leaves the counter (%llu)",
                (unsigned long long)budget_counter());
    handler_allows = false;
    expect_true(!budget_charge(300), "the handler refused the charge");
    expect_true(handler_calls == 1 && handler_charge == 300 && handler_counter == base + 1100,
                "the handler saw the charge: %u calls, charge %zu, counter %llu", handler_calls,
                handler_charge, (unsigned long long)handler_counter);
    expect_true(budget_counter() == base + 800, "a refused charge is undone");
    handler_allows = true;
    expect_true(budget_charge(300), "the handler let it stand");
    budget_charge_committed(500);
    expect_true(handler_calls == 2, "budget_charge_committed runs no handler (%u calls)", handler_calls);
    expect_true(budget_counter() == base + 1600 && budget_peak() >= base + 1600, "counter %llu",
                (unsigned long long)budget_counter());
    budget_uncharge(1600);
    budget_set_threshold(UINT64_MAX, NULL);
    expect_true(budget_try_charge(1 << 20), "without a handler nothing is refused");
    budget_uncharge(1 << 20);

    /* Only a charge that stands moves the peak: a refused request for more
     * than any machine has (malloc(PTRDIFF_MAX), a probe for MemoryError)
     * leaves it where the granted charges left it. */
    uint64_t peak = budget_peak();
    budget_set_threshold(base + 1000, test_handler);
    handler_allows = false;
    expect_true(!budget_charge((size_t)PTRDIFF_MAX), "the handler refused the huge charge");
    expect_true(!budget_try_charge((size_t)PTRDIFF_MAX), "a huge try-charge is refused");
    expect_true(budget_peak() == peak, "a refused charge moved the peak from %llu to %llu",
                (unsigned long long)peak, (unsigned long long)budget_peak());
    expect_true(budget_counter() == base, "refused charges are undone (%llu)",
                (unsigned long long)budget_counter());
    /* One the handler lets stand raises it, as one below the threshold does. */
    handler_allows = true;
    uint64_t over = peak - base + 5000;
    expect_true(budget_charge(over), "a charge over the threshold the handler let stand");
    expect_true(budget_peak() == base + over, "the peak %llu after a granted charge, want %llu",
                (unsigned long long)budget_peak(), (unsigned long long)(base + over));
    budget_uncharge(over);
    budget_set_threshold(UINT64_MAX, NULL);
    expect_true(budget_charge(over + 1), "below the threshold");
    expect_true(budget_peak() == base + over + 1, "the peak %llu after a charge below the "
                "threshold", (unsigned long long)budget_peak());
    budget_uncharge(over + 1);
    expect_true(budget_try_charge(1 << 20), "nothing refused");
    budget_uncharge(1 << 20);
    expect_true(budget_counter() == base, "back to the start");
}

int main(void) {
    snprintf(temp_root, sizeof temp_root, "%s/membudget-limits.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(temp_root) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", temp_root, strerror(errno));
        return 2;
    }
    RUN(test_model_table);
    RUN(test_ram_rounding_and_cap);
    RUN(test_trees);
    RUN(test_tree_sources);
    RUN(test_long_mountinfo_and_escapes);
    RUN(test_thresholds);
    RUN(test_thresholds_arithmetic);
    RUN(test_threshold_sources);
    RUN(test_parse_size);
    RUN(test_parse_fraction_percent_duration);
    RUN(test_bad_values);
    RUN(test_size_bound);
    RUN(test_default_sink_writes_stderr);
    RUN(test_good_environment);
    RUN(test_budget_charges);
    RUN(test_read_env);
    RUN(test_defaults_match_table);
    RUN(test_unknown_variables);
    RUN(test_machine_variables);
    RUN(test_text_helpers);
    RUN(test_this_machine);
    run_maybe_skipped("test_real_v1_cgroup", test_real_v1_cgroup);
    nftw(temp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (skipped == 0) return harness_finish();
    printf("%d passed, %d failed, %d skipped\n", harness_passed, harness_failed, skipped);
    fflush(stdout);
    return harness_failed ? 1 : 0;
}
