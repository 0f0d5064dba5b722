/* Configuration (DESIGN §10): the options table, the value parsers, and the
 * sink the policy layer writes its lines to.  Runs inside
 * the first malloc: no allocation, no stdio, no locale — only write(2) and
 * secure_getenv(3). */
#include "policy/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/group.h"

_Static_assert(MB_OPT_COUNT <= 32, "set_mask and error_mask hold one bit per option");

/* ---- text into fixed buffers ------------------------------------------- */

void mb_buf_ppb(struct mb_buf *b, uint32_t ppb) {
    mb_buf_u64(b, ppb / MB_PPB);
    uint32_t frac = ppb % MB_PPB;
    if (frac == 0) return;
    char digits[9];
    for (int i = 8; i >= 0; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    size_t n = 9;
    while (n > 0 && digits[n - 1] == '0') n--;
    mb_buf_char(b, '.');
    mb_buf_mem(b, digits, n);
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void mb_sink_line(const struct mb_sink *sink, const char *line, size_t len) {
    if (sink != NULL) {
        if (sink->write != NULL) sink->write(sink->ctx, line, len);
        return;
    }
    /* One write(2) for the line and its newline, so lines from several
     * processes sharing stderr do not interleave mid-line. */
    char out[MB_LINE_MAX];
    if (len > sizeof out - 1) len = sizeof out - 1;
    memcpy(out, line, len);
    out[len] = '\n';
    int saved = errno;
    write_all(2, out, len + 1);
    errno = saved;
}

/* ---- parsers ------------------------------------------------------------ */

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* [*begin, *end) is s without surrounding blanks. */
static void trimmed(const char *s, const char **begin, const char **end) {
    const char *e = s + strlen(s);
    while (s < e && is_blank(*s)) s++;
    while (e > s && is_blank(e[-1])) e--;
    *begin = s;
    *end = e;
}

static bool equals_nocase(const char *p, const char *end, const char *word) {
    for (; p < end && *word != '\0'; p++, word++)
        if (lower(*p) != *word) return false;
    return p == end && *word == '\0';
}

/* digits [ "." digits ]: the whole part (with an overflow flag) and up to 18
 * decimal places as frac / scale; further places are read and dropped, which
 * only ever truncates. */
struct decimal {
    uint64_t whole;
    uint64_t frac;
    uint64_t scale; /* 10^(places kept) */
    bool has_point;
    bool overflow;
};

static const char *scan_decimal(const char *p, const char *end, struct decimal *d) {
    d->whole = 0;
    d->frac = 0;
    d->scale = 1;
    d->has_point = false;
    d->overflow = false;
    if (p == end || !is_digit(*p)) return NULL;
    for (; p < end && is_digit(*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (d->overflow || d->whole > (UINT64_MAX - digit) / 10)
            d->overflow = true;
        else
            d->whole = d->whole * 10 + digit;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p)) return NULL;
        d->has_point = true;
        for (unsigned places = 0; p < end && is_digit(*p); p++) {
            if (places < 18) {
                d->frac = d->frac * 10 + (unsigned)(*p - '0');
                d->scale *= 10;
                places++;
            }
        }
    }
    return p;
}

/* floor(frac / scale * 10^9) for frac < scale <= 10^18. */
static uint32_t decimal_frac_ppb(const struct decimal *d) {
    if (d->scale <= MB_PPB) return (uint32_t)(d->frac * (MB_PPB / d->scale));
    return (uint32_t)(d->frac / (d->scale / MB_PPB));
}

/* floor(frac * 2^shift / scale) for frac < scale <= 10^18, by binary long
 * division: the remainder stays below 2^61, the quotient below 2^shift. */
static uint64_t frac_times_pow2(uint64_t frac, uint64_t scale, unsigned shift) {
    uint64_t q = 0, r = frac;
    for (unsigned i = 0; i < shift; i++) {
        r <<= 1;
        q <<= 1;
        if (r >= scale) {
            r -= scale;
            q |= 1;
        }
    }
    return q;
}

bool mb_parse_size(const char *s, uint64_t *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    struct decimal d;
    p = scan_decimal(p, end, &d);
    if (p == NULL || d.overflow) return false;
    while (p < end && is_blank(*p)) p++;

    unsigned shift;
    if (p == end || equals_nocase(p, end, "b")) {
        if (d.has_point) return false; /* "1.5" bytes: surely not meant */
        *out = d.whole;
        return true;
    }
    switch (lower(*p)) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: return false;
    }
    p++;
    if (!(p == end || equals_nocase(p, end, "b") || equals_nocase(p, end, "ib"))) return false;

    if (d.whole > (UINT64_MAX >> shift)) return false;
    /* whole << shift <= 2^64 - 2^shift and the fraction adds less than 2^shift:
     * the sum cannot overflow. */
    *out = (d.whole << shift) + frac_times_pow2(d.frac, d.scale, shift);
    return true;
}

bool mb_parse_fraction(const char *s, uint32_t *out_ppb) {
    const char *p, *end;
    trimmed(s, &p, &end);
    struct decimal d;
    p = scan_decimal(p, end, &d);
    if (p == NULL || p != end || d.overflow) return false;
    if (d.whole > 1 || (d.whole == 1 && d.frac != 0)) return false;
    *out_ppb = (uint32_t)d.whole * MB_PPB + decimal_frac_ppb(&d);
    return true;
}

bool mb_parse_percent(const char *s, uint32_t *out_ppb) {
    const char *p, *end;
    trimmed(s, &p, &end);
    if (p == end || end[-1] != '%') return false;
    end--;
    while (end > p && is_blank(end[-1])) end--;
    struct decimal d;
    p = scan_decimal(p, end, &d);
    if (p == NULL || p != end || d.overflow) return false;
    if (d.whole > 100 || (d.whole == 100 && d.frac != 0)) return false;
    /* N% is N / 100: whole percents are 10^7 ppb each. */
    *out_ppb = (uint32_t)d.whole * (MB_PPB / 100) + decimal_frac_ppb(&d) / 100;
    return true;
}

bool mb_parse_duration(const char *s, uint64_t *out_ns) {
    const char *p, *end;
    trimmed(s, &p, &end);
    struct decimal d;
    p = scan_decimal(p, end, &d);
    if (p == NULL || d.overflow) return false;
    while (p < end && is_blank(*p)) p++;
    uint64_t unit_ns;
    if (p == end || equals_nocase(p, end, "ms"))
        unit_ns = 1000000; /* a plain number is milliseconds, like the default 100ms */
    else if (equals_nocase(p, end, "s"))
        unit_ns = 1000000000;
    else
        return false;
    if (d.whole > UINT64_MAX / unit_ns) return false;
    uint64_t ns = d.whole * unit_ns;
    /* decimal_frac_ppb is the fraction in units of 10^-9: of a second that is
     * nanoseconds, of a millisecond a thousandth of one. */
    uint64_t part = decimal_frac_ppb(&d) / (1000000000 / unit_ns);
    if (ns > UINT64_MAX - part) return false;
    *out_ns = ns + part;
    return true;
}

bool mb_parse_uint(const char *s, uint64_t max, uint64_t *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    struct decimal d;
    p = scan_decimal(p, end, &d);
    if (p == NULL || p != end || d.overflow || d.has_point || d.whole > max) return false;
    *out = d.whole;
    return true;
}

bool mb_parse_enum(const char *s, const char *const *names, unsigned *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    for (unsigned i = 0; names[i] != NULL; i++) {
        if (equals_nocase(p, end, names[i])) {
            *out = i;
            return true;
        }
    }
    return false;
}

bool mb_parse_size_or_percent(const char *s, struct mb_amount *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    if (p < end && end[-1] == '%') {
        uint32_t ppb;
        if (!mb_parse_percent(s, &ppb)) return false;
        *out = (struct mb_amount){.kind = MB_AMOUNT_FRACTION, .ppb = ppb};
        return true;
    }
    uint64_t bytes;
    if (!mb_parse_size(s, &bytes)) return false;
    *out = (struct mb_amount){.kind = MB_AMOUNT_BYTES, .bytes = bytes};
    return true;
}

bool mb_parse_size_or_fraction(const char *s, struct mb_amount *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    if (p < end && end[-1] == '%') return mb_parse_size_or_percent(s, out);
    struct decimal d;
    const char *after = scan_decimal(p, end, &d);
    if (after == end && (d.has_point || (!d.overflow && d.whole <= 1))) {
        uint32_t ppb;
        if (!mb_parse_fraction(s, &ppb)) return false;
        *out = (struct mb_amount){.kind = MB_AMOUNT_FRACTION, .ppb = ppb};
        return true;
    }
    uint64_t bytes;
    if (!mb_parse_size(s, &bytes)) return false;
    *out = (struct mb_amount){.kind = MB_AMOUNT_BYTES, .bytes = bytes};
    return true;
}

bool mb_parse_levels(const char *s, struct mb_levels *out) {
    const char *p, *end;
    trimmed(s, &p, &end);
    if (equals_nocase(p, end, "off")) {
        *out = (struct mb_levels){0, 0};
        return true;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL || (size_t)(comma - p) >= 32 || (size_t)(end - comma - 1) >= 32) return false;
    char first[32], second[32];
    memcpy(first, p, (size_t)(comma - p));
    first[comma - p] = '\0';
    memcpy(second, comma + 1, (size_t)(end - comma - 1));
    second[end - comma - 1] = '\0';
    struct mb_levels v;
    if (!mb_parse_percent(first, &v.conservative_ppb) || !mb_parse_percent(second, &v.strict_ppb))
        return false;
    *out = v;
    return true;
}

uint64_t mb_apply_ppb(uint64_t base, uint32_t ppb) {
    /* base = q * 10^9 + r: q * ppb < 2^64 because ppb <= 10^9, r * ppb < 10^18. */
    return (base / MB_PPB) * ppb + (base % MB_PPB) * ppb / MB_PPB;
}

/* ---- the options table -------------------------------------------------- */

static const char *const action_names[] = {"abort", "fail", "warn", NULL};
static const char *const model_names[] = {"webkit", "webkit-legacy", NULL};
static const char *const state_names[] = {"active", "inactive", NULL};
static const char *const footprint_names[] = {"rss", "cgroup", NULL};
static const char *const monitor_names[] = {"inline", "thread", NULL};
static const char *const backend_names[] = {"native", "jemalloc", NULL};
static const char *const on_off_names[] = {"on", "off", NULL};

#define NS_PER_MS UINT64_C(1000000)

static const struct mb_option_desc options[MB_OPT_COUNT] = {
    [MB_OPT_LIMIT] = {"MEMBUDGET_LIMIT", MB_KIND_SIZE_OR_PERCENT, "the jetsam model",
                      "a size from 1M to " MB_SIZE_SETTING_MAX_TEXT " such as 512M, 1.5G or "
                      "2147483648, or a percentage of RAM such as 80%",
                      NULL, MB_MIB, MB_SIZE_SETTING_MAX},
    [MB_OPT_ACTION] = {"MEMBUDGET_ACTION", MB_KIND_ENUM, "abort", "abort, fail or warn",
                       action_names, 0, 0},
    [MB_OPT_MODEL] = {"MEMBUDGET_MODEL", MB_KIND_ENUM, "webkit", "webkit or webkit-legacy",
                      model_names, 0, 0},
    [MB_OPT_STATE] = {"MEMBUDGET_STATE", MB_KIND_ENUM, "active", "active or inactive",
                      state_names, 0, 0},
    [MB_OPT_PAGES] = {"MEMBUDGET_PAGES", MB_KIND_UINT, "1",
                      "a whole number of pages from 1 to 4294967295", NULL, 1, UINT_MAX},
    [MB_OPT_RAM] = {"MEMBUDGET_RAM", MB_KIND_SIZE, "physical RAM and cgroup limit",
                    "a size up to " MB_SIZE_SETTING_MAX_TEXT " such as 8G, 1536M or 8589934592",
                    NULL, 1, MB_SIZE_SETTING_MAX},
    [MB_OPT_CONSERVATIVE] = {"MEMBUDGET_CONSERVATIVE", MB_KIND_SIZE_OR_FRACTION,
                             MB_DEFAULT_TEXT(MB_CONSERVATIVE_DEFAULT),
                             "a size up to " MB_SIZE_SETTING_MAX_TEXT " such as 2G, or a "
                             "fraction of the base threshold such as 0.8 or 80% (above 0, "
                             "at most 1)",
                             NULL, 1, MB_SIZE_SETTING_MAX},
    [MB_OPT_STRICT] = {"MEMBUDGET_STRICT", MB_KIND_SIZE_OR_FRACTION,
                       MB_DEFAULT_TEXT(MB_STRICT_DEFAULT),
                       "a size up to " MB_SIZE_SETTING_MAX_TEXT " such as 2G, or a fraction "
                       "of the base threshold such as 0.9 or 90% (above 0, at most 1)",
                       NULL, 1, MB_SIZE_SETTING_MAX},
    [MB_OPT_FOOTPRINT] = {"MEMBUDGET_FOOTPRINT", MB_KIND_ENUM, "rss", "rss or cgroup",
                          footprint_names, 0, 0},
    [MB_OPT_MONITOR] = {"MEMBUDGET_MONITOR", MB_KIND_ENUM, "inline", "inline or thread",
                        monitor_names, 0, 0},
    [MB_OPT_INTERVAL] = {"MEMBUDGET_INTERVAL", MB_KIND_DURATION, "100ms",
                         "a duration from 1ms to 3600s such as 100ms or 2s; a plain "
                         "number is milliseconds",
                         NULL, NS_PER_MS, 3600 * 1000 * NS_PER_MS},
    [MB_OPT_SAMPLE] = {"MEMBUDGET_SAMPLE", MB_KIND_SIZE, "512K",
                       "a size up to " MB_SIZE_SETTING_MAX_TEXT " such as 512K or 1M, or 0 "
                       "to turn sampling off",
                       NULL, 0, MB_SIZE_SETTING_MAX},
    [MB_OPT_REPORT] = {"MEMBUDGET_REPORT", MB_KIND_PATH, "$TMPDIR/membudget.%p.json",
                       "a path shorter than 1024 bytes where %p stands for the pid and "
                       "%% for a percent sign",
                       NULL, 0, 0},
    [MB_OPT_BACKEND] = {"MEMBUDGET_BACKEND", MB_KIND_ENUM, "native", "native or jemalloc",
                        backend_names, 0, 0},
    [MB_OPT_VERBOSE] = {"MEMBUDGET_VERBOSE", MB_KIND_UINT, "0", "0, 1 or 2", NULL, 0, 2},
    [MB_OPT_MACHINE] = {"MEMBUDGET_MACHINE", MB_KIND_ENUM, "on", "on or off", on_off_names, 0, 0},
    [MB_OPT_PSI] = {"MEMBUDGET_PSI", MB_KIND_LEVELS, MB_PSI_DEFAULT_TEXT,
                    "two percentages of stalled time, some avg10 for conservative and full "
                    "avg10 for strict, such as 7%,70% (0% turns one off), or off",
                    NULL, 0, 0},
    [MB_OPT_MEM_USED] = {"MEMBUDGET_MEM_USED", MB_KIND_LEVELS, MB_MEM_USED_DEFAULT_TEXT,
                         "two percentages of MemTotal not available, for conservative and "
                         "strict, such as 90%,95% (0% turns one off), or off",
                         NULL, 0, 0},
    [MB_OPT_CGROUP_USED] = {"MEMBUDGET_CGROUP_USED", MB_KIND_LEVELS, MB_CGROUP_USED_DEFAULT_TEXT,
                            "two percentages of the cgroup's limit in use, for conservative "
                            "and strict, such as 90%,95% (0% turns one off), or off",
                            NULL, 0, 0},
    [MB_OPT_PSI_FILE] = {"MEMBUDGET_PSI_FILE", MB_KIND_FILE, "the system's",
                         "an absolute path shorter than 1024 bytes", NULL, 0, 0},
    [MB_OPT_MEMINFO_FILE] = {"MEMBUDGET_MEMINFO_FILE", MB_KIND_FILE, "the system's",
                             "an absolute path shorter than 1024 bytes", NULL, 0, 0},
    [MB_OPT_CONTROL] = {"MEMBUDGET_CONTROL", MB_KIND_ENUM, "on", "on or off", on_off_names, 0, 0},
    [MB_OPT_GROUP] = {"MEMBUDGET_GROUP", MB_KIND_NAME, "none",
                      "a group name of 1 to 64 characters from A-Z a-z 0-9 . _ -", NULL, 0, 0},
    [MB_OPT_GROUP_LIMIT] = {"MEMBUDGET_GROUP_LIMIT", MB_KIND_SIZE, "none",
                            "a size from 1M up to " MB_SIZE_SETTING_MAX_TEXT " such as 2G",
                            NULL, MB_MIB, MB_SIZE_SETTING_MAX},
    [MB_OPT_PRIORITY] = {"MEMBUDGET_PRIORITY", MB_KIND_UINT,
                         "2 when inactive, 8 when active (MEMBUDGET_STATE)",
                         "a band from 0 (least important) to 9", NULL, 0, MB_GROUP_BANDS - 1},
};

const struct mb_option_desc *mb_option_desc(enum mb_option_id id) {
    return (unsigned)id < MB_OPT_COUNT ? &options[id] : NULL;
}

int mb_option_lookup(const char *name) {
    for (int i = 0; i < MB_OPT_COUNT; i++)
        if (strcmp(options[i].name, name) == 0) return i;
    return -1;
}

const char *mb_option_value_name(enum mb_option_id id, unsigned value) {
    const struct mb_option_desc *d = mb_option_desc(id);
    if (d == NULL || d->names == NULL) return "?";
    for (unsigned i = 0; d->names[i] != NULL; i++)
        if (i == value) return d->names[i];
    return "?";
}

void mb_config_defaults(struct mb_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->limit.kind = MB_AMOUNT_NONE;
    cfg->action = MB_ACTION_ABORT;
    cfg->model = MB_MODEL_WEBKIT;
    cfg->state = MB_STATE_ACTIVE;
    cfg->pages = 1;
    cfg->ram_bytes = 0;
    cfg->conservative = MB_DEFAULT_FRACTION(MB_CONSERVATIVE_DEFAULT);
    cfg->strict = MB_DEFAULT_FRACTION(MB_STRICT_DEFAULT);
    cfg->footprint = MB_FOOTPRINT_RSS;
    cfg->monitor = MB_MONITOR_INLINE;
    cfg->interval_ns = 100 * NS_PER_MS;
    cfg->sample_bytes = 512 * MB_KIB;
    cfg->report_path[0] = '\0';
    cfg->backend = MB_BACKEND_NATIVE;
    cfg->verbose = 0;
    cfg->machine = MB_MACHINE_ON;
    cfg->psi = MB_PSI_DEFAULT;
    cfg->mem_used = MB_MEM_USED_DEFAULT;
    cfg->cgroup_used = MB_CGROUP_USED_DEFAULT;
    cfg->psi_file[0] = cfg->meminfo_file[0] = '\0';
    cfg->control = MB_CONTROL_MODE_ON;
}

/* A value that passed its option's parser and range, before it is stored. */
struct parsed {
    uint64_t number;
    unsigned index;
    struct mb_amount amount;
    struct mb_levels levels;
};

static bool amount_in_range(const struct mb_option_desc *d, const struct mb_amount *a) {
    if (a->kind == MB_AMOUNT_FRACTION) return a->ppb > 0 && a->ppb <= MB_PPB;
    return a->bytes >= d->min && a->bytes <= d->max;
}

static bool path_is_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= MB_CONFIG_PATH_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') continue;
        if (s[i + 1] != 'p' && s[i + 1] != '%') return false;
        i++;
    }
    return true;
}

static bool option_parse(const struct mb_option_desc *d, const char *value, struct parsed *out) {
    switch (d->kind) {
    case MB_KIND_ENUM:
        return mb_parse_enum(value, d->names, &out->index);
    case MB_KIND_UINT:
        return mb_parse_uint(value, d->max, &out->number) && out->number >= d->min;
    case MB_KIND_SIZE:
        return mb_parse_size(value, &out->number) && out->number >= d->min &&
               out->number <= d->max;
    case MB_KIND_DURATION:
        return mb_parse_duration(value, &out->number) && out->number >= d->min &&
               out->number <= d->max;
    case MB_KIND_SIZE_OR_PERCENT:
        return mb_parse_size_or_percent(value, &out->amount) && amount_in_range(d, &out->amount);
    case MB_KIND_SIZE_OR_FRACTION:
        return mb_parse_size_or_fraction(value, &out->amount) &&
               amount_in_range(d, &out->amount);
    case MB_KIND_PATH:
        return path_is_valid(value);
    case MB_KIND_LEVELS:
        return mb_parse_levels(value, &out->levels);
    case MB_KIND_FILE:
        return value[0] == '/' && strlen(value) < MB_CONFIG_PATH_MAX;
    case MB_KIND_NAME:
        return mb_group_name_valid(value);
    }
    return false;
}

static void option_store(struct mb_config *cfg, enum mb_option_id id, const char *value,
                         const struct parsed *v) {
    switch (id) {
    case MB_OPT_LIMIT: cfg->limit = v->amount; break;
    case MB_OPT_ACTION: cfg->action = (enum mb_action)v->index; break;
    case MB_OPT_MODEL: cfg->model = (enum mb_model)v->index; break;
    case MB_OPT_STATE: cfg->state = (enum mb_state)v->index; break;
    case MB_OPT_PAGES: cfg->pages = (unsigned)v->number; break;
    case MB_OPT_RAM: cfg->ram_bytes = v->number; break;
    case MB_OPT_CONSERVATIVE: cfg->conservative = v->amount; break;
    case MB_OPT_STRICT: cfg->strict = v->amount; break;
    case MB_OPT_FOOTPRINT: cfg->footprint = (enum mb_footprint_source)v->index; break;
    case MB_OPT_MONITOR: cfg->monitor = (enum mb_monitor)v->index; break;
    case MB_OPT_INTERVAL: cfg->interval_ns = v->number; break;
    case MB_OPT_SAMPLE: cfg->sample_bytes = v->number; break;
    case MB_OPT_REPORT: memcpy(cfg->report_path, value, strlen(value) + 1); break;
    case MB_OPT_BACKEND: cfg->backend = (enum mb_backend)v->index; break;
    case MB_OPT_VERBOSE: cfg->verbose = (unsigned)v->number; break;
    case MB_OPT_MACHINE: cfg->machine = (enum mb_machine)v->index; break;
    case MB_OPT_PSI: cfg->psi = v->levels; break;
    case MB_OPT_MEM_USED: cfg->mem_used = v->levels; break;
    case MB_OPT_CGROUP_USED: cfg->cgroup_used = v->levels; break;
    case MB_OPT_PSI_FILE: memcpy(cfg->psi_file, value, strlen(value) + 1); break;
    case MB_OPT_MEMINFO_FILE: memcpy(cfg->meminfo_file, value, strlen(value) + 1); break;
    case MB_OPT_CONTROL: cfg->control = (enum mb_control_mode)v->index; break;
    case MB_OPT_GROUP: memcpy(cfg->group, value, strlen(value) + 1); break;
    case MB_OPT_GROUP_LIMIT: cfg->group_limit_bytes = v->number; break;
    case MB_OPT_PRIORITY: cfg->priority = (unsigned)v->number; break;
    case MB_OPT_COUNT: break;
    }
}

bool mb_config_set(struct mb_config *cfg, enum mb_option_id id, const char *value,
                   const struct mb_sink *sink) {
    const struct mb_option_desc *d = mb_option_desc(id);
    if (d == NULL) return false;
    struct parsed v = {0};
    if (value != NULL && option_parse(d, value, &v)) {
        option_store(cfg, id, value, &v);
        cfg->set_mask |= 1u << id;
        cfg->error_mask &= ~(1u << id);
        struct mb_buf raw;
        mb_buf_init(&raw, cfg->raw[id], sizeof cfg->raw[id]);
        mb_buf_value(&raw, value, sizeof cfg->raw[id] - 4);
        return true;
    }
    cfg->error_mask |= 1u << id;
    char line[512];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    mb_buf_str(&b, "membudget: ");
    mb_buf_str(&b, d->name);
    mb_buf_str(&b, "='");
    mb_buf_value(&b, value != NULL ? value : "", 96);
    mb_buf_str(&b, "' is not valid (expected ");
    mb_buf_str(&b, d->expected);
    mb_buf_str(&b, "); using the default");
    mb_sink_line(sink, b.data, b.len);
    return false;
}

unsigned mb_config_read(struct mb_config *cfg, mb_getenv_fn getenv_fn, void *ctx,
                        const struct mb_sink *sink) {
    mb_config_defaults(cfg);
    unsigned errors = 0;
    for (int id = 0; id < MB_OPT_COUNT; id++) {
        const char *value = getenv_fn(ctx, options[id].name);
        if (value != NULL && !mb_config_set(cfg, (enum mb_option_id)id, value, sink)) errors++;
    }
    return errors;
}

static const char *secure_env_lookup(void *ctx, const char *name) {
    (void)ctx;
    return secure_getenv(name);
}

unsigned mb_config_read_env(struct mb_config *cfg, const struct mb_sink *sink) {
    return mb_config_read(cfg, secure_env_lookup, NULL, sink);
}

unsigned mb_config_check_unknown(char *const *envp, const struct mb_sink *sink) {
    static const char prefix[] = "MEMBUDGET_";
    unsigned unknown = 0;
    for (; envp != NULL && *envp != NULL; envp++) {
        const char *entry = *envp;
        if (strncmp(entry, prefix, sizeof prefix - 1) != 0) continue;
        const char *eq = strchr(entry, '=');
        size_t n = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
        bool known = false;
        for (int i = 0; i < MB_OPT_COUNT && !known; i++)
            known = strlen(options[i].name) == n && memcmp(options[i].name, entry, n) == 0;
        if (known) continue;
        unknown++;
        char name[96], line[1024];
        size_t keep = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, entry, keep);
        name[keep] = '\0';
        struct mb_buf b;
        mb_buf_init(&b, line, sizeof line);
        mb_buf_str(&b, "membudget: ");
        mb_buf_value(&b, name, sizeof name);
        mb_buf_str(&b, " is not a known variable (known:");
        for (int i = 0; i < MB_OPT_COUNT; i++) {
            mb_buf_str(&b, i == 0 ? " " : ", ");
            mb_buf_str(&b, options[i].name);
        }
        mb_buf_str(&b, "); ignored");
        mb_sink_line(sink, b.data, b.len);
    }
    return unknown;
}
