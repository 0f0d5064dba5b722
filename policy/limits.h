/* Limits and thresholds (DESIGN §4): ramSize from physical RAM, the own cgroup's
 * memory limit and MEMBUDGET_RAM; the kill threshold from MEMBUDGET_LIMIT or
 * WebKit's jetsam model; the policy thresholds below it.  Every number carries
 * the text of where it came from, for `membudget limits` and the death dump.
 * Runs inside the first malloc.  What the OS says comes from the platform
 * (os_limits_probe, alloc/os.h), which reads under a root prefix so tests can
 * use fake /proc and /sys trees. */
#ifndef MEMBUDGET_POLICY_LIMITS_H
#define MEMBUDGET_POLICY_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

/* bmalloc's availableMemoryGuess: ramSize when nothing can be read. */
#define MB_RAM_GUESS_BYTES (512 * MB_MIB)
/* bmalloc rounds the memory size up to a multiple of 128 MB. */
#define MB_RAM_MULTIPLE (128 * MB_MIB)
/* WebKit's default base threshold on non-iOS: min(3 GB, ramSize). */
#define MB_BASE_THRESHOLD_DEFAULT (3 * MB_GIB)
/* A cgroup v1 limit at or above this is "no limit": the kernel reports
 * PAGE_COUNTER_MAX pages, 9223372036854771712 with 4 KiB pages. */
#define MB_CGROUP_UNLIMITED_MIN ((uint64_t)1 << 62)

#define MB_SOURCE_MAX 384
#define MB_PATH_MAX 1024

struct mb_limits {
    /* ---- inputs of ramSize, filled by mb_limits_probe ---- */
    uint64_t phys_bytes; /* 0: unknown */
    char phys_source[MB_SOURCE_MAX];
    uint64_t cgroup_bytes; /* the smallest limit found; 0: none */
    char cgroup_source[MB_SOURCE_MAX];
    /* The own memory cgroup (root prefix included): the deepest existing
     * directory on the path, for memory.current (v2) or memory.usage_in_bytes
     * (v1).  cgroup_version 0 and "" when no memory controller was found. */
    int cgroup_version;
    char cgroup_dir[MB_PATH_MAX];
    uint64_t ram_bytes; /* ramSize: a non-zero multiple of MB_RAM_MULTIPLE */
    char ram_source[MB_SOURCE_MAX];
    bool ram_from_cgroup; /* the cgroup limit is the smallest input of ramSize */
    /* The cgroup limit changed while the process ran (mb_limits_set_cgroup):
     * -1 lowered, +1 raised or removed, 0 as read at start-up. */
    int cgroup_change;

    /* ---- the thresholds, filled by mb_limits_compute ---- */
    enum mb_model model;
    enum mb_state state;
    unsigned pages;
    unsigned word_bits; /* 32 or 64: which variant of the model */
    uint64_t kill_bytes;
    char kill_source[MB_SOURCE_MAX];
    /* The kill threshold was derived from ramSize: a percentage
     * MEMBUDGET_LIMIT, or the model capped at 0.9 x ramSize. */
    bool kill_from_ram;
    /* The kill threshold the process would have if inactive: WebKit's
     * doesExceedInactiveLimitWhileActive compares against it.  Equals
     * kill_bytes when a limit is set explicitly. */
    uint64_t inactive_kill_bytes;
    char inactive_kill_source[MB_SOURCE_MAX];
    uint64_t base_bytes; /* WebKit's baseThreshold of the policy fractions */
    char base_source[MB_SOURCE_MAX];
    /* Invariant after mb_limits_compute:
     *   conservative < strict <= kill,  strict <= strict_sync.
     * strict_sync may exceed kill (then the kill threshold comes first). */
    uint64_t conservative_bytes;
    char conservative_source[MB_SOURCE_MAX];
    uint64_t strict_bytes;
    char strict_source[MB_SOURCE_MAX];
    uint64_t strict_sync_bytes;
    char strict_sync_source[MB_SOURCE_MAX];
};

/* Reads physical RAM and the container's limit through the platform
 * (os_limits_probe; on Linux MemTotal of <root>/proc/meminfo, else sysinfo(2)
 * when root is "/", and the cgroup limit from <root>/proc/self/cgroup,
 * <root>/proc/self/mountinfo, then the limit files under <root><mount point>)
 * and MEMBUDGET_RAM from cfg, and sets ram_bytes.  root NULL or "" means "/".
 * Never fails: what cannot be read is said so in the source text. */
void mb_limits_probe(struct mb_limits *lim, const char *root, const struct mb_config *cfg);

/* The cgroup limit read again while the process runs (policy/machine.h):
 * bytes (0: none) from file, old the one before; sets cgroup_bytes, its source
 * ("... lowered at run time from ...") and ramSize again.  The thresholds
 * follow with mb_limits_compute, whose kill threshold's source then says that
 * the cgroup's limit changed when ramSize decided it. */
void mb_limits_set_cgroup(struct mb_limits *lim, const struct mb_config *cfg, uint64_t bytes,
                          uint64_t old, const char *file);

/* The inputs of the thresholds that can change while the process runs
 * (membudget_set_process_state, _set_page_count, _set_limit). */
struct mb_limits_params {
    enum mb_state state;
    unsigned pages;     /* 0 is taken as 1 */
    unsigned word_bits; /* 32 selects the 32-bit model, anything else 64-bit */
    uint64_t api_limit_bytes; /* non-zero: membudget_set_limit(), over MEMBUDGET_LIMIT */
    unsigned set_by; /* MB_SET_BY_*: state or pages set by a command (policy/control.c) */
};
/* Bits of set_by: the model's source then says "(state set by membudget state)". */
#define MB_SET_BY_STATE_COMMAND 1u
#define MB_SET_BY_PAGES_COMMAND 2u
/* state and pages from cfg, the word size of this build, no API limit. */
void mb_limits_params_from_config(struct mb_limits_params *p, const struct mb_config *cfg);

/* Computes the kill, inactive-kill, base and policy thresholds from
 * lim->ram_bytes (set by mb_limits_probe, or by hand in tests), cfg and p.
 * Threshold overrides that break conservative < strict <= kill are reported in
 * one line to the sink and both overrides fall back to the defaults.  Returns
 * the number of lines reported.  Reads no file, so it can run again at any time. */
unsigned mb_limits_compute(struct mb_limits *lim, const struct mb_config *cfg,
                           const struct mb_limits_params *p, const struct mb_sink *sink);

/* The arithmetic of mb_limits_compute, without any text: a pure function of
 * ramSize (0: MB_RAM_GUESS_BYTES), cfg and p.  What it decided (which rule
 * gave the kill threshold, whether the overrides were rejected) is kept for
 * the description of each number. */
enum mb_kill_rule {
    MB_KILL_API,     /* membudget_set_limit() */
    MB_KILL_SIZE,    /* MEMBUDGET_LIMIT as a size */
    MB_KILL_PERCENT, /* MEMBUDGET_LIMIT as a percentage of ramSize */
    MB_KILL_MODEL,   /* the jetsam model, capped at 0.9 x ramSize */
};
struct mb_thresholds {
    uint64_t ram_bytes;
    unsigned pages;     /* >= 1 */
    unsigned word_bits; /* 32 or 64 */
    enum mb_kill_rule kill_rule;
    bool explicit_limit;                     /* any rule but the model */
    bool kill_raised;                        /* a percentage below 1 MiB, raised to it */
    bool kill_from_ram;                      /* as struct mb_limits */
    bool base_lowered;                       /* min(3 GiB, ramSize) lowered to the kill threshold */
    bool cons_set, strict_set;               /* the overrides in effect */
    bool order_rejected;                     /* overrides broke the order: the defaults are used */
    uint64_t rejected_cons, rejected_strict; /* what they gave, when rejected */
    bool strict_sync_raised;                 /* strict above the base */
    uint64_t kill_bytes, inactive_kill_bytes, base_bytes;
    uint64_t conservative_bytes, strict_bytes, strict_sync_bytes;
};
void mb_thresholds_compute(struct mb_thresholds *t, uint64_t ram_bytes, const struct mb_config *cfg,
                           const struct mb_limits_params *p);

/* mb_limits_probe, then mb_limits_compute with mb_limits_params_from_config. */
unsigned mb_limits_init(struct mb_limits *lim, const char *root, const struct mb_config *cfg,
                        const struct mb_sink *sink);

/* The pieces of the formulas, for tests and the CLI. */
uint64_t mb_ram_round_up(uint64_t bytes);  /* to a multiple of MB_RAM_MULTIPLE */
uint64_t mb_ram_cap(uint64_t ram_bytes);   /* floor(0.9 * ram_bytes), exactly */
uint64_t mb_model_kill_threshold(enum mb_model model, enum mb_state state, unsigned pages,
                                 unsigned word_bits, uint64_t ram_bytes);

/* Every number and its source, one "name: value (human): source" line each, as
 * `membudget limits` prints them.  Returns the length written (NUL excluded). */
size_t mb_limits_format(const struct mb_limits *lim, char *buf, size_t cap);

#endif
