/* The dump writer (see dump.h and docs/dump.md).  JSON goes through one static
 * buffer, flushed with write(2) whenever it runs low, so a dump of any length
 * needs no allocation; a flag keeps two writers (a death and a
 * membudget_dump() call) from sharing the buffer. */
#include "policy/group.h"
#include "policy/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "membudget.h"
#include "policy/config.h"
#include "policy/modules.h"
#include "policy/machine.h"
#include "policy/monitor.h"
#include "policy/pressure.h"
#include "policy/sample.h"
#include "policy/stats_list.h"
#include "policy/utf8.h"

#define DUMP_FORMAT_VERSION 1
#define DUMP_BUFFER_BYTES 65536

static char dump_buffer[DUMP_BUFFER_BYTES];
static _Atomic int dump_busy;
static char path_template[MB_CONFIG_PATH_MAX + 64];
static void (*stats_fn)(struct membudget_stats *out, bool wait);
static _Atomic unsigned reports_written;

static void dump_lock(void) {
    int expected = 0;
    while (!atomic_compare_exchange_weak_explicit(&dump_busy, &expected, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        expected = 0;
        os_yield();
    }
}

static void dump_unlock(void) { atomic_store_explicit(&dump_busy, 0, memory_order_release); }

void mb_dump_init(void (*fill_stats)(struct membudget_stats *out, bool wait)) {
    stats_fn = fill_stats;
    const struct mb_config *cfg = mb_pressure_config();
    struct mb_buf b;
    mb_buf_init(&b, path_template, sizeof path_template);
    if (cfg->report_path[0] != '\0') {
        mb_buf_str(&b, cfg->report_path);
        return;
    }
    const char *tmp = secure_getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > MB_CONFIG_PATH_MAX - 32) tmp = "/tmp";
    mb_buf_str(&b, tmp);
    if (b.len > 0 && b.data[b.len - 1] != '/') mb_buf_char(&b, '/');
    mb_buf_str(&b, "membudget.%p.json");
}

void mb_dump_atfork_child(void) { atomic_store_explicit(&reports_written, 0, memory_order_relaxed); }

int mb_dump_path(char *out, size_t cap, unsigned n) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    for (const char *p = path_template; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            mb_buf_u64(&b, (uint64_t)os_getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            mb_buf_char(&b, '%');
            p++;
        } else {
            mb_buf_char(&b, *p);
        }
    }
    if (n >= 2) {
        static const char suffix[] = ".json";
        size_t s = sizeof suffix - 1;
        bool has_suffix = b.len >= s && memcmp(b.data + b.len - s, suffix, s) == 0;
        if (has_suffix) b.len -= s;
        mb_buf_char(&b, '.');
        mb_buf_u64(&b, n);
        if (has_suffix) mb_buf_str(&b, suffix);
    }
    return !b.truncated;
}

/* ---- the JSON writer ---------------------------------------------------- */

struct writer {
    int fd;
    struct mb_buf b;
    /* 0, or the -errno of the first write that failed: the file holds less
     * than the document (later flushes are dropped). */
    long error;
    bool comma; /* a value precedes: the next member needs a comma */
    int depth;
};

static void w_flush(struct writer *w) {
    if (w->error == 0) w->error = os_write_all(w->fd, w->b.data, w->b.len);
    w->b.len = 0;
    w->b.data[0] = '\0';
}

/* Every write goes through w_mem, which flushes first when the bytes do not
 * fit: mb_buf drops what overflows, and one dropped byte breaks the document,
 * so no helper writes to the buffer on its own.  Numbers and hex are formatted
 * into a small mb_buf of their own and then written here. */
static void w_mem(struct writer *w, const char *s, size_t n) {
    while (n > 0) {
        if (w->b.len + 1 >= w->b.cap) w_flush(w);
        size_t room = w->b.cap - 1 - w->b.len;
        size_t k = n < room ? n : room;
        mb_buf_mem(&w->b, s, k);
        s += k;
        n -= k;
    }
}

static void w_char(struct writer *w, char c) { w_mem(w, &c, 1); }

static void w_raw(struct writer *w, const char *s) { w_mem(w, s, strlen(s)); }

/* A JSON string.  Well-formed UTF-8 is written as it is, so a module in
 * /tmp/dé/ reads back as that path; quotes, backslashes and control
 * characters are escaped; a byte that starts no well-formed sequence becomes
 * U+FFFD, so the document is UTF-8 whatever the input (policy/utf8.h).
 * Returns false when s was not well-formed: the string then does not hold
 * its bytes, and where they matter the caller adds them (w_bytes). */
static bool w_string(struct writer *w, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    bool exact = true;
    w_char(w, '"');
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t len = mb_utf8_seq(p + i, n - i, &c);
        if (len == 0) {
            w_raw(w, "\\ufffd");
            exact = false;
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            w_mem(w, esc, 2);
        } else if (c == '\n') {
            w_raw(w, "\\n");
        } else if (c == '\t') {
            w_raw(w, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', mb_hex_digits[c >> 4], mb_hex_digits[c & 15]};
            w_mem(w, esc, 6);
        } else {
            w_mem(w, (const char *)p + i, len);
        }
        i += len;
    }
    w_char(w, '"');
    return exact;
}

/* n bytes as lowercase hex, quoted: a build-id, or the exact bytes of a
 * string that is not UTF-8 (the "<key>_bytes" member, docs/dump.md). */
static void w_hex_bytes(struct writer *w, const void *p, size_t n) {
    const unsigned char *s = p;
    char text[2 * 16 + 1];
    w_char(w, '"');
    for (size_t i = 0; i < n; i += 16) {
        struct mb_buf t = mb_buf_on(text, sizeof text);
        mb_buf_hex_bytes(&t, s + i, n - i < 16 ? n - i : 16);
        w_mem(w, t.data, t.len);
    }
    w_char(w, '"');
}

static void w_newline(struct writer *w) {
    w_char(w, '\n');
    for (int i = 0; i < w->depth; i++) w_raw(w, "  ");
}

/* Starts a member (key may be NULL inside an array). */
static void w_key(struct writer *w, const char *key) {
    if (w->comma) w_raw(w, ",");
    w_newline(w);
    if (key != NULL) {
        w_string(w, key);
        w_raw(w, ": ");
    }
    w->comma = true;
}

static void w_open(struct writer *w, const char *key, const char *bracket) {
    w_key(w, key);
    w_raw(w, bracket);
    w->depth++;
    w->comma = false;
}

static void w_close(struct writer *w, const char *bracket) {
    w->depth--;
    w_newline(w);
    w_raw(w, bracket);
    w->comma = true;
}

/* Every integer of the dump fits an int64: the report tool's reader (jansson's
 * json_int_t) and most JSON readers refuse a larger one, and with it the whole
 * report.  No figure reaches 2^63 with settings in their bounds
 * (MB_SIZE_SETTING_MAX), but the counter read while a refused charge of
 * exabytes is being undone can; such a number is written as the largest
 * integer they read (docs/dump.md). */
#define DUMP_INT_MAX ((uint64_t)INT64_MAX)

static void w_number(struct writer *w, uint64_t v) {
    char text[24];
    struct mb_buf t = mb_buf_on(text, sizeof text);
    mb_buf_u64(&t, v < DUMP_INT_MAX ? v : DUMP_INT_MAX);
    w_mem(w, t.data, t.len);
}

static void w_u64(struct writer *w, const char *key, uint64_t v) {
    w_key(w, key);
    w_number(w, v);
}

static void w_str(struct writer *w, const char *key, const char *s) {
    w_key(w, key);
    w_string(w, s);
}

static void w_bool(struct writer *w, const char *key, bool v) {
    w_key(w, key);
    w_raw(w, v ? "true" : "false");
}

/* ---- the content ---------------------------------------------------------- */

static const char *reason_name(enum mb_dump_reason reason) {
    static const char *const names[] = {"kill", "fail", "warn", "request"};
    _Static_assert(sizeof names / sizeof *names == MB_DUMP_REQUEST + 1, "a name per reason");
    return (unsigned)reason < sizeof names / sizeof *names ? names[reason] : "?";
}

static void fill_stats(struct membudget_stats *st) {
    memset(st, 0, sizeof *st);
    /* Bounded locking: the dump must finish whoever holds an allocator lock. */
    if (stats_fn != NULL) stats_fn(st, false);
    else alloc_stats(st, false);
    st->baseline_bytes = mb_monitor_baseline();
}

/* struct membudget_stats is written out in include/membudget.h (it is the
 * ABI); the list's api rows are its fields, each a uint64_t, and nothing else
 * is. */
#define API_FIELD(name, page, api, ...)                                                            \
    MB_IF_##api(_Static_assert(sizeof(((struct membudget_stats *)0)->name) == 8,                   \
                               #name " is a uint64_t of struct membudget_stats");)
MB_STATS(API_FIELD, MB_STATS_NONE, MB_STATS_NONE)
_Static_assert(sizeof(struct membudget_stats) == 8 * MB_STATS_API_COUNT,
               "every field of struct membudget_stats is an api row of policy/stats_list.h");

/* The dump's sections from the list (policy/stats_list.h): the thresholds
 * with their sources, and the figures of struct membudget_stats. */
#define DUMP_THRESHOLD(stem, label, zero, page, help)                                              \
    w_u64(w, #stem "_bytes", lim->stem##_bytes);                                                   \
    w_str(w, #stem "_source", lim->stem##_source);
#define DUMP_FIGURE(name, page, api, dump, ...) MB_IF_##dump(w_u64(w, #name, st.name);)

static void write_limit(struct writer *w, const struct mb_limits *lim, const struct mb_config *cfg) {
    w_open(w, "limit", "{");
    MB_STATS(MB_STATS_NONE, DUMP_THRESHOLD, MB_STATS_NONE)
    w_u64(w, "cgroup_version", (uint64_t)lim->cgroup_version);
    w_str(w, "cgroup_dir", lim->cgroup_dir);
    w_str(w, "model", mb_option_value_name(MB_OPT_MODEL, lim->model));
    w_str(w, "state", mb_option_value_name(MB_OPT_STATE, lim->state));
    w_u64(w, "pages", lim->pages);
    w_u64(w, "word_bits", lim->word_bits);
    w_str(w, "action", mb_option_value_name(MB_OPT_ACTION, cfg->action));
    w_close(w, "}");
}

static void write_footprint(struct writer *w, uint64_t footprint) {
    struct membudget_stats st;
    fill_stats(&st);
    struct mb_os_view now, last;
    mb_monitor_read_os(&now);
    mb_monitor_last_view(&last);
    w_open(w, "footprint", "{");
    w_u64(w, "bytes", footprint);
    w_str(w, "source", mb_monitor_source_name());
    MB_STATS(DUMP_FIGURE, MB_STATS_NONE, MB_STATS_NONE)
    w_open(w, "os", "{");
    w_bool(w, "valid", now.valid);
    w_u64(w, "rss_anon_bytes", now.rss_anon_bytes);
    w_u64(w, "vm_swap_bytes", now.vm_swap_bytes);
    w_u64(w, "cgroup_bytes", now.cgroup_bytes);
    w_u64(w, "os_bytes", now.os_bytes);
    w_close(w, "}");
    w_open(w, "baseline_reading", "{");
    w_bool(w, "valid", last.valid);
    w_u64(w, "age_ns", last.time_ns != 0 && now.time_ns > last.time_ns ? now.time_ns - last.time_ns : 0);
    w_u64(w, "rss_anon_bytes", last.rss_anon_bytes);
    w_u64(w, "vm_swap_bytes", last.vm_swap_bytes);
    w_u64(w, "os_bytes", last.os_bytes);
    w_close(w, "}");
    w_close(w, "}");
}

static void write_policy(struct writer *w) {
    static struct mb_event events[MB_EVENT_RING]; /* under dump_busy */
    uint64_t total = 0, start = mb_pressure_start_ns();
    size_t n = mb_pressure_events(events, MB_EVENT_RING, &total);
    w_open(w, "policy", "{");
    w_str(w, "current", mb_policy_name(mb_pressure_policy()));
    w_u64(w, "events_total", total);
    w_u64(w, "events_dropped", total - n);
    w_open(w, "events", "[");
    for (size_t i = 0; i < n; i++) {
        const struct mb_event *e = &events[i];
        w_open(w, NULL, "{");
        w_u64(w, "time_ns", e->time_ns > start ? e->time_ns - start : 0);
        w_str(w, "kind", mb_event_kind_name((enum mb_event_kind)e->kind));
        w_str(w, "from", mb_policy_name((enum mb_policy)e->from));
        w_str(w, "to", mb_policy_name((enum mb_policy)e->to));
        w_u64(w, "footprint_bytes", e->footprint_bytes);
        w_u64(w, "threshold_bytes", e->threshold_bytes);
        w_u64(w, "released_bytes", e->released_bytes);
        w_str(w, "source", mb_outside_source_name((enum mb_outside_source)e->source));
        if (e->source != MB_OUTSIDE_NONE) {
            w_u64(w, "source_value", e->outside_value);
            w_u64(w, "source_bound", e->outside_bound);
        }
        w_close(w, "}");
    }
    w_close(w, "]");
    w_close(w, "}");
}

static void write_class(struct writer *w, uint64_t index, uint64_t block_size,
                        uint64_t live_bytes, uint64_t live_blocks) {
    w_open(w, NULL, "{");
    w_u64(w, "class", index);
    w_u64(w, "block_size", block_size);
    w_u64(w, "live_bytes", live_bytes);
    w_u64(w, "live_blocks", live_blocks);
    w_close(w, "}");
}

static void write_classes(struct writer *w) {
    w_open(w, "size_classes", "[");
    static struct alloc_class_row rows[ALLOC_CLASS_ROWS_MAX]; /* under dump_busy */
    size_t n = alloc_backend.classes(rows, ALLOC_CLASS_ROWS_MAX, false);
    for (size_t i = 0; i < n; i++)
        write_class(w, rows[i].index, rows[i].block_size, rows[i].live_bytes, rows[i].live_blocks);
    w_close(w, "]");
}

/* Which allocator served the process, and the backend's own figures. */
static void write_allocator(struct writer *w) {
    w_open(w, "allocator", "{");
    w_str(w, "backend", alloc_backend.name);
    struct alloc_figure figures[ALLOC_FIGURES_MAX];
    size_t n = alloc_backend.figures(figures, ALLOC_FIGURES_MAX);
    for (size_t i = 0; i < n; i++) {
        if (figures[i].text != NULL)
            w_str(w, figures[i].key, figures[i].text);
        else
            w_u64(w, figures[i].key, figures[i].value);
    }
    w_close(w, "}");
}

static void w_hex(struct writer *w, uint64_t v) {
    char text[24];
    struct mb_buf t = mb_buf_on(text, sizeof text);
    mb_buf_char(&t, '"');
    mb_buf_hex(&t, v);
    mb_buf_char(&t, '"');
    w_mem(w, t.data, t.len);
}

/* A member inside a one-line object: `"key": ` after a comma unless first. */
static void w_inline_key(struct writer *w, const char *key, bool first) {
    if (!first) w_raw(w, ", ");
    w_char(w, '"');
    w_raw(w, key);
    w_raw(w, "\": ");
}

static void w_inline_u64(struct writer *w, const char *key, uint64_t v, bool first) {
    w_inline_key(w, key, first);
    w_number(w, v);
}

/* ---- the footprint timeline ------------------------------------------------- */

static void write_timeline(struct writer *w) {
    static struct mb_tick ticks[MB_TIMELINE_RING]; /* under dump_busy */
    uint64_t total = 0, start = mb_pressure_start_ns();
    size_t n = mb_monitor_timeline(ticks, MB_TIMELINE_RING, &total);
    w_open(w, "timeline", "{");
    w_u64(w, "interval_ns", mb_monitor_interval_ns());
    w_u64(w, "ticks_total", total);
    w_u64(w, "ticks_dropped", total - n);
    w_open(w, "ticks", "[");
    for (size_t i = 0; i < n; i++) {
        const struct mb_tick *t = &ticks[i];
        w_key(w, NULL);
        w_raw(w, "{");
        w_inline_u64(w, "time_ns", t->time_ns > start ? t->time_ns - start : 0, true);
        w_inline_u64(w, "footprint_bytes", t->footprint_bytes, false);
        w_inline_u64(w, "counter_bytes", t->counter_bytes, false);
        w_inline_u64(w, "baseline_bytes", t->baseline_bytes, false);
        w_inline_key(w, "policy", false);
        w_string(w, mb_policy_name((enum mb_policy)t->policy));
        w_raw(w, "}");
    }
    w_close(w, "]");
    w_close(w, "}");
}

/* The group (policy/group.h), when the process is a member: its name and
 * limit, this process's band, and every live member at this moment. */
static void write_group(struct writer *w) {
    static struct mb_group_view view; /* under dump_busy */
    if (!mb_group_snapshot(&view)) return;
    struct mb_group_thresholds t;
    mb_group_thresholds(view.limit_bytes, &t);
    w_open(w, "group", "{");
    w_str(w, "name", mb_group_name());
    w_u64(w, "limit_bytes", view.limit_bytes);
    w_u64(w, "conservative_bytes", t.conservative_bytes);
    w_u64(w, "strict_bytes", t.strict_bytes);
    w_u64(w, "band", mb_group_band());
    w_u64(w, "footprint_bytes", view.sum_bytes);
    w_u64(w, "victim_pid", view.victim_pid);
    w_open(w, "members", "[");
    for (uint32_t i = 0; i < view.count; i++) {
        const struct mb_group_member *m = &view.member[i];
        w_key(w, NULL);
        w_raw(w, "{");
        w_inline_u64(w, "pid", m->pid, true);
        w_inline_u64(w, "band", m->band, false);
        w_inline_u64(w, "footprint_bytes", m->footprint_bytes, false);
        w_inline_u64(w, "released_bytes", m->released_bytes, false);
        w_raw(w, "}");
    }
    w_close(w, "]");
    w_close(w, "}");
}

/* ---- the allocation sites ---------------------------------------------------- */

#define SITE_SLOTS (MB_SAMPLE_OVERFLOW_SITE + 1)
static uint32_t site_order[SITE_SLOTS]; /* under dump_busy */
static uint64_t site_key[SITE_SLOTS];

/* Whether site a is listed after site b: fewer estimated bytes, then index. */
static bool site_after(uint32_t a, uint32_t b) {
    return site_key[a] < site_key[b] || (site_key[a] == site_key[b] && a > b);
}

static void site_sift(size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && site_after(site_order[child + 1], site_order[child])) child++;
        if (!site_after(site_order[child], site_order[root])) return;
        uint32_t t = site_order[root];
        site_order[root] = site_order[child];
        site_order[child] = t;
        root = child;
    }
}

/* The sites with live samples, most estimated bytes first (heap sort: no
 * allocation, n log n for the 16K slots). */
static size_t sites_sorted(void) {
    size_t n = 0;
    for (uint32_t i = 0; i < SITE_SLOTS; i++) {
        struct mb_site_view v;
        if (!mb_sample_site(i, &v) || v.live_samples == 0) continue;
        site_key[i] = v.est_bytes;
        site_order[n++] = i;
    }
    for (size_t i = n / 2; i-- > 0;) site_sift(i, n);
    for (size_t end = n; end > 1; end--) {
        uint32_t t = site_order[0];
        site_order[0] = site_order[end - 1];
        site_order[end - 1] = t;
        site_sift(0, end - 1);
    }
    return n;
}

static void write_sites(struct writer *w) {
    struct mb_sample_stats st;
    mb_sample_stats(&st);
    w_open(w, "sampling", "{");
    w_u64(w, "rate_bytes", st.rate_bytes);
    w_u64(w, "samples", st.samples);
    w_u64(w, "live_samples", st.live_samples);
    w_u64(w, "dropped", st.dropped);
    w_u64(w, "unrecorded", st.unrecorded);
    w_u64(w, "unwind_failures", st.unwind_failures);
    w_u64(w, "sites", st.sites);
    w_u64(w, "sites_capacity", MB_SAMPLE_SITES);
    w_u64(w, "max_frames", MB_SAMPLE_MAX_FRAMES);
    w_close(w, "}");
    size_t n = sites_sorted();
    w_open(w, "sites", "[");
    for (size_t k = 0; k < n; k++) {
        uint32_t i = site_order[k];
        struct mb_site_view v;
        if (!mb_sample_site(i, &v)) continue;
        w_key(w, NULL);
        w_raw(w, "{");
        w_inline_u64(w, "est_bytes", site_key[i], true);
        w_inline_u64(w, "est_objects", (v.est_objects_1024 + 512) / 1024, false);
        w_inline_u64(w, "live_samples", v.live_samples, false);
        w_inline_u64(w, "live_sampled_bytes", v.live_bytes, false);
        w_inline_u64(w, "total_samples", v.total_samples, false);
        if (i == MB_SAMPLE_OVERFLOW_SITE) {
            w_inline_key(w, "unrecorded", false);
            w_raw(w, "true");
        }
        w_inline_key(w, "frames", false);
        w_char(w, '[');
        for (uint32_t f = 0; f < v.depth; f++) {
            if (f > 0) w_raw(w, ", ");
            w_hex(w, v.frames[f]);
        }
        w_raw(w, "]}");
    }
    w_close(w, "]");
}

/* ---- the loaded modules ------------------------------------------------------- */

static void write_module(void *ctx, const struct mb_module *m) {
    struct writer *w = ctx;
    w_key(w, NULL);
    w_raw(w, "{");
    w_inline_key(w, "path", true);
    if (!w_string(w, m->path)) {
        /* A reader opens this file: the exact name, when the string cannot
         * carry it. */
        w_inline_key(w, "path_bytes", false);
        w_hex_bytes(w, m->path, strlen(m->path));
    }
    w_inline_key(w, "base", false);
    w_hex(w, m->bias);
    w_inline_key(w, "start", false);
    w_hex(w, m->start);
    w_inline_key(w, "end", false);
    w_hex(w, m->end);
    w_inline_key(w, "build_id", false);
    w_hex_bytes(w, m->build_id, m->build_id_len);
    w_raw(w, "}");
}

static void write_modules(struct writer *w) {
    w_open(w, "modules", "[");
    mb_modules_each(write_module, w);
    w_close(w, "]");
}

/* With dump_busy held.  Returns 0, or the -errno of a write that failed (the
 * file then holds the document cut short). */
static long write_dump(int fd, enum mb_dump_reason reason, uint64_t footprint) {
    struct writer w = {.fd = fd, .error = 0, .comma = false, .depth = 0};
    mb_buf_init(&w.b, dump_buffer, sizeof dump_buffer);
    const struct mb_config *cfg = mb_pressure_config();
    char comm[64];
    os_read_comm(comm, sizeof comm);
    w_raw(&w, "{");
    w.depth = 1;
    w_u64(&w, "membudget_dump", DUMP_FORMAT_VERSION);
    w_str(&w, "version", MEMBUDGET_VERSION);
    w_str(&w, "reason", reason_name(reason));
    w_u64(&w, "pid", (uint64_t)os_getpid());
    w_str(&w, "comm", comm);
    w_u64(&w, "time_unix_ns", os_realtime_ns());
    uint64_t now = os_now_ns(), start = mb_pressure_start_ns();
    w_u64(&w, "uptime_ns", now > start ? now - start : 0);
    write_limit(&w, mb_pressure_limits(), cfg);
    write_footprint(&w, footprint);
    write_allocator(&w);
    write_policy(&w);
    write_classes(&w);
    write_timeline(&w);
    write_group(&w);
    write_sites(&w);
    write_modules(&w);
    w.depth = 0;
    w_newline(&w);
    w_raw(&w, "}\n");
    w_flush(&w);
    return w.error;
}

static int create_report(const char *path) {
    long fd = os_open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return (int)fd;
}

/* Random names tried once the configured one is taken.  Each is one of 36^8:
 * only a full directory, or someone creating names as fast as we try them,
 * exhausts the tries. */
#define REPORT_NAME_TRIES 16
#define REPORT_SUFFIX_CHARS 8

/* 64 unpredictable bits: getrandom(2) without blocking, else the clocks and
 * the pid mixed (splitmix64), which differ at least between tries. */
static uint64_t report_random(unsigned attempt) {
    uint64_t v = 0;
    if (os_random(&v, sizeof v))
        return v;
    v = os_now_ns() ^ (os_realtime_ns() << 17) ^ ((uint64_t)os_getpid() << 40) ^ attempt;
    v += 0x9e3779b97f4a7c15ull;
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
    return v ^ (v >> 31);
}

/* path with ".XXXXXXXX" (random, [0-9a-z]) before a final ".json", or at the
 * end; false when it does not fit in cap. */
static bool report_alternative(const char *path, char *out, size_t cap, unsigned attempt) {
    static const char suffix[] = ".json", chars[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(path), s = sizeof suffix - 1;
    size_t stem = n >= s && memcmp(path + n - s, suffix, s) == 0 ? n - s : n;
    if (n + 1 + REPORT_SUFFIX_CHARS + 1 > cap) return false;
    char part[1 + REPORT_SUFFIX_CHARS];
    uint64_t v = report_random(attempt);
    part[0] = '.';
    for (int i = 1; i <= REPORT_SUFFIX_CHARS; i++, v /= 36) part[i] = chars[v % 36];
    memcpy(out, path, stem);
    memcpy(out + stem, part, sizeof part);
    memcpy(out + stem + sizeof part, path + stem, n - stem + 1);
    return true;
}

/* Creates a new report file at path (cap bytes), never overwriting or
 * following what is there.  When the name is taken (a file or a link: anyone
 * may create /tmp/membudget.<pid>.json, and pids repeat across containers),
 * tries random alternatives beside it (membudget.<pid>.k3x9q0ab.json), so the
 * dying process still leaves a report; path then holds the name used.
 * Returns the descriptor, or the first name's -errno when none could be had. */
static int create_report_unique(char *path, size_t cap) {
    int fd = create_report(path);
    if (fd != -EEXIST && fd != -ELOOP) return fd;
    /* Static, under dump_busy: the dying thread's stack may be nearly gone. */
    static char alternative[MB_CONFIG_PATH_MAX + 64 + 1 + REPORT_SUFFIX_CHARS];
    for (unsigned attempt = 0; attempt < REPORT_NAME_TRIES; attempt++) {
        if (!report_alternative(path, alternative, sizeof alternative, attempt) ||
            strlen(alternative) >= cap)
            return fd;
        int alt = create_report(alternative);
        if (alt >= 0) {
            memcpy(path, alternative, strlen(alternative) + 1);
            return alt;
        }
        if (alt != -EEXIST && alt != -ELOOP) return fd;
    }
    return fd;
}

int mb_dump_write_path(const char *path, enum mb_dump_reason reason, uint64_t footprint) {
    int fd = create_report(path);
    if (fd < 0) return fd;
    dump_lock();
    long rc = write_dump(fd, reason, footprint);
    dump_unlock();
    os_close(fd);
    return (int)rc;
}

static const char *errno_text(int err) {
    switch (err) {
    case EEXIST: return "a file already exists there";
    case ELOOP: return "it is a symbolic link";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case ENOENT: return "no such directory";
    case ENOTDIR: return "a path component is not a directory";
    case EROFS: return "read-only file system";
    case ENOSPC: return "no space left on device";
    case ENAMETOOLONG: return "path too long";
    default: return "cannot create the file";
    }
}

static void line_head(struct mb_buf *b) {
    char comm[64];
    os_read_comm(comm, sizeof comm);
    mb_buf_str(b, "membudget: pid ");
    mb_buf_u64(b, (uint64_t)os_getpid());
    mb_buf_str(b, " (");
    mb_buf_value(b, comm, 32);
    mb_buf_str(b, ") ");
}

/* Where the kill threshold came from; when ramSize decided it and the cgroup
 * limit decided ramSize, the cgroup file too: in a container that is the
 * number to look at. */
static void kill_origin(struct mb_buf *b, const struct mb_limits *lim) {
    mb_buf_str(b, lim->kill_source);
    if (lim->kill_from_ram && lim->ram_from_cgroup) {
        mb_buf_str(b, "; ramSize from ");
        mb_buf_str(b, lim->cgroup_source);
    }
}

static void summary_line(uint64_t footprint) {
    struct membudget_stats st;
    fill_stats(&st);
    struct mb_os_view now;
    mb_monitor_read_os(&now);
    char line[MB_LINE_MAX];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    mb_buf_str(&b, "membudget: summary: footprint ");
    mb_buf_u64(&b, footprint);
    mb_buf_str(&b, " = counter ");
    mb_buf_u64(&b, st.counter_bytes);
    mb_buf_str(&b, " + baseline ");
    mb_buf_u64(&b, mb_monitor_baseline());
    mb_buf_str(&b, " (small ");
    mb_buf_u64(&b, st.small_bytes);
    mb_buf_str(&b, ", large ");
    mb_buf_u64(&b, st.large_bytes);
    mb_buf_str(&b, ", mmap ");
    mb_buf_u64(&b, st.mmap_bytes);
    mb_buf_str(&b, ", meta ");
    mb_buf_u64(&b, st.meta_bytes);
    mb_buf_str(&b, "); RssAnon ");
    mb_buf_u64(&b, now.rss_anon_bytes);
    mb_buf_str(&b, ", VmSwap ");
    mb_buf_u64(&b, now.vm_swap_bytes);
    mb_buf_str(&b, "; policy ");
    mb_buf_str(&b, mb_policy_name(mb_pressure_policy()));
    mb_buf_str(&b, "; limit ");
    mb_buf_u64(&b, mb_pressure_limits()->kill_bytes);
    mb_buf_str(&b, " (");
    kill_origin(&b, mb_pressure_limits());
    mb_buf_str(&b, ")");
    mb_sink_line(NULL, b.data, b.len);
}

/* The death line's cause when the group's limit chose this process
 * (policy/group.h): the group, its footprint and limit, and the band. */
static void group_origin(struct mb_buf *b, uint64_t footprint) {
    static struct mb_group_view view; /* under dump_busy */
    mb_group_snapshot(&view);
    mb_buf_str(b, "was chosen by its group's memory budget: group ");
    mb_buf_str(b, mb_group_name());
    mb_buf_str(b, " footprint ");
    mb_buf_bytes(b, view.sum_bytes);
    mb_buf_str(b, " >= group limit ");
    mb_buf_bytes(b, view.limit_bytes);
    mb_buf_str(b, " (band ");
    mb_buf_u64(b, mb_group_band());
    mb_buf_str(b, " of ");
    mb_buf_u64(b, view.count);
    mb_buf_str(b, view.count == 1 ? " member" : " members");
    mb_buf_str(b, ", own footprint ");
    mb_buf_bytes(b, footprint);
}

void mb_dump_report(enum mb_dump_reason reason, uint64_t footprint) {
    /* Room for a random part beside the configured name. */
    static char path[MB_CONFIG_PATH_MAX + 64 + 1 + REPORT_SUFFIX_CHARS]; /* under dump_busy */
    dump_lock();
    unsigned n = atomic_fetch_add_explicit(&reports_written, 1, memory_order_relaxed) + 1;
    int fd = mb_dump_path(path, sizeof path, n) ? create_report_unique(path, sizeof path)
                                               : -ENAMETOOLONG;
    const struct mb_limits *lim = mb_pressure_limits();
    char line[MB_LINE_MAX];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    line_head(&b);
    if (mb_group_chosen()) {
        group_origin(&b, footprint);
    } else {
        mb_buf_str(&b, "exceeded its memory budget: footprint ");
        mb_buf_bytes(&b, footprint);
        mb_buf_str(&b, " >= limit ");
        mb_buf_bytes(&b, lim->kill_bytes);
        mb_buf_str(&b, " (");
        kill_origin(&b, lim);
    }
    mb_buf_str(&b, "); report: ");
    if (fd >= 0) {
        mb_buf_str(&b, path);
    } else {
        mb_buf_str(&b, "none (cannot create ");
        mb_buf_str(&b, path);
        mb_buf_str(&b, ": ");
        mb_buf_str(&b, errno_text(-fd));
        mb_buf_str(&b, "; summary follows)");
    }
    mb_sink_line(NULL, b.data, b.len);
    /* A report cut short (a full disk) loses its figures: the summary keeps
     * them on stderr. */
    long written = fd >= 0 ? write_dump(fd, reason, footprint) : fd;
    if (fd >= 0) os_close(fd);
    if (written != 0) summary_line(footprint);
    dump_unlock();
}

void mb_dump_critical_line(uint64_t footprint, uint64_t threshold_bytes) {
    char line[512];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    line_head(&b);
    mb_buf_str(&b, "critical memory usage: footprint ");
    mb_buf_bytes(&b, footprint);
    mb_buf_str(&b, " >= ");
    mb_buf_bytes(&b, threshold_bytes);
    mb_buf_str(&b, " (strict-synchronous threshold); releasing memory");
    mb_sink_line(NULL, b.data, b.len);
}

int mb_dump_request(char *path, size_t cap) {
    /* Room for a random part beside the configured name (under dump_busy). */
    static char name[MB_CONFIG_PATH_MAX + 64 + 1 + REPORT_SUFFIX_CHARS];
    dump_lock();
    unsigned n = atomic_fetch_add_explicit(&reports_written, 1, memory_order_relaxed) + 1;
    int fd = mb_dump_path(name, sizeof name, n) ? create_report_unique(name, sizeof name)
                                               : -ENAMETOOLONG;
    long rc = fd;
    if (fd >= 0) {
        rc = write_dump(fd, MB_DUMP_REQUEST, mb_monitor_footprint());
        os_close(fd);
    }
    struct mb_buf b;
    mb_buf_init(&b, path, cap);
    mb_buf_str(&b, name);
    dump_unlock();
    return (int)rc;
}
