/* Configuration (DESIGN §10): every MEMBUDGET_* variable in one table, read once
 * into a struct mb_config.  This runs inside the first malloc, so nothing here
 * allocates, uses stdio or the locale; a bad value costs one line on stderr (or
 * on an injected sink) naming the variable, its value and the accepted form, and
 * the default stands.  Lines are built in alloc/fmt.h's buffers. */
#ifndef MEMBUDGET_POLICY_CONFIG_H
#define MEMBUDGET_POLICY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/fmt.h"

#define MB_KIB ((uint64_t)1 << 10)
#define MB_MIB ((uint64_t)1 << 20)
#define MB_GIB ((uint64_t)1 << 30)
#define MB_TIB ((uint64_t)1 << 40)

/* The largest byte count a setting may give (MEMBUDGET_LIMIT, _RAM,
 * _CONSERVATIVE, _STRICT, _SAMPLE, membudget_set_limit): 2^56 bytes, 65536T,
 * the user address space of a 64-bit Linux process with 5-level page tables
 * and the most any process can address (4-level tables give 2^47, arm64 at
 * most 2^52).  A number beyond it describes no machine; it is a typing
 * mistake, and it would carry into thresholds and reports numbers that JSON
 * readers holding int64 cannot read.  Below it, every sum of a setting with
 * the counter and the baseline stays far under 2^63. */
#define MB_SIZE_SETTING_MAX ((uint64_t)1 << 56)
#define MB_SIZE_SETTING_MAX_TEXT "65536T"

/* ---- text into fixed buffers ------------------------------------------- */

/* struct mb_buf and its writers are alloc/fmt.h's; this one is the policy's: a
 * fraction in parts per billion as a decimal, 800000000 -> "0.8". */
void mb_buf_ppb(struct mb_buf *b, uint32_t ppb);

/* Where diagnostics go.  write() receives one line without its newline.  A NULL
 * sink means stderr (fd 2, one write(2) per line); a sink whose write is NULL
 * discards. */
/* The longest line a default sink writes in one piece (longer ones are cut):
 * room for a limit's source, a cgroup path and a report path. */
#define MB_LINE_MAX 2048
struct mb_sink {
    void (*write)(void *ctx, const char *line, size_t len);
    void *ctx;
};
void mb_sink_line(const struct mb_sink *sink, const char *line, size_t len);

/* ---- parsers ------------------------------------------------------------ */
/* Each returns true and stores the value on success; on failure it returns
 * false and leaves *out alone.  Leading and trailing blanks are ignored.  Range
 * rules that depend on the variable (a limit must be > 0, ...) are applied by the
 * options table, not here. */

/* Parts per billion: fractions and percentages are kept as exact integers. */
#define MB_PPB 1000000000u

/* Bytes: digits with an optional decimal part and an optional unit K, M, G or T
 * (powers of 1024, any case, optionally followed by B or iB: "1.5G", "512MiB",
 * "64kb"), or plain bytes ("2147483648", "100B").  A decimal part needs a unit;
 * sub-byte remainders are truncated.  Rejects signs, exponents, hex, overflow. */
bool mb_parse_size(const char *s, uint64_t *out);
/* A decimal from 0 to 1 inclusive ("0.85", "1"), to 9 decimal places. */
bool mb_parse_fraction(const char *s, uint32_t *out_ppb);
/* "N%" with 0 <= N <= 100, decimals allowed ("12.5%"), as a fraction. */
bool mb_parse_percent(const char *s, uint32_t *out_ppb);
/* Nanoseconds from "100ms", "1.5s", "250" (a plain number is milliseconds). */
bool mb_parse_duration(const char *s, uint64_t *out_ns);
/* A decimal integer from 0 to max. */
bool mb_parse_uint(const char *s, uint64_t max, uint64_t *out);
/* The index of s in the NULL-terminated names, compared without case. */
bool mb_parse_enum(const char *s, const char *const *names, unsigned *out);

/* A byte count or a fraction of something else (a percentage of ramSize for the
 * limit, a fraction of the base threshold for the policy thresholds). */
enum mb_amount_kind { MB_AMOUNT_NONE = 0, MB_AMOUNT_BYTES, MB_AMOUNT_FRACTION };
struct mb_amount {
    uint64_t bytes; /* MB_AMOUNT_BYTES */
    uint32_t ppb;   /* MB_AMOUNT_FRACTION, 0..MB_PPB */
    enum mb_amount_kind kind;
};
/* The defaults of MEMBUDGET_CONSERVATIVE and MEMBUDGET_STRICT: WebKit's non-iOS
 * fractions of the base threshold (MemoryPressureHandler::Configuration,
 * DESIGN §4), defined once for the options table's text and the values. */
#define MB_CONSERVATIVE_DEFAULT 0.8
#define MB_STRICT_DEFAULT 0.9
/* "0.8" for MB_CONSERVATIVE_DEFAULT. */
#define MB_DEFAULT_TEXT(f) MB_DEFAULT_TEXT_(f)
#define MB_DEFAULT_TEXT_(f) #f
/* The struct mb_amount of such a default (folded at compile time). */
#define MB_DEFAULT_FRACTION(f)                                                                     \
    ((struct mb_amount){.kind = MB_AMOUNT_FRACTION, .ppb = (uint32_t)((f)*1e9 + 0.5)})
/* "80%" is a fraction; anything else must be a size. */
bool mb_parse_size_or_percent(const char *s, struct mb_amount *out);
/* "80%" and a bare number with a decimal point or not above 1 ("0.8", "1") are
 * fractions; a number with a unit ("2G") or a bare integer >= 2 is bytes. */
bool mb_parse_size_or_fraction(const char *s, struct mb_amount *out);
/* The two levels of an outside pressure source (policy/machine.h): the share
 * of something at which the policy rises to Conservative and to Strict, in
 * parts per billion; 0 turns that level off. */
struct mb_levels {
    uint32_t conservative_ppb, strict_ppb;
};
/* The defaults (policy/machine.h says where they come from), as values and
 * as the options table's text. */
#define MB_PSI_DEFAULT ((struct mb_levels){70000000u, 700000000u})
#define MB_PSI_DEFAULT_TEXT "7%,70%"
#define MB_MEM_USED_DEFAULT ((struct mb_levels){900000000u, 950000000u})
#define MB_MEM_USED_DEFAULT_TEXT "90%,95%"
#define MB_CGROUP_USED_DEFAULT ((struct mb_levels){900000000u, 950000000u})
#define MB_CGROUP_USED_DEFAULT_TEXT "90%,95%"
/* "off" ({0, 0}), or two percentages separated by a comma, "90%,95%", each
 * from 0% (that level off) to 100%. */
bool mb_parse_levels(const char *s, struct mb_levels *out);
/* floor(base * ppb / 10^9) without overflow. */
uint64_t mb_apply_ppb(uint64_t base, uint32_t ppb);

/* ---- the options -------------------------------------------------------- */

enum mb_action { MB_ACTION_ABORT = 0, MB_ACTION_FAIL, MB_ACTION_WARN };
enum mb_model { MB_MODEL_WEBKIT = 0, MB_MODEL_WEBKIT_LEGACY };
enum mb_state { MB_STATE_ACTIVE = 0, MB_STATE_INACTIVE };
enum mb_footprint_source { MB_FOOTPRINT_RSS = 0, MB_FOOTPRINT_CGROUP };
enum mb_monitor { MB_MONITOR_INLINE = 0, MB_MONITOR_THREAD };
enum mb_backend { MB_BACKEND_NATIVE = 0, MB_BACKEND_JEMALLOC };
/* MEMBUDGET_MACHINE: watch the machine's and the container's memory while the
 * process runs (policy/machine.h), or not. */
enum mb_machine { MB_MACHINE_ON = 0, MB_MACHINE_OFF };
enum mb_control_mode { MB_CONTROL_MODE_ON = 0, MB_CONTROL_MODE_OFF };

/* One entry per variable, in the order of DESIGN §10. */
enum mb_option_id {
    MB_OPT_LIMIT = 0,
    MB_OPT_ACTION,
    MB_OPT_MODEL,
    MB_OPT_STATE,
    MB_OPT_PAGES,
    MB_OPT_RAM,
    MB_OPT_CONSERVATIVE,
    MB_OPT_STRICT,
    MB_OPT_FOOTPRINT,
    MB_OPT_MONITOR,
    MB_OPT_INTERVAL,
    MB_OPT_SAMPLE,
    MB_OPT_REPORT,
    MB_OPT_BACKEND,
    MB_OPT_VERBOSE,
    /* Pressure from around the process (policy/machine.h). */
    MB_OPT_MACHINE,
    MB_OPT_PSI,
    MB_OPT_MEM_USED,
    MB_OPT_CGROUP_USED,
    MB_OPT_PSI_FILE,     /* for tests: the PSI file to read instead of the system's */
    MB_OPT_MEMINFO_FILE, /* for tests: the meminfo file to read instead */
    MB_OPT_CONTROL,
    /* Groups and bands (policy/group.h). */
    MB_OPT_GROUP,
    MB_OPT_GROUP_LIMIT,
    MB_OPT_PRIORITY,
    MB_OPT_COUNT
};

enum mb_option_kind {
    MB_KIND_ENUM,             /* one of desc->names */
    MB_KIND_UINT,             /* integer in [min, max] */
    MB_KIND_SIZE,             /* bytes in [min, max] */
    MB_KIND_SIZE_OR_PERCENT,  /* bytes >= min, or 0 < N% <= 100 */
    MB_KIND_SIZE_OR_FRACTION, /* bytes >= min, or 0 < fraction <= 1 */
    MB_KIND_DURATION,         /* nanoseconds in [min, max] */
    MB_KIND_PATH,             /* non-empty, fits, only %p and %% escapes */
    MB_KIND_LEVELS,           /* "off", or two percentages "C%,S%" (mb_parse_levels) */
    MB_KIND_FILE,             /* an absolute path that fits */
    MB_KIND_NAME              /* a group name (mb_group_name_valid) */
};

struct mb_option_desc {
    const char *name;         /* the environment variable */
    enum mb_option_kind kind;
    const char *default_text; /* as `membudget limits` shows it */
    const char *expected;     /* the accepted form, quoted in error lines */
    const char *const *names; /* MB_KIND_ENUM: NULL-terminated */
    uint64_t min, max;        /* MB_KIND_UINT, _SIZE (bytes), _DURATION (ns) */
};
const struct mb_option_desc *mb_option_desc(enum mb_option_id id);
/* The id of a variable name, or -1. */
int mb_option_lookup(const char *name);
/* The name of an enum option's value ("abort"), or "?" when out of range. */
const char *mb_option_value_name(enum mb_option_id id, unsigned value);

#define MB_CONFIG_PATH_MAX 1024
#define MB_CONFIG_RAW_MAX 64

/* The parsed configuration.  Every field holds a valid value at all times: the
 * default until a valid setting replaces it. */
struct mb_config {
    struct mb_amount limit; /* NONE: the model; BYTES; FRACTION of ramSize */
    enum mb_action action;
    enum mb_model model;
    enum mb_state state;
    unsigned pages;     /* >= 1 */
    uint64_t ram_bytes; /* 0: not set */
    struct mb_amount conservative; /* BYTES, or FRACTION of the base threshold */
    struct mb_amount strict;       /* likewise */
    enum mb_footprint_source footprint;
    enum mb_monitor monitor;
    uint64_t interval_ns; /* 1 ms .. 3600 s */
    uint64_t sample_bytes; /* 0: sampling off */
    char report_path[MB_CONFIG_PATH_MAX]; /* "": the default, $TMPDIR/membudget.%p.json */
    enum mb_backend backend;
    unsigned verbose; /* 0..2 */
    enum mb_machine machine;
    struct mb_levels psi;         /* some avg10 -> Conservative, full avg10 -> Strict */
    struct mb_levels mem_used;    /* share of MemTotal that is not MemAvailable */
    struct mb_levels cgroup_used; /* the cgroup's usage against its limit */
    char psi_file[MB_CONFIG_PATH_MAX];     /* "": the system's (test variable) */
    char meminfo_file[MB_CONFIG_PATH_MAX]; /* "": the system's (test variable) */
    enum mb_control_mode control; /* the control thread (policy/control.h) */
    char group[72];             /* "": no group (policy/group.h) */
    uint64_t group_limit_bytes; /* 0: not set */
    unsigned priority;          /* the band, when MEMBUDGET_PRIORITY is set */

    uint32_t set_mask;   /* bit id: a valid value came from the environment */
    uint32_t error_mask; /* bit id: a value was rejected (the default stands) */
    /* The text of each accepted setting as given (cut to fit), for provenance
     * such as "MEMBUDGET_LIMIT=64M"; "" for defaults. */
    char raw[MB_OPT_COUNT][MB_CONFIG_RAW_MAX];
};

/* Fills every field with its default. */
void mb_config_defaults(struct mb_config *cfg);

/* Parses `value` for one option into cfg.  On failure writes one line to the
 * sink, keeps the current value, sets the error bit and returns false. */
bool mb_config_set(struct mb_config *cfg, enum mb_option_id id, const char *value,
                   const struct mb_sink *sink);
static inline bool mb_config_is_set(const struct mb_config *cfg, enum mb_option_id id) {
    return (cfg->set_mask >> id) & 1u;
}

/* Looks every variable up through getenv_fn (NULL result: unset) after
 * resetting cfg to the defaults; returns the number of rejected values. */
typedef const char *(*mb_getenv_fn)(void *ctx, const char *name);
unsigned mb_config_read(struct mb_config *cfg, mb_getenv_fn getenv_fn, void *ctx,
                        const struct mb_sink *sink);
/* The same from the process environment through secure_getenv(3), so a setuid
 * program ignores the variables. */
unsigned mb_config_read_env(struct mb_config *cfg, const struct mb_sink *sink);

/* Reports (one line each) MEMBUDGET_* names in envp that no option knows, such
 * as a misspelt MEMBUDGET_LIMT; returns how many.  Not called by
 * mb_config_read_env: the caller decides (and skips it for setuid programs). */
unsigned mb_config_check_unknown(char *const *envp, const struct mb_sink *sink);

#endif
