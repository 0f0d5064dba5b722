/* The arithmetic and the readers of the outside pressure (policy/machine.h):
 * each source's levels with their thresholds, the hysteresis and the switches,
 * the choice of the source; the platform's readers (policy/limits_linux.c) on
 * PSI, meminfo and fake v1 and v2 cgroup directories built in a temporary
 * directory, hostile ones included (a link, a FIFO, garbage); and the
 * thresholds recomputed when the cgroup's limit changes at run time
 * (mb_limits_set_cgroup, policy/limits.c). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/os.h"
#include "policy/config.h"
#include "policy/limits.h"
#include "policy/machine.h"
#include "policy/pressure.h"
#include "tests/harness.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)

static char temp_root[256];

static void put(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        harness_fail(__FILE__, __LINE__, "fopen %s: %s", path, strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void sub(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", temp_root, name);
    mkdir(out, 0755);
}

/* ---- the levels ---------------------------------------------------------------- */

static void test_measure_level(void) {
    const struct mb_levels lv = {900000000u, 950000000u}; /* 90%, 95% */
    uint64_t value, bound;
    /* Of 1000: 899 none, 900 conservative, 950 strict. */
    expect_int_eq(mb_machine_measure_level(899, 899, 1000, &lv, 0, &value, &bound), 0);
    expect_int_eq(mb_machine_measure_level(900, 900, 1000, &lv, 0, &value, &bound),
                  MB_POLICY_CONSERVATIVE);
    expect_int_eq(bound, 900);
    expect_int_eq(value, 900);
    expect_int_eq(mb_machine_measure_level(950, 950, 1000, &lv, 0, &value, &bound),
                  MB_POLICY_STRICT);
    expect_int_eq(bound, 950);
    /* Hysteresis: Strict holds down to 90% of 950 (855), then Conservative
     * holds down to 90% of 900 (810). */
    expect_int_eq(mb_machine_measure_level(855, 855, 1000, &lv, MB_POLICY_STRICT, &value, &bound),
                  MB_POLICY_STRICT);
    expect_int_eq(mb_machine_measure_level(854, 854, 1000, &lv, MB_POLICY_STRICT, &value, &bound),
                  MB_POLICY_CONSERVATIVE);
    expect_int_eq(mb_machine_measure_level(810, 810, 1000, &lv, MB_POLICY_CONSERVATIVE, &value,
                                           &bound),
                  MB_POLICY_CONSERVATIVE);
    expect_int_eq(mb_machine_measure_level(809, 809, 1000, &lv, MB_POLICY_CONSERVATIVE, &value,
                                           &bound),
                  0);
    /* 0% turns a level off; off turns both. */
    const struct mb_levels only_strict = {0, 950000000u}, off = {0, 0};
    expect_int_eq(mb_machine_measure_level(940, 940, 1000, &only_strict, 0, &value, &bound), 0);
    expect_int_eq(mb_machine_measure_level(1000, 1000, 1000, &off, 0, &value, &bound), 0);
    /* Different measures per level (PSI: some for Conservative, full for
     * Strict). */
    const struct mb_levels psi = {70000000u, 700000000u}; /* 7%, 70% of 10000 */
    expect_int_eq(mb_machine_measure_level(700, 0, 10000, &psi, 0, &value, &bound),
                  MB_POLICY_CONSERVATIVE);
    expect_int_eq(mb_machine_measure_level(100, 7000, 10000, &psi, 0, &value, &bound),
                  MB_POLICY_STRICT);
    expect_int_eq(value, 7000);
    expect_int_eq(bound, 7000);
    /* Nothing to compare with: no level. */
    expect_int_eq(mb_machine_measure_level(5, 5, 0, &lv, 0, &value, &bound), 0);
    /* Byte counts near 2^56 do not overflow. */
    uint64_t big = (uint64_t)1 << 56;
    expect_int_eq(mb_machine_measure_level(big, big, big, &lv, 0, &value, &bound),
                  MB_POLICY_STRICT);
}

static void test_level_sources(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_machine_reading r = {0};
    struct mb_outside o, prev;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    expect_int_eq(o.source, MB_OUTSIDE_NONE);
    /* PSI some 7.00% (the default): Conservative from psi. */
    r.psi_valid = true;
    r.psi_some_avg10 = 700;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_CONSERVATIVE);
    expect_int_eq(o.source, MB_OUTSIDE_PSI);
    expect_int_eq(o.bound, 700);
    /* MemAvailable 4% of MemTotal: Strict from meminfo wins over psi. */
    r.mem_valid = true;
    r.mem_total_bytes = 1000 * MIB;
    r.mem_available_bytes = 40 * MIB;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_STRICT);
    expect_int_eq(o.source, MB_OUTSIDE_MEMINFO);
    expect_int_eq(o.value, 960 * MIB);
    expect_int_eq(o.bound, 950 * MIB);
    /* The cgroup: the lower of high and max. */
    r = (struct mb_machine_reading){0};
    r.cgroup_valid = true;
    r.cgroup_usage_bytes = 92 * MIB;
    r.cgroup_max_bytes = 1000 * MIB;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    r.cgroup_high_bytes = 100 * MIB;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_CONSERVATIVE);
    expect_int_eq(o.source, MB_OUTSIDE_CGROUP);
    /* A cgroup without limits gives nothing, however full. */
    r.cgroup_high_bytes = r.cgroup_max_bytes = 0;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    /* The hysteresis goes through prev, per source. */
    r.cgroup_max_bytes = 100 * MIB;
    r.cgroup_usage_bytes = 91 * MIB;
    mb_machine_level(&r, &cfg, NULL, &prev);
    expect_int_eq(prev.level, MB_POLICY_CONSERVATIVE);
    r.cgroup_usage_bytes = 85 * MIB; /* under 90%, over 81% */
    mb_machine_level(&r, &cfg, &prev, &o);
    expect_int_eq(o.level, MB_POLICY_CONSERVATIVE);
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    /* Switched off per source. */
    expect_true(mb_config_set(&cfg, MB_OPT_CGROUP_USED, "off", NULL));
    r.cgroup_usage_bytes = 100 * MIB;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    expect_true(strcmp(mb_outside_source_name(MB_OUTSIDE_PSI), "psi") == 0);
    expect_true(strcmp(mb_outside_source_name(MB_OUTSIDE_LIMIT), "cgroup-limit") == 0);
    expect_true(strcmp(mb_outside_source_name((enum mb_outside_source)9), "?") == 0);
}

/* The kernel's pressure level (macOS: kern.memorystatus_vm_pressure_level):
 * warning Conservative, critical Strict, source vm-pressure, switched by
 * MEMBUDGET_PSI, and the higher of it and the other sources wins. */
static void test_level_vm_pressure(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    expect_int_eq(mb_machine_vm_pressure_policy(0, &cfg.psi), 0);
    expect_int_eq(mb_machine_vm_pressure_policy(MB_VM_PRESSURE_NORMAL, &cfg.psi), 0);
    expect_int_eq(mb_machine_vm_pressure_policy(MB_VM_PRESSURE_WARNING, &cfg.psi),
                  MB_POLICY_CONSERVATIVE);
    expect_int_eq(mb_machine_vm_pressure_policy(MB_VM_PRESSURE_CRITICAL, &cfg.psi),
                  MB_POLICY_STRICT);
    expect_int_eq(mb_machine_vm_pressure_policy(8, &cfg.psi), MB_POLICY_STRICT);
    struct mb_machine_reading r = {0};
    struct mb_outside o;
    r.vm_pressure_raw = MB_VM_PRESSURE_CRITICAL; /* not valid: not read */
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    r.vm_pressure_valid = true;
    r.vm_pressure_raw = MB_VM_PRESSURE_WARNING;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_CONSERVATIVE);
    expect_int_eq(o.source, MB_OUTSIDE_VM_PRESSURE);
    expect_int_eq(o.value, MB_VM_PRESSURE_WARNING);
    expect_int_eq(o.bound, MB_VM_PRESSURE_WARNING);
    r.vm_pressure_raw = MB_VM_PRESSURE_CRITICAL;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_STRICT);
    expect_int_eq(o.source, MB_OUTSIDE_VM_PRESSURE);
    expect_int_eq(o.bound, MB_VM_PRESSURE_CRITICAL);
    /* Free memory at Strict beats the kernel's warning. */
    r.vm_pressure_raw = MB_VM_PRESSURE_WARNING;
    r.mem_valid = true;
    r.mem_total_bytes = 1000 * MIB;
    r.mem_available_bytes = 40 * MIB;
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, MB_POLICY_STRICT);
    expect_int_eq(o.source, MB_OUTSIDE_MEMINFO);
    /* MEMBUDGET_PSI=off switches the kernel's level off too. */
    r.mem_valid = false;
    r.vm_pressure_raw = MB_VM_PRESSURE_CRITICAL;
    expect_true(mb_config_set(&cfg, MB_OPT_PSI, "off", NULL));
    mb_machine_level(&r, &cfg, NULL, &o);
    expect_int_eq(o.level, 0);
    expect_true(strcmp(mb_outside_source_name(MB_OUTSIDE_VM_PRESSURE), "vm-pressure") == 0);
}

/* ---- the readers ----------------------------------------------------------------- */

static void files_for(struct mb_machine_files *f, const char *psi, const char *meminfo,
                      int version, const char *cgroup_dir) {
    memset(f, 0, sizeof *f);
    snprintf(f->psi, sizeof f->psi, "%s", psi);
    snprintf(f->meminfo, sizeof f->meminfo, "%s", meminfo);
    f->cgroup_version = version;
    snprintf(f->cgroup_dir, sizeof f->cgroup_dir, "%s", cgroup_dir);
}

static void test_read_psi_and_meminfo(void) {
    char d[512], psi[600], mem[600];
    sub(d, sizeof d, "files");
    snprintf(psi, sizeof psi, "%s/psi", d);
    snprintf(mem, sizeof mem, "%s/meminfo", d);
    put(d, "psi", "some avg10=12.34 avg60=1.00 avg300=0.50 total=99\n"
                  "full avg10=0.5 avg60=0.00 avg300=0.00 total=9\n");
    put(d, "meminfo", "MemTotal:       16384000 kB\nMemFree:  100 kB\n"
                      "MemAvailable:    1638400 kB\nBuffers: 1 kB\n");
    struct mb_machine_files f;
    struct mb_machine_reading r;
    files_for(&f, psi, mem, 0, "");
    os_machine_read(&f, &r);
    expect_true(r.psi_valid);
    expect_int_eq(r.psi_some_avg10, 1234);
    expect_int_eq(r.psi_full_avg10, 50);
    expect_true(r.mem_valid);
    expect_int_eq(r.mem_total_bytes, (uint64_t)16384000 * 1024);
    expect_int_eq(r.mem_available_bytes, (uint64_t)1638400 * 1024);
    expect_true(!r.cgroup_valid && !r.limit_valid);

    /* Hostile or broken files: not valid, nothing else changes. */
    static const char *const bad_psi[] = {
        "some avg10=abc avg60=0 total=0\n", "some avg10=101.00 avg60=0\n", "garbage\n", "",
        "some avg10=-1.00\n", "some avg10=5.00x avg60=0\n"};
    for (size_t i = 0; i < sizeof bad_psi / sizeof *bad_psi; i++) {
        put(d, "psi", bad_psi[i]);
        os_machine_read(&f, &r);
        expect_true(!r.psi_valid, "'%s'", bad_psi[i]);
        expect_true(r.mem_valid);
    }
    put(d, "psi", "some avg10=100.00 avg60=0\n"); /* no full line: an older kernel's system file */
    os_machine_read(&f, &r);
    expect_true(r.psi_valid);
    expect_int_eq(r.psi_some_avg10, 10000);
    expect_int_eq(r.psi_full_avg10, 0);
    static const char *const bad_mem[] = {"MemTotal: 100 kB\n", "MemAvailable: 5 kB\n",
                                          "MemTotal: 0 kB\nMemAvailable: 0 kB\n",
                                          "MemTotal: 99999999999999999999 kB\nMemAvailable: 1 kB\n",
                                          "MemTotal: 10 MB\nMemAvailable: 1 kB\n"};
    for (size_t i = 0; i < sizeof bad_mem / sizeof *bad_mem; i++) {
        put(d, "meminfo", bad_mem[i]);
        os_machine_read(&f, &r);
        expect_true(!r.mem_valid, "'%s'", bad_mem[i]);
    }
    /* A link is not followed, a FIFO does not block, a directory is nothing. */
    char linked[600], fifo[600];
    snprintf(linked, sizeof linked, "%s/link", d);
    snprintf(fifo, sizeof fifo, "%s/fifo", d);
    put(d, "psi", "some avg10=50.00 avg60=0\nfull avg10=50.00 avg60=0\n");
    expect_int_eq(symlink(psi, linked), 0);
    expect_int_eq(mkfifo(fifo, 0600), 0);
    files_for(&f, linked, fifo, 0, "");
    os_machine_read(&f, &r);
    expect_true(!r.psi_valid && !r.mem_valid);
    files_for(&f, d, "", 0, "");
    os_machine_read(&f, &r);
    expect_true(!r.psi_valid && !r.mem_valid);
}

static void test_read_cgroups(void) {
    char v1[512], v1child[600], v2[512], v2child[600];
    sub(v1, sizeof v1, "v1");
    snprintf(v1child, sizeof v1child, "%s/child", v1);
    mkdir(v1child, 0755);
    put(v1child, "memory.usage_in_bytes", "104857600\n");
    put(v1child, "memory.limit_in_bytes", "268435456\n");
    put(v1child, "memory.soft_limit_in_bytes", "9223372036854771712\n");
    put(v1child, "memory.stat", "cache 0\nhierarchical_memory_limit 268435456\n");
    struct mb_machine_files f;
    struct mb_machine_reading r;
    files_for(&f, "", "", 1, v1child);
    os_machine_read(&f, &r);
    expect_true(r.cgroup_valid && r.limit_valid);
    expect_int_eq(r.cgroup_usage_bytes, 100 * MIB);
    expect_int_eq(r.limit_bytes, 256 * MIB);
    expect_int_eq(r.cgroup_max_bytes, 256 * MIB);
    expect_int_eq(r.cgroup_high_bytes, 0);
    /* A parent's lower limit comes through memory.stat. */
    put(v1child, "memory.stat", "cache 0\nhierarchical_memory_limit 134217728\n");
    os_machine_read(&f, &r);
    expect_int_eq(r.limit_bytes, 128 * MIB);
    expect_true(strstr(r.limit_file, "memory.stat hierarchical_memory_limit") != NULL, "%s",
                r.limit_file);
    /* No limit at all. */
    put(v1child, "memory.limit_in_bytes", "9223372036854771712\n");
    put(v1child, "memory.stat", "hierarchical_memory_limit 9223372036854771712\n");
    os_machine_read(&f, &r);
    expect_true(r.limit_valid);
    expect_int_eq(r.limit_bytes, 0);

    /* v2: memory.max up the tree, "max" meaning none; memory.high. */
    sub(v2, sizeof v2, "v2");
    snprintf(v2child, sizeof v2child, "%s/a", v2);
    mkdir(v2child, 0755);
    put(v2, "memory.max", "536870912\n");
    put(v2child, "memory.max", "max\n");
    put(v2child, "memory.high", "209715200\n");
    put(v2child, "memory.current", "52428800\n");
    files_for(&f, "", "", 2, v2child);
    os_machine_read(&f, &r);
    expect_true(r.cgroup_valid && r.limit_valid);
    expect_int_eq(r.limit_bytes, 512 * MIB);
    expect_int_eq(r.cgroup_high_bytes, 200 * MIB);
    expect_int_eq(r.cgroup_usage_bytes, 50 * MIB);
    put(v2child, "memory.max", "268435456\n");
    os_machine_read(&f, &r);
    expect_int_eq(r.limit_bytes, 256 * MIB);
    expect_true(strstr(r.limit_file, "/v2/a/memory.max") != NULL, "%s", r.limit_file);
    put(v2child, "memory.current", "lots\n");
    os_machine_read(&f, &r);
    expect_true(!r.cgroup_valid);
}

/* Where the files are: the v2 cgroup's own memory.pressure when it has one,
 * else the system's; the test variables win. */
static void test_files(void) {
    char v2[512];
    sub(v2, sizeof v2, "files-v2");
    struct mb_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.cgroup_version = 2;
    snprintf(lim.cgroup_dir, sizeof lim.cgroup_dir, "%s", v2);
    struct mb_machine_files f;
    os_machine_files(&lim, "", NULL, &f);
    expect_true(strcmp(f.psi, "/proc/pressure/memory") == 0, "%s", f.psi);
    expect_true(strcmp(f.meminfo, "/proc/meminfo") == 0, "%s", f.meminfo);
    expect_int_eq(f.cgroup_version, 2);
    expect_true(strcmp(f.cgroup_dir, v2) == 0, "%s", f.cgroup_dir);
    put(v2, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    os_machine_files(&lim, NULL, NULL, &f);
    expect_true(strstr(f.psi, "/files-v2/memory.pressure") != NULL, "%s", f.psi);
    os_machine_files(&lim, "/test/psi", "/test/meminfo", &f);
    expect_true(strcmp(f.psi, "/test/psi") == 0, "%s", f.psi);
    expect_true(strcmp(f.meminfo, "/test/meminfo") == 0, "%s", f.meminfo);
    lim.cgroup_version = 1; /* v1 keeps no pressure of its own */
    os_machine_files(&lim, NULL, NULL, &f);
    expect_true(strcmp(f.psi, "/proc/pressure/memory") == 0, "%s", f.psi);
}

/* ---- the limit followed ------------------------------------------------------------ */

static void test_limit_change(void) {
    struct mb_config cfg;
    mb_config_defaults(&cfg);
    struct mb_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.phys_bytes = 16 * GIB;
    struct mb_limits_params p;
    mb_limits_params_from_config(&p, &cfg);
    const struct mb_sink quiet = {NULL, NULL};
    /* Start in a 1 GiB cgroup. */
    mb_limits_set_cgroup(&lim, &cfg, GIB, 0, "/cg/memory.limit_in_bytes");
    lim.cgroup_change = 0;
    mb_limits_compute(&lim, &cfg, &p, &quiet);
    expect_int_eq(lim.ram_bytes, GIB);
    expect_int_eq(lim.kill_bytes, GIB / 10 * 9 + GIB % 10 * 9 / 10);
    expect_int_eq(lim.conservative_bytes, 858993459); /* 0.8 x 1 GiB */
    /* Lowered to 256 MiB: ramSize, kill and policy thresholds follow; the
     * sources say so. */
    mb_limits_set_cgroup(&lim, &cfg, 256 * MIB, GIB, "/cg/memory.limit_in_bytes");
    mb_limits_compute(&lim, &cfg, &p, &quiet);
    expect_int_eq(lim.ram_bytes, 256 * MIB);
    expect_int_eq(lim.kill_bytes, 241591910);
    expect_int_eq(lim.conservative_bytes, 214748364);
    expect_int_eq(lim.strict_bytes, 241591910);
    expect_true(strcmp(lim.cgroup_source, "/cg/memory.limit_in_bytes = 268435456, lowered at "
                                          "run time from 1073741824") == 0,
                "%s", lim.cgroup_source);
    expect_true(strncmp(lim.kill_source, "cgroup limit lowered at run time to 256 MiB: webkit "
                                         "model",
                        strlen("cgroup limit lowered at run time to 256 MiB: webkit model")) ==
                    0,
                "%s", lim.kill_source);
    /* Raised back: the thresholds of the start. */
    mb_limits_set_cgroup(&lim, &cfg, GIB, 256 * MIB, "/cg/memory.limit_in_bytes");
    mb_limits_compute(&lim, &cfg, &p, &quiet);
    expect_int_eq(lim.ram_bytes, GIB);
    expect_int_eq(lim.conservative_bytes, 858993459);
    expect_true(strstr(lim.kill_source, "raised at run time to 1 GiB") != NULL, "%s",
                lim.kill_source);
    /* Removed: physical RAM again, and the model's own source. */
    mb_limits_set_cgroup(&lim, &cfg, 0, GIB, "/cg/memory.limit_in_bytes");
    mb_limits_compute(&lim, &cfg, &p, &quiet);
    expect_int_eq(lim.ram_bytes, 16 * GIB);
    expect_true(strncmp(lim.kill_source, "webkit model", 12) == 0, "%s", lim.kill_source);
    expect_true(strncmp(lim.cgroup_source, "none: removed at run time", 25) == 0, "%s",
                lim.cgroup_source);
    /* An explicit MEMBUDGET_LIMIT does not move with the cgroup. */
    expect_true(mb_config_set(&cfg, MB_OPT_LIMIT, "64M", NULL));
    mb_limits_set_cgroup(&lim, &cfg, 256 * MIB, 0, "/cg/memory.limit_in_bytes");
    mb_limits_compute(&lim, &cfg, &p, &quiet);
    expect_int_eq(lim.kill_bytes, 64 * MIB);
    expect_true(strcmp(lim.kill_source, "MEMBUDGET_LIMIT=64M") == 0, "%s", lim.kill_source);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(temp_root, sizeof temp_root, "%s/mb-machine.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(temp_root) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", temp_root, strerror(errno));
        return 2;
    }
    RUN(test_measure_level);
    RUN(test_level_sources);
    RUN(test_level_vm_pressure);
    RUN(test_read_psi_and_meminfo);
    RUN(test_read_cgroups);
    RUN(test_files);
    RUN(test_limit_change);
    nftw(temp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return harness_finish();
}
