/* Pressure from around the process (DESIGN §11): the machine's and the
 * container's memory, read at the pressure tick as WebKit's Linux UI process
 * (MemoryPressureMonitor) and Android's lmkd read them, and the container's
 * limit followed while the process runs.
 *
 * Three sources, each giving a level (none, Conservative, Strict):
 *
 *   psi      memory pressure stall information: the share of the last 10 s
 *            in which some task waited for memory (some avg10) raises to
 *            Conservative, the share in which all did (full avg10) to
 *            Strict.  Defaults 7% and 70%: lmkd's psi_partial_stall_ms (70 ms)
 *            and psi_complete_stall_ms (700 ms) per second of its window.
 *            MEMBUDGET_PSI.
 *   meminfo  the share of MemTotal that is not MemAvailable: 90% and 95%,
 *            WebKit's s_memoryPresurePercentageThreshold and
 *            s_memoryPresurePercentageThresholdCritical.  MEMBUDGET_MEM_USED.
 *   cgroup   the container's usage against the lower of its limits (v2:
 *            memory.current against memory.high and memory.max; v1:
 *            memory.usage_in_bytes against memory.soft_limit_in_bytes and
 *            memory.limit_in_bytes): 90% and 95% as WebKit applies them to
 *            the cgroup.  MEMBUDGET_CGROUP_USED.
 *
 * A level holds until its measure falls under 90% of the threshold that gave
 * it (the footprint's hysteresis).  The highest level of the three is the
 * outside level; the pressure code raises the policy to it (never beyond
 * Strict: the kill threshold stays the process's own) and records the source.
 *
 * Where the files are is the platform's (os_machine_files, os_machine_read,
 * alloc/os.h); this file holds the arithmetic, which is pure and unit-tested
 * (tests/pressure/test_machine.c), and the state of the last reading.  Every
 * reading runs inside an allocation or on the monitor thread: no allocation,
 * no lock, each file read at most once per MEMBUDGET_INTERVAL. */
#ifndef MEMBUDGET_POLICY_MACHINE_H
#define MEMBUDGET_POLICY_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/limits.h"

/* Why the policy moved: the footprint, or one of the outside sources.  Kept
 * in each policy event (policy/pressure.h). */
enum mb_outside_source {
    MB_OUTSIDE_NONE = 0, /* the process's own footprint */
    MB_OUTSIDE_PSI,
    MB_OUTSIDE_MEMINFO,
    MB_OUTSIDE_CGROUP,
    MB_OUTSIDE_LIMIT, /* the cgroup's limit changed: the thresholds were recomputed */
    MB_OUTSIDE_VM_PRESSURE /* the kernel's own pressure level (macOS: warning, critical) */
};
/* "footprint", "psi", "memavailable", "cgroup", "cgroup-limit", "vm-pressure". */
const char *mb_outside_source_name(enum mb_outside_source source);

/* The files, found once at start-up by the platform. */
struct mb_machine_files {
    char psi[MB_PATH_MAX];     /* "" when there is none */
    char meminfo[MB_PATH_MAX]; /* "" when there is none */
    int cgroup_version;        /* 0: no memory cgroup */
    char cgroup_dir[MB_PATH_MAX];
};

/* One reading of every source; a source that could not be read is not valid. */
struct mb_machine_reading {
    bool psi_valid;
    uint32_t psi_some_avg10, psi_full_avg10; /* hundredths of a percent: 12.34% is 1234 */
    bool mem_valid;
    uint64_t mem_total_bytes, mem_available_bytes;
    bool cgroup_valid;
    uint64_t cgroup_usage_bytes;
    uint64_t cgroup_high_bytes, cgroup_max_bytes; /* 0: none */
    bool limit_valid;
    uint64_t limit_bytes; /* the cgroup's limit as ramSize takes it; 0: none */
    char limit_file[MB_SOURCE_MAX]; /* the file that gave it */
    /* The kernel's own pressure level where it keeps one instead of PSI (macOS:
     * kern.memorystatus_vm_pressure_level), in the kernel's unit. */
    bool vm_pressure_valid;
    uint32_t vm_pressure_raw;
};

/* The kernel's pressure levels (xnu's kVMPressure*, as memory_pressure(1) and
 * libdispatch's DISPATCH_SOURCE_TYPE_MEMORYPRESSURE report them). */
#define MB_VM_PRESSURE_NORMAL 1u
#define MB_VM_PRESSURE_WARNING 2u
#define MB_VM_PRESSURE_CRITICAL 4u
/* The policy a kernel level asks for: warning Conservative, critical Strict
 * (unknown higher values count as the level they reach), each only while
 * MEMBUDGET_PSI leaves that level on (its ppb not 0): the kernel's level is
 * PSI's stand-in where there is no PSI. */
unsigned mb_machine_vm_pressure_policy(uint32_t raw, const struct mb_levels *switches);

/* What the sources ask for. */
struct mb_outside {
    unsigned level;  /* enum mb_policy: 0, Conservative or Strict */
    unsigned source; /* enum mb_outside_source of the highest level; NONE for 0 */
    /* The measure that gave it and the threshold it reached, in the source's
     * unit: hundredths of a percent for psi, bytes in use for meminfo and
     * cgroup. */
    uint64_t value, bound;
    unsigned levels[3]; /* each source's level (psi, meminfo, cgroup), for the hysteresis */
};

/* The level of one measure: Strict when strict_value reaches strict_ppb of
 * whole, Conservative when cons_value reaches cons_ppb of whole (a ppb of 0
 * turns that level off), holding prev while its value stays at or above 90%
 * of its threshold.  *value and *bound receive the measure and the threshold
 * of the level returned. */
unsigned mb_machine_measure_level(uint64_t cons_value, uint64_t strict_value, uint64_t whole,
                                  const struct mb_levels *levels, unsigned prev, uint64_t *value,
                                  uint64_t *bound);
/* The outside level of a reading, with each source's previous level in
 * prev (NULL: none). */
void mb_machine_level(const struct mb_machine_reading *r, const struct mb_config *cfg,
                      const struct mb_outside *prev, struct mb_outside *out);

/* Finds the files (MEMBUDGET_PSI_FILE and MEMBUDGET_MEMINFO_FILE replace the
 * system's).  From the constructor. */
void mb_machine_init(const struct mb_config *cfg, const struct mb_limits *lim);
bool mb_machine_enabled(void);

/* What a poll found. */
struct mb_machine_news {
    struct mb_outside outside;
    bool limit_changed;       /* the cgroup's limit is no longer what it was */
    uint64_t limit_bytes;     /* the new one (0: none) */
    uint64_t old_limit_bytes; /* the one before */
    char limit_file[MB_SOURCE_MAX];
};
/* Reads every source if the last reading is at least one interval old and no
 * other thread is reading; false otherwise (nothing new).  known_limit is the
 * cgroup limit the thresholds were computed with. */
bool mb_machine_poll(uint64_t now_ns, uint64_t interval_ns, uint64_t known_limit,
                     struct mb_machine_news *out);
/* The last reading and level (for the live page). */
void mb_machine_last(struct mb_machine_reading *r, struct mb_outside *o);
/* In the fork child: reads again at the next tick. */
void mb_machine_atfork_child(void);

#endif
