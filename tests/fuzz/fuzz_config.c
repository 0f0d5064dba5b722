/* libFuzzer target for every MEMBUDGET_* parser (policy/config.h) and the
 * thresholds computed from what they accept (policy/limits.h).
 *
 * Byte 0 picks what is exercised; the rest is the value, copied into a buffer
 * of exactly its length plus the NUL, so AddressSanitizer sees any read past
 * the string.  Besides "no crash, no overflow, no undefined behaviour":
 *  - every accepted value is checked against an independent reading of the
 *    grammar config.h documents, computed with 128-bit arithmetic, and prints
 *    back to text that parses to the same value (round trip);
 *  - mb_config_set either accepts (no line, the field in its documented range)
 *    or rejects with exactly one printable line naming the variable and leaves
 *    every field as it was;
 *  - the bounded text helpers never write past their buffer, however small;
 *  - thresholds from accepted settings keep conservative < strict <= kill. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/config.h"
#include "policy/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef unsigned __int128 u128;

static void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_config: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- a sink that keeps the lines -------------------------------------------- */
struct capture {
    unsigned lines;
    char last[MB_LINE_MAX + 1];
    size_t last_len;
};
static void capture_write(void *ctx, const char *line, size_t len) {
    struct capture *c = ctx;
    c->lines++;
    if (len > MB_LINE_MAX) fuzz_fail("a sink line of %zu bytes", len);
    memcpy(c->last, line, len);
    c->last[len] = '\0';
    c->last_len = len;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
            fuzz_fail("line has byte 0x%02x at %zu: %s", (unsigned char)line[i], i, c->last);
}

/* ---- the reference reading of the grammar ----------------------------------- */
static bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool digit(char c) { return c >= '0' && c <= '9'; }
static char low(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

struct num {
    u128 whole;     /* saturates at 2^80 */
    u128 frac;      /* the first 18 decimal places */
    u128 scale;     /* 10^places kept */
    unsigned places; /* all of them, kept or not */
    bool point;
};

static const char *ltrim(const char *s) {
    while (blank(*s)) s++;
    return s;
}
static size_t rtrim_len(const char *s) {
    size_t n = strlen(s);
    while (n && blank(s[n - 1])) n--;
    return n;
}
static bool word_is(const char *p, size_t n, const char *w) {
    if (strlen(w) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (low(p[i]) != w[i]) return false;
    return true;
}

/* digits ["." digits]; returns the length read, 0 when it is not a number. */
static size_t read_num(const char *p, size_t n, struct num *v) {
    memset(v, 0, sizeof *v);
    v->scale = 1;
    size_t i = 0;
    const u128 cap = (u128)1 << 80;
    while (i < n && digit(p[i])) {
        v->whole = v->whole * 10 + (unsigned)(p[i] - '0');
        if (v->whole > cap) v->whole = cap;
        i++;
    }
    if (i == 0) return 0;
    if (i < n && p[i] == '.') {
        if (i + 1 >= n || !digit(p[i + 1])) return 0;
        v->point = true;
        i++;
        while (i < n && digit(p[i])) {
            if (v->places < 18) {
                v->frac = v->frac * 10 + (unsigned)(p[i] - '0');
                v->scale *= 10;
            }
            v->places++;
            i++;
        }
    }
    return i;
}

/* mb_parse_size as documented: accepted? and the value. */
static bool ref_size(const char *s, uint64_t *out) {
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    struct num v;
    size_t i = read_num(p, n, &v);
    if (!i) return false;
    while (i < n && blank(p[i])) i++;
    unsigned shift;
    if (i == n || word_is(p + i, n - i, "b")) {
        if (v.point) return false;
        shift = 0;
    } else {
        switch (low(p[i])) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        default: return false;
        }
        i++;
        if (!(i == n || word_is(p + i, n - i, "b") || word_is(p + i, n - i, "ib"))) return false;
    }
    u128 value = (v.whole << shift) + (v.frac << shift) / v.scale;
    if (v.whole >= ((u128)1 << 64) || value > UINT64_MAX) return false;
    *out = (uint64_t)value;
    return true;
}

/* A plain decimal (no unit) as parts of `unit` per one: floor(x * unit). */
static bool ref_decimal(const char *p, size_t n, u128 unit, u128 *out, struct num *v) {
    size_t i = read_num(p, n, v);
    if (!i || i != n) return false;
    *out = v->whole * unit + v->frac * unit / v->scale;
    return true;
}

/* ---- checks, one per parser ---------------------------------------------- */
static char text[256];

static void check_size(const char *s) {
    uint64_t v = 0, r = 0;
    bool ok = mb_parse_size(s, &v), rok = ref_size(s, &r);
    if (ok != rok) fuzz_fail("mb_parse_size('%s') %s, the documented grammar %s", s, ok ? "accepts" : "rejects", rok ? "accepts" : "rejects");
    if (!ok) return;
    if (v != r) fuzz_fail("mb_parse_size('%s') = %llu, expected %llu", s, (unsigned long long)v, (unsigned long long)r);
    /* Round trips: plain bytes, and the largest unit that divides it. */
    uint64_t back = 0;
    snprintf(text, sizeof text, " %llu\t", (unsigned long long)v);
    if (!mb_parse_size(text, &back) || back != v) fuzz_fail("'%s' does not read back as %llu", text, (unsigned long long)v);
    static const char units[] = "KMGT";
    for (int u = 3; u >= 0; u--) {
        uint64_t m = (uint64_t)1 << (10 * (u + 1));
        if (v % m) continue;
        snprintf(text, sizeof text, "%llu%ciB", (unsigned long long)(v / m), units[u]);
        if (!mb_parse_size(text, &back) || back != v) fuzz_fail("'%s' does not read back as %llu", text, (unsigned long long)v);
        break;
    }
    /* mb_buf_bytes prints it to one decimal, as humans read it. */
    char buf[40];
    struct mb_buf b;
    mb_buf_init(&b, buf, sizeof buf);
    mb_buf_bytes(&b, v);
    if (b.truncated) fuzz_fail("mb_buf_bytes(%llu) did not fit 40 bytes", (unsigned long long)v);
}

static void check_ppb_kind(const char *s, int kind) {
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    uint32_t ppb = 0;
    u128 ref = 0;
    struct num v;
    bool ok, rok;
    if (kind == 0) { /* fraction: 0..1 */
        ok = mb_parse_fraction(s, &ppb);
        rok = ref_decimal(p, n, MB_PPB, &ref, &v) && ref <= MB_PPB && !(v.whole == 1 && v.frac);
    } else { /* percent: 0..100% */
        ok = mb_parse_percent(s, &ppb);
        rok = false;
        if (n && p[n - 1] == '%') {
            size_t m = n - 1;
            while (m && blank(p[m - 1])) m--;
            rok = ref_decimal(p, m, MB_PPB / 100, &ref, &v) && v.whole <= 100 &&
                  !(v.whole == 100 && v.frac);
        }
    }
    if (ok != rok) fuzz_fail("%s('%s') %s, the documented grammar %s", kind ? "mb_parse_percent" : "mb_parse_fraction", s, ok ? "accepts" : "rejects", rok ? "accepts" : "rejects");
    if (!ok) return;
    if (ppb != ref || ppb > MB_PPB) fuzz_fail("'%s' = %u ppb, expected %llu", s, ppb, (unsigned long long)ref);
    uint32_t back = 0;
    char buf[32];
    struct mb_buf b;
    mb_buf_init(&b, buf, sizeof buf);
    mb_buf_ppb(&b, ppb);
    if (!mb_parse_fraction(buf, &back) || back != ppb) fuzz_fail("mb_buf_ppb(%u) = '%s' does not read back", ppb, buf);
    snprintf(text, sizeof text, "%u.%07u %%", ppb / 10000000u, ppb % 10000000u);
    if (!mb_parse_percent(text, &back) || back != ppb) fuzz_fail("'%s' does not read back as %u ppb", text, ppb);
}

static void check_duration(const char *s) {
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    uint64_t ns = 0;
    bool ok = mb_parse_duration(s, &ns);
    struct num v;
    size_t i = read_num(p, n, &v), j = i;
    bool rok = false;
    u128 ref = 0;
    if (i) {
        while (j < n && blank(p[j])) j++;
        u128 unit = 0;
        if (j == n || word_is(p + j, n - j, "ms")) unit = 1000000;
        else if (word_is(p + j, n - j, "s")) unit = 1000000000;
        if (unit) {
            ref = v.whole * unit + v.frac * unit / v.scale;
            rok = v.whole < ((u128)1 << 64) && ref <= UINT64_MAX;
        }
    }
    if (ok != rok) fuzz_fail("mb_parse_duration('%s') %s, the documented grammar %s", s, ok ? "accepts" : "rejects", rok ? "accepts" : "rejects");
    if (!ok) return;
    if (ns != ref) fuzz_fail("mb_parse_duration('%s') = %llu ns, expected %llu", s, (unsigned long long)ns, (unsigned long long)ref);
    uint64_t back = 0;
    snprintf(text, sizeof text, "%llu.%09llus", (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
    if (!mb_parse_duration(text, &back) || back != ns) fuzz_fail("'%s' does not read back as %llu ns", text, (unsigned long long)ns);
}

static void check_uint(const char *s, uint64_t max) {
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    uint64_t v = 0;
    bool ok = mb_parse_uint(s, max, &v);
    struct num r;
    size_t i = read_num(p, n, &r);
    bool rok = i && i == n && !r.point && r.whole <= max;
    if (ok != rok) fuzz_fail("mb_parse_uint('%s', %llu) %s, the documented grammar %s", s, (unsigned long long)max, ok ? "accepts" : "rejects", rok ? "accepts" : "rejects");
    if (ok && v != r.whole) fuzz_fail("mb_parse_uint('%s') = %llu", s, (unsigned long long)v);
}

static void check_enum(const char *s) {
    static const char *const names[] = {"abort", "fail", "warn", "webkit-legacy", "", NULL};
    unsigned idx = 99;
    bool ok = mb_parse_enum(s, names, &idx);
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    for (unsigned i = 0; names[i]; i++) {
        if (word_is(p, n, names[i])) {
            if (!ok || idx != i) fuzz_fail("mb_parse_enum('%s') missed '%s'", s, names[i]);
            return;
        }
    }
    if (ok) fuzz_fail("mb_parse_enum('%s') accepted it as '%s'", s, names[idx]);
}

static void check_amounts(const char *s) {
    struct mb_amount a = {0}, b = {0};
    const char *p = ltrim(s);
    size_t n = rtrim_len(p);
    bool pct = n && p[n - 1] == '%';
    if (mb_parse_size_or_percent(s, &a)) {
        if ((a.kind == MB_AMOUNT_FRACTION) != pct || a.ppb > MB_PPB)
            fuzz_fail("mb_parse_size_or_percent('%s'): kind %d ppb %u", s, a.kind, a.ppb);
    }
    if (mb_parse_size_or_fraction(s, &b)) {
        if (b.kind == MB_AMOUNT_FRACTION) {
            uint32_t ppb;
            if (b.ppb > MB_PPB || (!pct && (!mb_parse_fraction(s, &ppb) || ppb != b.ppb)))
                fuzz_fail("mb_parse_size_or_fraction('%s'): fraction %u ppb", s, b.ppb);
        } else {
            uint64_t v;
            size_t k = 0;
            while (k < n && digit(p[k])) k++;
            bool bare = k == n; /* a bare integer is bytes only from 2 on */
            if (b.kind != MB_AMOUNT_BYTES || !mb_parse_size(s, &v) || v != b.bytes || (bare && v < 2))
                fuzz_fail("mb_parse_size_or_fraction('%s'): kind %d bytes %llu", s, b.kind, (unsigned long long)b.bytes);
        }
    }
}

/* mb_config_set for one option: accepted in range and silent, or one line and
 * nothing changed. */
static void check_option(enum mb_option_id id, const char *s) {
    static struct mb_config cfg, before;
    mb_config_defaults(&cfg);
    memcpy(&before, &cfg, sizeof cfg);
    struct capture cap = {0};
    struct mb_sink sink = {capture_write, &cap};
    const struct mb_option_desc *d = mb_option_desc(id);
    bool ok = mb_config_set(&cfg, id, s, &sink);
    /* No size variable takes more than MB_SIZE_SETTING_MAX (2^56, the largest
     * address space of a process): what the grammar reads past it is refused. */
    bool sized = d->kind == MB_KIND_SIZE || d->kind == MB_KIND_SIZE_OR_PERCENT ||
                 d->kind == MB_KIND_SIZE_OR_FRACTION;
    uint64_t ref = 0;
    if (sized && d->max != MB_SIZE_SETTING_MAX) fuzz_fail("%s: max %llu", d->name, (unsigned long long)d->max);
    if (sized && ok && ref_size(s, &ref) && ref > MB_SIZE_SETTING_MAX)
        fuzz_fail("%s='%s' (%llu bytes) accepted past the bound", d->name, s, (unsigned long long)ref);
    if (!ok) {
        if (cap.lines != 1) fuzz_fail("%s='%s' rejected with %u lines", d->name, s, cap.lines);
        if (!strstr(cap.last, d->name) || !strstr(cap.last, "expected"))
            fuzz_fail("%s: the line does not name the variable: %s", d->name, cap.last);
        if (!(cfg.error_mask & (1u << id))) fuzz_fail("%s: no error bit", d->name);
        cfg.error_mask = before.error_mask;
        if (memcmp(&cfg, &before, sizeof cfg)) fuzz_fail("%s='%s' rejected, but the config changed", d->name, s);
        return;
    }
    if (cap.lines) fuzz_fail("%s='%s' accepted with a line: %s", d->name, s, cap.last);
    if (!mb_config_is_set(&cfg, id) || (cfg.error_mask & (1u << id))) fuzz_fail("%s: mask bits", d->name);
    if (memchr(cfg.raw[id], 0, sizeof cfg.raw[id]) == NULL) fuzz_fail("%s: raw text not terminated", d->name);
    for (const char *r = cfg.raw[id]; *r; r++)
        if ((unsigned char)*r < 0x20 || (unsigned char)*r >= 0x7f) fuzz_fail("%s: raw text not printable", d->name);
    const struct mb_amount *amt = NULL;
    switch (id) {
    case MB_OPT_LIMIT: amt = &cfg.limit; break;
    case MB_OPT_CONSERVATIVE: amt = &cfg.conservative; break;
    case MB_OPT_STRICT: amt = &cfg.strict; break;
    case MB_OPT_PAGES: if (cfg.pages < 1) fuzz_fail("pages %u", cfg.pages); break;
    case MB_OPT_INTERVAL:
        if (cfg.interval_ns < 1000000 || cfg.interval_ns > 3600000000000ull) fuzz_fail("interval %llu ns", (unsigned long long)cfg.interval_ns);
        break;
    case MB_OPT_VERBOSE: if (cfg.verbose > 2) fuzz_fail("verbose %u", cfg.verbose); break;
    case MB_OPT_RAM:
        if (cfg.ram_bytes < 1 || cfg.ram_bytes > MB_SIZE_SETTING_MAX) fuzz_fail("ram %llu accepted", (unsigned long long)cfg.ram_bytes);
        break;
    case MB_OPT_SAMPLE:
        if (cfg.sample_bytes > MB_SIZE_SETTING_MAX) fuzz_fail("sample %llu accepted", (unsigned long long)cfg.sample_bytes);
        break;
    case MB_OPT_REPORT: {
        size_t n = strnlen(cfg.report_path, MB_CONFIG_PATH_MAX);
        if (n == 0 || n >= MB_CONFIG_PATH_MAX || strcmp(cfg.report_path, s))
            fuzz_fail("report path '%s' stored as '%.40s'", s, cfg.report_path);
        for (size_t i = 0; i < n; i++)
            if (cfg.report_path[i] == '%' && cfg.report_path[++i] != 'p' && cfg.report_path[i] != '%')
                fuzz_fail("report path with a stray %%: '%s'", s);
        break;
    }
    default:
        if (d->kind == MB_KIND_ENUM && strcmp(mb_option_value_name(id, 0), "?") == 0)
            fuzz_fail("%s: enum without names", d->name);
        break;
    }
    if (amt) {
        if (amt->kind == MB_AMOUNT_FRACTION ? (amt->ppb == 0 || amt->ppb > MB_PPB)
                                            : (amt->kind != MB_AMOUNT_BYTES || amt->bytes < d->min ||
                                               amt->bytes > MB_SIZE_SETTING_MAX))
            fuzz_fail("%s='%s' stored kind %d bytes %llu ppb %u", d->name, s, amt->kind, (unsigned long long)amt->bytes, amt->ppb);
    }
}

/* ---- whole environments --------------------------------------------------- */
struct env {
    char *lines[32];
    unsigned n;
};

static const char *env_get(void *ctx, const char *name) {
    struct env *e = ctx;
    size_t len = strlen(name);
    for (unsigned i = 0; i < e->n; i++)
        if (strncmp(e->lines[i], name, len) == 0 && e->lines[i][len] == '=') return e->lines[i] + len + 1;
    return NULL;
}

/* Input lines "NAME=value" (or "@N=value" for the N-th variable), a config read
 * from them, the unknown-name check over them, and the thresholds. */
static void check_environment(char *s, const uint8_t *nums) {
    struct env e = {{0}, 0};
    char *save = NULL;
    static char named[32][MB_CONFIG_PATH_MAX + 64];
    for (char *line = strtok_r(s, "\n", &save); line && e.n < 31; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '@' && line[1] && line[2] == '=') {
            const struct mb_option_desc *d = mb_option_desc((enum mb_option_id)((unsigned char)line[1] % MB_OPT_COUNT));
            snprintf(named[e.n], sizeof named[e.n], "%s=%s", d->name, line + 3);
            e.lines[e.n] = named[e.n];
            e.n++;
        } else {
            e.lines[e.n++] = line;
        }
    }
    e.lines[e.n] = NULL;
    struct capture cap = {0};
    struct mb_sink sink = {capture_write, &cap};
    static struct mb_config cfg;
    unsigned errors = mb_config_read(&cfg, env_get, &e, &sink);
    if (errors != cap.lines) fuzz_fail("mb_config_read: %u errors, %u lines", errors, cap.lines);
    cap.lines = 0;
    unsigned unknown = mb_config_check_unknown(e.lines, &sink);
    if (unknown != cap.lines) fuzz_fail("mb_config_check_unknown: %u unknown, %u lines", unknown, cap.lines);

    static struct mb_limits lim;
    memset(&lim, 0, sizeof lim);
    uint64_t ram = 0;
    memcpy(&ram, nums, 8);
    ram >>= nums[8] % 64;
    uint64_t rounded = mb_ram_round_up(ram);
    /* Up to the next multiple, or down to the last one where that overflows. */
    if (rounded % MB_RAM_MULTIPLE || (rounded < ram && rounded != (ram & ~(MB_RAM_MULTIPLE - 1))) ||
        (rounded >= ram && rounded - ram >= MB_RAM_MULTIPLE))
        fuzz_fail("mb_ram_round_up(%llu) = %llu", (unsigned long long)ram, (unsigned long long)rounded);
    lim.ram_bytes = rounded ? rounded : MB_RAM_GUESS_BYTES;
    struct mb_limits_params p;
    mb_limits_params_from_config(&p, &cfg);
    p.pages = nums[9];
    p.word_bits = nums[10] & 1 ? 32 : 64;
    p.api_limit_bytes = nums[11] & 1 ? ((uint64_t)nums[11] << (nums[10] % 40)) + MB_MIB : 0;
    cap.lines = 0;
    unsigned reported = mb_limits_compute(&lim, &cfg, &p, &sink);
    if (reported != cap.lines) fuzz_fail("mb_limits_compute: %u reported, %u lines", reported, cap.lines);
    if (!(lim.conservative_bytes < lim.strict_bytes && lim.strict_bytes <= lim.kill_bytes &&
          lim.strict_bytes <= lim.strict_sync_bytes))
        fuzz_fail("thresholds out of order: conservative %llu strict %llu kill %llu strict_sync %llu",
                  (unsigned long long)lim.conservative_bytes, (unsigned long long)lim.strict_bytes,
                  (unsigned long long)lim.kill_bytes, (unsigned long long)lim.strict_sync_bytes);
    size_t cap_bytes = 1 + nums[12] * 16u;
    char *out = malloc(cap_bytes);
    size_t n = mb_limits_format(&lim, out, cap_bytes);
    if (n >= cap_bytes || out[n] != '\0') fuzz_fail("mb_limits_format wrote %zu into %zu bytes", n, cap_bytes);
    free(out);
}

/* The bounded buffer helpers with a buffer of `cap` bytes (0 included). */
static void check_buffers(const char *s, const uint8_t *nums) {
    size_t cap = nums[0] % 48;
    char *mem = malloc(cap ? cap : 1);
    struct mb_buf b;
    mb_buf_init(&b, mem, cap);
    uint64_t v;
    memcpy(&v, nums + 1, 8);
    for (unsigned k = 0; k < 6; k++) {
        switch ((nums[9] >> k) % 6) {
        case 0: mb_buf_str(&b, s); break;
        case 1: mb_buf_u64(&b, v); break;
        case 2: mb_buf_bytes(&b, v); break;
        case 3: mb_buf_ppb(&b, (uint32_t)(v % (MB_PPB + 1))); break;
        case 4: mb_buf_value(&b, s, nums[10] % 80); break;
        default: mb_buf_char(&b, (char)nums[11]); break;
        }
        if (cap && (b.len >= cap || b.data[b.len] != '\0')) fuzz_fail("mb_buf len %zu cap %zu", b.len, cap);
    }
    free(mem);
    /* mb_buf_value: one printable line, at most 4 bytes per input byte + "...". */
    char line[1024];
    mb_buf_init(&b, line, sizeof line);
    size_t max = nums[10] % 200;
    mb_buf_value(&b, s, max);
    if (!b.truncated && b.len > 4 * max + 3) fuzz_fail("mb_buf_value: %zu bytes for max %zu", b.len, max);
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f) fuzz_fail("mb_buf_value: unprintable");
    /* mb_apply_ppb is floor(base * ppb / 10^9). */
    uint32_t ppb = (uint32_t)(v % (MB_PPB + 1));
    uint64_t base;
    memcpy(&base, nums + 12, 8);
    u128 want = (u128)base * ppb / MB_PPB;
    if (mb_apply_ppb(base, ppb) != (uint64_t)want) fuzz_fail("mb_apply_ppb(%llu, %u)", (unsigned long long)base, ppb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    uint8_t nums[24] = {0};
    size_t skip = 1;
    if (sel >= 0xE0) { /* the modes that also take numbers */
        size_t k = size - 1 < sizeof nums ? size - 1 : sizeof nums;
        memcpy(nums, data + 1, k);
        skip += k;
    }
    size_t n = size - skip;
    char *s = malloc(n + 1); /* exactly the string and its NUL */
    memcpy(s, data + skip, n);
    s[n] = '\0';
    if (sel < 0xE0) {
        switch (sel % 12) {
        case 0: check_size(s); break;
        case 1: check_ppb_kind(s, 0); break;
        case 2: check_ppb_kind(s, 1); break;
        case 3: check_duration(s); break;
        case 4: check_uint(s, sel % 3 == 0 ? UINT64_MAX : sel % 3 == 1 ? 4294967295u : 2); break;
        case 5: check_enum(s); break;
        case 6: check_amounts(s); break;
        default: check_option((enum mb_option_id)((sel / 12) % MB_OPT_COUNT), s); break;
        }
    } else if (sel < 0xF0) {
        check_environment(s, nums);
    } else {
        check_buffers(s, nums);
    }
    free(s);
    return 0;
}
