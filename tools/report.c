/* membudget report (see report.h): loads a dump into struct rp_report, has it
 * symbolized, and writes one of the outputs: the text summary (one screen:
 * the death line, the limit and where it came from, the footprint breakdown,
 * the policy history, the top sites), folded stacks, or normalized JSON.
 * Everything printed depends only on the dump and the module files, so the
 * same dump gives the same bytes (the golden tests rely on it). */
#include "tools/report.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/utf8.h"
#include "tools/report_diff.h"
#include "tools/report_model.h"
#include "tools/textout.h"

#define DEFAULT_SITES 10
#define DEFAULT_FRAMES 3
#define TEXT_EVENTS_MAX 8

static const char usage_text[] =
    "usage: membudget report DUMP [--svg FILE] [--html FILE] [--folded | --json] [OPTIONS]\n"
    "       membudget report --diff OLD NEW [--folded | --json] [OPTIONS]\n"
    "\n"
    "Summarizes a report written by a process that exceeded its memory budget (or\n"
    "by membudget_dump()): the death line, how the limit was derived, the footprint\n"
    "breakdown, the policy history and the top allocation sites, symbolized from\n"
    "the module files the report names.\n"
    "\n"
    "  --svg FILE     also write the footprint timeline, with the thresholds and the\n"
    "                 policy changes, as an SVG picture\n"
    "  --html FILE    also write one self-contained page (no network): a zoomable,\n"
    "                 searchable icicle graph of the live bytes by stack, the\n"
    "                 timeline, the limit's derivation and the allocator section\n"
    "  --folded       print folded stacks (\"frame;frame;frame bytes\", outermost\n"
    "                 frame first) for flamegraph.pl or speedscope, instead of the text\n"
    "  --json         print the report normalized and symbolized, instead of the text\n"
    "  --diff OLD     compare report OLD with the report NEW given as the argument:\n"
    "                 the sites whose estimated live bytes grew most first; with\n"
    "                 --folded, \"stack old new\" lines (a differential flame graph),\n"
    "                 with --json, the sites with both figures and their frames\n"
    "  --sites N      sites in the text (default 10; 0: all)\n"
    "  --frames N     frames per site in the text (default 3; 0: all)\n"
    "  --no-symbols   do not read the module files: frames as module+offset\n"
    "  -h, --help     this text\n";

static const char *prog = "membudget report";

/* ---- small helpers ------------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

static void *xrealloc(void *p, size_t size) {
    p = realloc(p, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

static uint64_t add_saturated(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The loader (check_numbers) leaves only integers and reals from 0 to
 * 2^63 - 1. */
uint64_t rp_u64(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) > 0) return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 0x1p63)
        return (uint64_t)json_real_value(v);
    return 0;
}

const char *rp_str(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

uint64_t rp_address(const json_t *value) {
    if (json_is_integer(value)) return (uint64_t)json_integer_value(value);
    const char *s = json_string_value(value);
    return s != NULL ? strtoull(s, NULL, 0) : 0;
}

static json_t *object_or_empty(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    if (json_is_object(v)) return v;
    v = json_object();
    json_object_set_new(root, key, v); /* the root owns it */
    return v;
}

const char *rp_bytes(uint64_t bytes) {
    static char ring[16][32];
    static unsigned next;
    char *buf = ring[next++ % 16];
    return mb_bytes_text(buf, sizeof ring[0], bytes);
}

/* Text from the dump or a module file, as the terminal may show it
 * (tools/textout.h): a ring of buffers, like B. */
static const char *T(const char *s) {
    static char *ring[16];
    static unsigned next;
    char **slot = &ring[next++ % 16];
    size_t cap = 4 * strlen(s) + 1; /* each byte at most \xNN */
    *slot = xrealloc(*slot, cap);
    tx_term_buf(*slot, cap, s, SIZE_MAX);
    return *slot;
}

static const char *seconds(uint64_t ns) {
    static char ring[8][32];
    static unsigned next;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%" PRIu64 ".%03" PRIu64 " s", ns / 1000000000u,
             ns / 1000000u % 1000u);
    return buf;
}

/* ---- reading the file ----------------------------------------------------------- */

static void note(struct rp_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct rp_report *r, const char *fmt, ...) {
    if (r->note_count++ >= RP_NOTES_MAX) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    r->notes[r->note_count - 1] = strdup(buf);
    if (r->notes[r->note_count - 1] == NULL) r->note_count--;
}

static void refuse(const char *path, const char *why) {
    fprintf(stderr, "%s: %s: %s\n", prog, T(path), why);
}

/* The whole file, NUL-terminated, when it is a regular file of at most
 * RP_DUMP_MAX_BYTES: a dump names another user's process, and its path may be
 * a FIFO (opening or reading it would block), a device (endless) or a link. */
static char *read_dump(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        refuse(path, errno == ELOOP ? "a symbolic link: not followed" : strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        refuse(path, "not a regular file");
        close(fd);
        return NULL;
    }
    char too_big[96];
    snprintf(too_big, sizeof too_big, "larger than %s, the most a report can be",
             rp_bytes(RP_DUMP_MAX_BYTES));
    if ((uint64_t)st.st_size > RP_DUMP_MAX_BYTES) {
        refuse(path, too_big);
        close(fd);
        return NULL;
    }
    /* The file may grow while it is read: never more than the limit. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = xcalloc(cap + 1, 1);
    for (;;) {
        if (n == cap) {
            if (cap > RP_DUMP_MAX_BYTES) break;
            cap = cap * 2 > RP_DUMP_MAX_BYTES + 1 ? RP_DUMP_MAX_BYTES + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            refuse(path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (n > RP_DUMP_MAX_BYTES) {
        refuse(path, too_big);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* jansson refuses a whole document for one integer outside 64-bit signed
 * ("too big integer") or one real beyond a double: such a number is
 * rewritten in place, in no more characters, as a real of about the same
 * value (1e300 past a double), so that the document is read and
 * check_numbers sets the field aside with a note.  Strings are skipped;
 * anything else is left for jansson to judge. */
static void guard_numbers(char *buf, size_t len) {
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) continue;
        size_t start = i, end = i;
        bool integer = true;
        while (end < len && (strchr("0123456789+-.eE", buf[end]) != NULL && buf[end] != '\0')) {
            if (buf[end] == '.' || buf[end] == 'e' || buf[end] == 'E') integer = false;
            end++;
        }
        i = end - 1;
        bool negative = buf[start] == '-';
        size_t digits_at = start + negative, digits = end - digits_at;
        char *token = buf + start;
        size_t token_len = end - start;
        if (integer) {
            bool all_digits = digits > 0;
            for (size_t k = digits_at; k < end; k++)
                if (buf[k] < '0' || buf[k] > '9') all_digits = false;
            if (!all_digits || digits < 19) continue;
            const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
            if (digits == 19 && memcmp(buf + digits_at, limit, 19) <= 0) continue;
            /* 17 digits and an exponent fit in the 19 or more it had. */
            char real[32];
            int n = digits > 300 ? snprintf(real, sizeof real, "%s1e300", negative ? "-" : "")
                                 : snprintf(real, sizeof real, "%s%.17se%zu", negative ? "-" : "",
                                            buf + digits_at, digits - 17);
            memset(token, ' ', token_len);
            memcpy(token, real, (size_t)n);
            continue;
        }
        char small[64], *copy = token_len < sizeof small ? small : malloc(token_len + 1);
        if (copy == NULL) continue;
        memcpy(copy, token, token_len);
        copy[token_len] = '\0';
        char *stop;
        errno = 0;
        double v = strtod(copy, &stop);
        bool overflow = errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL) && *stop == '\0';
        if (copy != small) free(copy);
        /* An overflowing real has at least five characters ("1e309"). */
        if (overflow && token_len >= (size_t)(5 + negative)) {
            memset(token, ' ', token_len);
            memcpy(token, negative ? "-1e300" : "1e300", 5 + negative);
        }
    }
}

/* Every number of the dump is a count of bytes, objects or nanoseconds, or a
 * small code: 0 to 2^63 - 1.  One outside (negative, or beyond) is set aside
 * as absent (null) with a note naming it, instead of wrapping into a huge or
 * negative figure that every later sum and scale would carry. */
static void check_numbers(struct rp_report *r, json_t *v, char *where, size_t len, size_t cap);

static bool bad_number(const json_t *v) {
    if (json_is_integer(v)) return json_integer_value(v) < 0;
    if (json_is_real(v)) return !(json_real_value(v) >= 0 && json_real_value(v) < 0x1p63);
    return false;
}

static void note_number(struct rp_report *r, const json_t *v, const char *where) {
    if (json_is_integer(v))
        note(r, "%s: %" JSON_INTEGER_FORMAT " is out of range (0 to 2^63-1): read as absent",
             where, json_integer_value(v));
    else
        note(r, "%s: %.17g is out of range (0 to 2^63-1): read as absent", where,
             json_real_value(v));
}

static void check_member(struct rp_report *r, json_t *v, char *where, size_t len, size_t cap,
                         const char *fmt, const char *key, size_t index) {
    int n = key != NULL ? snprintf(where + len, cap - len, fmt, key)
                        : snprintf(where + len, cap - len, fmt, index);
    size_t next = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
    check_numbers(r, v, where, next, cap);
    where[len] = '\0';
}

static void check_numbers(struct rp_report *r, json_t *v, char *where, size_t len, size_t cap) {
    if (json_is_object(v)) {
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
            json_t *member = json_object_iter_value(it);
            const char *key = json_object_iter_key(it);
            if (bad_number(member)) {
                snprintf(where + len, cap - len, "%s%s", len ? "." : "", key);
                note_number(r, member, where);
                where[len] = '\0';
                json_object_iter_set_new(v, it, json_null());
            } else {
                check_member(r, member, where, len, cap, len ? ".%s" : "%s", key, 0);
            }
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *member = json_array_get(v, i);
            if (bad_number(member)) {
                snprintf(where + len, cap - len, "[%zu]", i);
                note_number(r, member, where);
                where[len] = '\0';
                json_array_set_new(v, i, json_null());
            } else {
                check_member(r, member, where, len, cap, "[%zu]", NULL, i);
            }
        }
    }
}

/* ---- loading -------------------------------------------------------------------- */

static void load_events(struct rp_report *r) {
    json_t *events = json_object_get(r->policy, "events");
    r->event_count = json_array_size(events);
    r->events = xcalloc(r->event_count, sizeof *r->events);
    for (size_t i = 0; i < r->event_count; i++) {
        json_t *e = json_array_get(events, i);
        r->events[i] = (struct rp_event){
            .time_ns = rp_u64(e, "time_ns"),
            .footprint_bytes = rp_u64(e, "footprint_bytes"),
            .threshold_bytes = rp_u64(e, "threshold_bytes"),
            .released_bytes = rp_u64(e, "released_bytes"),
            .kind = rp_str(e, "kind"),
            .from = rp_str(e, "from"),
            .to = rp_str(e, "to"),
        };
    }
}

static void load_ticks(struct rp_report *r) {
    json_t *ticks = json_object_get(json_object_get(r->root, "timeline"), "ticks");
    r->tick_count = json_array_size(ticks);
    r->ticks = xcalloc(r->tick_count, sizeof *r->ticks);
    for (size_t i = 0; i < r->tick_count; i++) {
        json_t *t = json_array_get(ticks, i);
        r->ticks[i] = (struct rp_tick){
            .time_ns = rp_u64(t, "time_ns"),
            .footprint_bytes = rp_u64(t, "footprint_bytes"),
            .counter_bytes = rp_u64(t, "counter_bytes"),
            .baseline_bytes = rp_u64(t, "baseline_bytes"),
            .policy = rp_str(t, "policy"),
        };
    }
}

/* The path to open: "path_bytes" (the exact bytes, in hex, of a path that is
 * not UTF-8; "path" then only shows it) when there is one, else "path".  NULL
 * when neither can name a file: malformed hex, a NUL inside, too long. */
static const char *module_open_path(struct rp_report *r, const json_t *m, size_t index,
                                    bool *owned) {
    *owned = false;
    const json_t *path = json_object_get(m, "path");
    const json_t *hex = json_object_get(m, "path_bytes");
    if (hex != NULL) {
        const char *h = json_string_value(hex);
        size_t n = h != NULL ? json_string_length(hex) : 0;
        char *out = h != NULL && strlen(h) == n && n / 2 < RP_PATH_MAX ? malloc(n / 2 + 1) : NULL;
        if (out == NULL || !tx_unhex(h, out, n / 2 + 1)) {
            free(out);
            note(r, "modules[%zu].path_bytes: not the hex of a path: the module is not read",
                 index);
            return NULL;
        }
        *owned = true;
        return out;
    }
    const char *s = json_string_value(path);
    if (s == NULL) return "";
    if (strlen(s) != json_string_length(path) || strlen(s) >= RP_PATH_MAX) {
        note(r, "modules[%zu].path: not a path (a NUL inside, or longer than %d bytes): "
                "the module is not read", index, RP_PATH_MAX - 1);
        return NULL;
    }
    return s;
}

static void load_modules(struct rp_report *r) {
    json_t *modules = json_object_get(r->root, "modules");
    size_t count = json_array_size(modules);
    r->modules = xcalloc(count, sizeof *r->modules);
    for (size_t i = 0; i < count; i++) {
        json_t *m = json_array_get(modules, i);
        struct rp_module *mod = &r->modules[r->module_count];
        bool owned;
        const char *open_path = module_open_path(r, m, i, &owned);
        if (open_path == NULL) continue;
        mod->path = rp_str(m, "path");
        if (strlen(mod->path) >= RP_PATH_MAX) mod->path = "(path too long)";
        mod->open_path = owned ? open_path : NULL;
        const char *slash = strrchr(mod->path, '/');
        mod->name = slash != NULL ? slash + 1 : mod->path;
        mod->base = rp_address(json_object_get(m, "base"));
        mod->start = rp_address(json_object_get(m, "start"));
        mod->end = rp_address(json_object_get(m, "end"));
        mod->build_id = rp_str(m, "build_id");
        r->module_count++;
    }
}

/* Modules by start address, for module_of: the one whose range holds the
 * address (with overlapping ranges, which only a hand-made dump has, the one
 * that starts last at or before it). */
static int module_start_compare(const void *a, const void *b) {
    const struct rp_module *x = *(const struct rp_module *const *)a,
                           *y = *(const struct rp_module *const *)b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x < y ? -1 : x > y;
}

static const struct rp_module *module_of(const struct rp_module *const *by_start, size_t n,
                                         uint64_t address) {
    size_t lo = 0, hi = n; /* the first module starting after address: lo */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (by_start[mid]->start <= address)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return NULL;
    const struct rp_module *m = by_start[lo - 1];
    return address < m->end ? m : NULL;
}

/* Sites as the dump lists them (most estimated bytes first), sorted again so a
 * hand-edited or merged dump reads the same way; equal estimates keep their
 * order. */
static int site_compare(const void *a, const void *b) {
    const struct rp_site *x = a, *y = b;
    if (x->est_bytes != y->est_bytes) return x->est_bytes < y->est_bytes ? 1 : -1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void load_sites(struct rp_report *r) {
    const struct rp_module **by_start = xcalloc(r->module_count, sizeof *by_start);
    size_t placed = 0;
    for (size_t i = 0; i < r->module_count; i++)
        if (r->modules[i].start < r->modules[i].end) by_start[placed++] = &r->modules[i];
    qsort(by_start, placed, sizeof *by_start, module_start_compare);

    r->max_frames = (size_t)rp_u64(r->sampling, "max_frames");
    json_t *sites = json_object_get(r->root, "sites");
    r->site_count = json_array_size(sites);
    r->sites = xcalloc(r->site_count, sizeof *r->sites);
    for (size_t i = 0; i < r->site_count; i++) {
        json_t *s = json_array_get(sites, i);
        struct rp_site *site = &r->sites[i];
        site->order = i;
        site->est_bytes = rp_u64(s, "est_bytes");
        site->est_objects = rp_u64(s, "est_objects");
        site->live_samples = rp_u64(s, "live_samples");
        site->live_sampled_bytes = rp_u64(s, "live_sampled_bytes");
        site->total_samples = rp_u64(s, "total_samples");
        site->unrecorded = json_is_true(json_object_get(s, "unrecorded"));
        json_t *frames = json_object_get(s, "frames");
        site->frame_count = json_array_size(frames);
        if (site->frame_count > RP_FRAMES_MAX) {
            note(r, "sites[%zu].frames: %zu frames, the innermost %d read", i, site->frame_count,
                 RP_FRAMES_MAX);
            site->frame_count = RP_FRAMES_MAX;
        }
        site->truncated = r->max_frames > 0 && site->frame_count >= r->max_frames;
        site->frames = xcalloc(site->frame_count, sizeof *site->frames);
        for (size_t f = 0; f < site->frame_count; f++) {
            struct rp_frame *frame = &site->frames[f];
            frame->address = rp_address(json_array_get(frames, f));
            frame->module = module_of(by_start, placed, frame->address);
        }
        r->sites_est_bytes = add_saturated(r->sites_est_bytes, site->est_bytes);
    }
    qsort(r->sites, r->site_count, sizeof *r->sites, site_compare);
    free(by_start);
}

/* The figures and thresholds of the list (policy/stats_list.h). */
#define LOAD_FIGURE(name, page, api, dump, ...) MB_IF_##dump(r->name = rp_u64(r->footprint, #name);)
#define LOAD_THRESHOLD(stem, label, zero, page, help)                                              \
    r->stem##_bytes = rp_u64(r->limit, #stem "_bytes");                                            \
    r->stem##_source = rp_str(r->limit, #stem "_source");

bool rp_load(struct rp_report *r, char *text, size_t len, const char *path) {
    json_error_t error;
    r->path = path;
    guard_numbers(text, len);
    r->root = json_loadb(text, len, JSON_ALLOW_NUL, &error);
    if (r->root == NULL) {
        if (error.line > 0)
            fprintf(stderr, "%s: %s: line %d: %s\n", prog, T(path), error.line, T(error.text));
        else
            fprintf(stderr, "%s: %s: %s\n", prog, T(path), T(error.text));
        return false;
    }
    if (!json_is_object(r->root) || !json_is_integer(json_object_get(r->root, "membudget_dump"))) {
        fprintf(stderr, "%s: %s: not a membudget report (no \"membudget_dump\" field)\n", prog,
                T(path));
        json_decref(r->root);
        r->root = NULL;
        return false;
    }
    char where[256] = "";
    check_numbers(r, r->root, where, 0, sizeof where);
    r->reason = rp_str(r->root, "reason");
    r->comm = rp_str(r->root, "comm");
    r->version = rp_str(r->root, "version");
    r->pid = rp_u64(r->root, "pid");
    r->uptime_ns = rp_u64(r->root, "uptime_ns");
    r->time_unix_ns = rp_u64(r->root, "time_unix_ns");
    r->limit = object_or_empty(r->root, "limit");
    r->footprint = object_or_empty(r->root, "footprint");
    r->policy = object_or_empty(r->root, "policy");
    r->sampling = object_or_empty(r->root, "sampling");
    MB_STATS(LOAD_FIGURE, LOAD_THRESHOLD, MB_STATS_NONE)
    r->footprint_bytes = rp_u64(r->footprint, "bytes");
    load_events(r);
    load_ticks(r);
    load_modules(r);
    load_sites(r);
    return true;
}

bool rp_load_file(struct rp_report *r, const char *path) {
    size_t len;
    char *text = read_dump(path, &len);
    if (text == NULL) return false;
    bool ok = rp_load(r, text, len, path);
    free(text);
    return ok;
}

void rp_free(struct rp_report *r) {
    for (size_t i = 0; i < r->site_count; i++) {
        for (size_t f = 0; f < r->sites[i].frame_count; f++) {
            free(r->sites[i].frames[f].function);
            free(r->sites[i].frames[f].file);
            free(r->sites[i].frames[f].mangled);
        }
        free(r->sites[i].frames);
    }
    free(r->sites);
    for (size_t i = 0; i < r->module_count; i++) free((char *)r->modules[i].open_path);
    free(r->modules);
    for (size_t i = 0; i < r->note_count && i < RP_NOTES_MAX; i++) free(r->notes[i]);
    free(r->ticks);
    free(r->events);
    json_decref(r->root);
    *r = (struct rp_report){0};
}

/* ---- frames as text --------------------------------------------------------------- */

/* "function", else "module+0xoffset", else "0xaddress". */
void rp_frame_name(const struct rp_frame *f, char *buf, size_t cap) {
    if (f->function != NULL)
        snprintf(buf, cap, "%s", f->function);
    else if (f->module != NULL)
        snprintf(buf, cap, "%s+0x%" PRIx64, f->module->name, f->address - f->module->base);
    else
        snprintf(buf, cap, "0x%" PRIx64, f->address);
}

static void frame_where(const struct rp_frame *f, char *buf, size_t cap) {
    buf[0] = '\0';
    if (f->file != NULL)
        snprintf(buf, cap, "%s:%d", f->file, f->line);
    else if (f->function != NULL && f->module != NULL)
        snprintf(buf, cap, "%s+0x%" PRIx64, f->module->name, f->address - f->module->base);
}

/* The frame that ends a stack the writer cut (struct rp_site.truncated). */
const char *rp_truncation_mark(const struct rp_report *r) {
    static char buf[64];
    snprintf(buf, sizeof buf, "[stack cut at %zu frames]", r->max_frames);
    return buf;
}

/* ---- the text summary --------------------------------------------------------------- */

static const char *reason_words(const char *reason) {
    if (strcmp(reason, "kill") == 0) return "the process was stopped (MEMBUDGET_ACTION=abort)";
    if (strcmp(reason, "fail") == 0)
        return "the allocation that crossed was refused (MEMBUDGET_ACTION=fail)";
    if (strcmp(reason, "warn") == 0) return "the process went on (MEMBUDGET_ACTION=warn)";
    if (strcmp(reason, "request") == 0) return "written by membudget_dump()";
    return "written for an unknown reason";
}

static void print_header(const struct rp_report *r) {
    const char *source = r->kill_source;
    if (strcmp(r->reason, "request") == 0) {
        printf("membudget: pid %" PRIu64 " (%s) report: footprint %s, limit %s (%s)\n", r->pid,
               T(r->comm), rp_bytes(r->footprint_bytes), rp_bytes(r->kill_bytes), T(source));
    } else if (json_is_object(json_object_get(r->root, "group")) &&
               rp_u64(json_object_get(r->root, "group"), "victim_pid") == r->pid) {
        const json_t *g = json_object_get(r->root, "group");
        printf("membudget: pid %" PRIu64 " (%s) was chosen by its group's memory budget: group "
               "%s footprint %s >= group limit %s (band %" PRIu64 ", own footprint %s)\n",
               r->pid, T(r->comm), T(rp_str(g, "name")), rp_bytes(rp_u64(g, "footprint_bytes")),
               rp_bytes(rp_u64(g, "limit_bytes")), rp_u64(g, "band"),
               rp_bytes(r->footprint_bytes));
    } else {
        printf("membudget: pid %" PRIu64
               " (%s) exceeded its memory budget: footprint %s >= limit %s (%s)\n",
               r->pid, T(r->comm), rp_bytes(r->footprint_bytes), rp_bytes(r->kill_bytes), T(source));
    }
    char when[64] = "";
    time_t t = (time_t)(r->time_unix_ns / 1000000000u);
    struct tm tm;
    if (r->time_unix_ns != 0 && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, " at %Y-%m-%d %H:%M:%S UTC", &tm);
    printf("  %s after %s%s; membudget %s\n", reason_words(r->reason), seconds(r->uptime_ns), when,
           T(r->version));
    for (size_t i = 0; i < r->note_count && i < RP_NOTES_MAX; i++)
        printf("  note: %s\n", T(r->notes[i]));
    if (r->note_count > RP_NOTES_MAX)
        printf("  note: %zu more not shown\n", r->note_count - RP_NOTES_MAX);
}

/* The group section (policy/group.h), when the process was a member: one
 * line for the group, one for its members (at most 64, each checked). */
static void print_group(const struct rp_report *r) {
    const json_t *g = json_object_get(r->root, "group");
    if (!json_is_object(g)) return;
    printf("  group %s: footprint %s, limit %s; band %" PRIu64 ", victim pid %" PRIu64 "\n",
           T(rp_str(g, "name")), rp_bytes(rp_u64(g, "footprint_bytes")),
           rp_bytes(rp_u64(g, "limit_bytes")), rp_u64(g, "band"), rp_u64(g, "victim_pid"));
    const json_t *members = json_object_get(g, "members");
    size_t n = json_is_array(members) ? json_array_size(members) : 0;
    if (n == 0) return;
    printf("  members (pid band footprint):");
    for (size_t i = 0; i < n && i < 64; i++) {
        const json_t *m = json_array_get(members, i);
        printf(" %" PRIu64 " %" PRIu64 " %s%s", rp_u64(m, "pid"), rp_u64(m, "band"),
               rp_bytes(rp_u64(m, "footprint_bytes")), i + 1 < n && i + 1 < 64 ? ";" : "");
    }
    printf("\n");
}

static void print_limit(const struct rp_report *r) {
    printf("\nLimit %s: %s\n", rp_bytes(r->kill_bytes), T(r->kill_source));
    printf("  conservative %s: %s\n", rp_bytes(r->conservative_bytes), T(r->conservative_source));
    printf("  strict       %s: %s\n", rp_bytes(r->strict_bytes), T(r->strict_source));
    printf("  strict-sync  %s: %s\n", rp_bytes(r->strict_sync_bytes), T(r->strict_sync_source));
    printf("  ramSize      %s: %s\n", rp_bytes(r->ram_bytes), T(r->ram_source));
}

static void print_footprint(const struct rp_report *r) {
    const json_t *f = r->footprint;
    const json_t *os = json_object_get(f, "os");
    printf("\nFootprint %s = counter %s + baseline %s (%s)\n", rp_bytes(r->footprint_bytes),
           rp_bytes(r->counter_bytes), rp_bytes(r->baseline_bytes), T(rp_str(f, "source")));
    printf("  small pages %s (%s in live blocks), large spans %s (%s cached),\n", rp_bytes(r->small_bytes),
           rp_bytes(r->small_live_bytes), rp_bytes(r->large_bytes), rp_bytes(r->large_cached_bytes));
    printf("  application mmap %s, metadata %s; peak counter %s\n", rp_bytes(r->mmap_bytes),
           rp_bytes(r->meta_bytes), rp_bytes(r->counter_peak_bytes));
    printf("  OS view: RssAnon %s + VmSwap %s", rp_bytes(rp_u64(os, "rss_anon_bytes")),
           rp_bytes(rp_u64(os, "vm_swap_bytes")));
    if (rp_u64(os, "cgroup_bytes") != 0) printf(", cgroup %s", rp_bytes(rp_u64(os, "cgroup_bytes")));
    printf("\n");
}

static void print_policy(const struct rp_report *r) {
    uint64_t total = rp_u64(r->policy, "events_total");
    printf("\nPolicy %s; %" PRIu64 " event%s\n", T(rp_str(r->policy, "current")), total,
           total == 1 ? "" : "s");
    size_t first = r->event_count > TEXT_EVENTS_MAX ? r->event_count - TEXT_EVENTS_MAX : 0;
    uint64_t hidden = total > r->event_count ? total - r->event_count : 0;
    hidden += first;
    if (hidden) printf("  (%" PRIu64 " earlier not shown)\n", hidden);
    for (size_t i = first; i < r->event_count; i++) {
        const struct rp_event *e = &r->events[i];
        printf("  %10s  ", seconds(e->time_ns));
        if (strcmp(e->kind, "policy") == 0)
            printf("%s -> %s", T(e->from), T(e->to));
        else
            printf("%s", T(e->kind));
        printf(" at %s", rp_bytes(e->footprint_bytes));
        if (e->threshold_bytes) printf(" (threshold %s)", rp_bytes(e->threshold_bytes));
        printf(", released %s\n", rp_bytes(e->released_bytes));
    }
}

static void print_sites(const struct rp_report *r, size_t max_sites, size_t max_frames) {
    uint64_t rate = rp_u64(r->sampling, "rate_bytes");
    if (json_object_get(r->root, "sampling") == NULL || json_object_size(r->sampling) == 0) {
        printf("\nNo allocation sites: this report has no sampling section\n");
        return;
    }
    if (rate == 0) {
        printf("\nNo allocation sites: sampling was off (MEMBUDGET_SAMPLE=0)\n");
        return;
    }
    printf("\nTop allocation sites by estimated live bytes (%" PRIu64
           " live samples, 1 per %s on average)\n",
           rp_u64(r->sampling, "live_samples"), rp_bytes(rate));
    uint64_t dropped = rp_u64(r->sampling, "dropped"),
             unrecorded = rp_u64(r->sampling, "unrecorded");
    if (dropped)
        printf("  (%" PRIu64 " sample%s not kept: the table of live samples was full)\n", dropped,
               dropped == 1 ? "" : "s");
    if (unrecorded)
        printf("  (%" PRIu64 " sample%s kept without their stack)\n", unrecorded,
               unrecorded == 1 ? "" : "s");
    if (r->site_count == 0) printf("  none: no sampled allocation was live\n");
    size_t n = max_sites && max_sites < r->site_count ? max_sites : r->site_count;
    for (size_t i = 0; i < n; i++) {
        const struct rp_site *s = &r->sites[i];
        double share =
            r->sites_est_bytes ? 100.0 * (double)s->est_bytes / (double)r->sites_est_bytes : 0;
        printf("  #%-2zu %9s %5.1f%%  ~%" PRIu64 " object%s, %" PRIu64 " sample%s%s\n", i + 1,
               rp_bytes(s->est_bytes), share, s->est_objects, s->est_objects == 1 ? "" : "s",
               s->live_samples, s->live_samples == 1 ? "" : "s",
               s->unrecorded ? " (stacks not recorded)" : "");
        size_t frames = max_frames && max_frames < s->frame_count ? max_frames : s->frame_count;
        for (size_t f = 0; f < frames; f++) {
            char name[512], where[1024];
            rp_frame_name(&s->frames[f], name, sizeof name);
            frame_where(&s->frames[f], where, sizeof where);
            printf("       %s%s%s%s\n", T(name), s->frames[f].inlined ? " (inlined)" : "",
                   where[0] ? "  " : "", T(where));
        }
        if (frames < s->frame_count)
            printf("       ... %zu more%s\n", s->frame_count - frames,
                   s->truncated ? ", then the stack was cut" : "");
        else if (s->truncated)
            printf("       %s\n", rp_truncation_mark(r));
    }
    if (n < r->site_count) printf("  ... %zu more sites\n", r->site_count - n);
}

static void print_symbols(const struct rp_report *r) {
    /* The modules not read, by why, in this order. */
    static const struct {
        enum rp_module_state state;
        const char *words;
    } groups[] = {
        {RP_MODULE_MISMATCH, "rebuilt since (build-id differs)"},
        {RP_MODULE_MISSING, "not found"},
        {RP_MODULE_IRREGULAR, "not a regular file, not opened"},
        {RP_MODULE_TOO_LARGE, "larger than 4 GiB, not read"},
    };
    size_t count[RP_MODULE_TOO_LARGE + 1] = {0}, files = 0;
    for (size_t i = 0; i < r->module_count; i++) {
        if (r->modules[i].path[0] != '/') continue; /* the vDSO has no file */
        files++;
        count[r->modules[i].state]++;
    }
    if (files == 0 || count[RP_MODULE_UNREAD] == files) return;
    printf("\nSymbols: %zu of %zu module files read", count[RP_MODULE_READ], files);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (count[groups[g].state] == 0) continue;
        printf("; %s:", groups[g].words);
        for (size_t i = 0; i < r->module_count; i++) {
            const struct rp_module *m = &r->modules[i];
            if (m->state == groups[g].state && m->path[0] == '/') printf(" %s", T(m->path));
        }
    }
    printf("\n");
}

void rp_print_text(const struct rp_report *r, size_t max_sites, size_t max_frames) {
    print_header(r);
    print_group(r);
    print_limit(r);
    print_footprint(r);
    print_policy(r);
    print_sites(r, max_sites, max_frames);
    print_symbols(r);
}

/* ---- folded stacks ---------------------------------------------------------------- */

/* One line per distinct stack, outermost frame first; sites that fold to the
 * same names (two calls in one function) are added together.  The lines are
 * sorted to find the equal ones (n log n), then printed in the order of their
 * first site. */
struct folded {
    char *line;
    uint64_t bytes;
    size_t first; /* the first site that folds to it */
};

static int folded_by_line(const void *a, const void *b) {
    const struct folded *x = a, *y = b;
    int c = strcmp(x->line, y->line);
    if (c != 0) return c;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int folded_by_first(const void *a, const void *b) {
    const struct folded *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* A frame's name in a folded line: as on the terminal, ';' (the separator)
 * as ':'. */
static void folded_name(const struct rp_frame *f, char *buf, size_t cap) {
    char name[512];
    rp_frame_name(f, name, sizeof name);
    tx_term_buf(buf, cap, name, SIZE_MAX);
    for (char *c = buf; *c; c++)
        if (*c == ';') *c = ':';
}

char *rp_folded_stack(const struct rp_report *r, const struct rp_site *s) {
    size_t cap = 64, len = 0;
    char *line = xcalloc(cap, 1);
    if (s->frame_count == 0 || s->truncated) {
        snprintf(line, cap, "%s",
                 s->truncated    ? rp_truncation_mark(r)
                 : s->unrecorded ? "[stack not recorded]"
                                 : "[no frames]");
        len = strlen(line);
    }
    for (size_t f = s->frame_count; f-- > 0;) {
        char name[4 * 512];
        folded_name(&s->frames[f], name, sizeof name);
        size_t name_len = strlen(name), need = len + name_len + 2;
        if (need > cap) {
            while (cap < need) cap *= 2;
            line = xrealloc(line, cap);
        }
        if (len) line[len++] = ';';
        memcpy(line + len, name, name_len + 1);
        len += name_len;
    }
    return line;
}

void rp_print_folded(const struct rp_report *r) {
    size_t n = r->site_count, count = 0;
    struct folded *all = xcalloc(n, sizeof *all);
    for (size_t i = 0; i < n; i++) {
        const struct rp_site *s = &r->sites[i];
        if (s->est_bytes == 0) continue;
        all[count++] = (struct folded){rp_folded_stack(r, s), s->est_bytes, i};
    }
    qsort(all, count, sizeof *all, folded_by_line);
    size_t kept = 0;
    for (size_t j = 0; j < count; j++) {
        if (kept > 0 && strcmp(all[kept - 1].line, all[j].line) == 0) {
            all[kept - 1].bytes = add_saturated(all[kept - 1].bytes, all[j].bytes);
            free(all[j].line);
        } else {
            all[kept++] = all[j];
        }
    }
    qsort(all, kept, sizeof *all, folded_by_first);
    for (size_t j = 0; j < kept; j++) {
        printf("%s %" PRIu64 "\n", all[j].line, all[j].bytes);
        free(all[j].line);
    }
    free(all);
}

/* ---- normalized JSON ---------------------------------------------------------------- */

static json_t *hex_value(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return json_string(buf);
}

json_t *rp_u64_json(uint64_t v) { return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v); }

/* A JSON string of text read from a module file, which need not be UTF-8 (jansson
 * takes only UTF-8): bytes that are not as U+FFFD, as tools/textout.h does. */
json_t *rp_json_text(const char *s) {
    json_t *v = json_string(s);
    if (v != NULL) return v;
    size_t n = strlen(s), len = 0;
    char *copy = xcalloc(3 * n + 1, 1);
    for (size_t i = 0; i < n;) {
        size_t seq = mb_utf8_seq((const unsigned char *)s + i, n - i, NULL);
        if (seq == 0) {
            memcpy(copy + len, "\xef\xbf\xbd", 3);
            len += 3;
            i++;
        } else {
            memcpy(copy + len, s + i, seq);
            len += seq;
            i += seq;
        }
    }
    v = json_stringn(copy, len);
    free(copy);
    return v;
}

static const char *module_state_name(enum rp_module_state s) {
    switch (s) {
    case RP_MODULE_READ:
        return "read";
    case RP_MODULE_MISSING:
        return "not found";
    case RP_MODULE_MISMATCH:
        return "build-id differs";
    case RP_MODULE_IRREGULAR:
        return "not a regular file";
    case RP_MODULE_TOO_LARGE:
        return "too large";
    case RP_MODULE_UNREAD:
        break;
    }
    return "not read";
}

void rp_site_stack_json(json_t *o, const struct rp_site *s) {
    if (s->unrecorded) json_object_set_new(o, "unrecorded", json_true());
    if (s->truncated) json_object_set_new(o, "truncated", json_true());
    json_t *frames = json_array();
    for (size_t f = 0; f < s->frame_count; f++)
        json_array_append_new(frames, rp_frame_json(&s->frames[f]));
    json_object_set_new(o, "frames", frames);
}

json_t *rp_frame_json(const struct rp_frame *f) {
    json_t *o = json_object();
    char name[512];
    rp_frame_name(f, name, sizeof name);
    json_object_set_new(o, "address", hex_value(f->address));
    json_object_set_new(o, "name", rp_json_text(name));
    if (f->module != NULL) {
        json_object_set_new(o, "module", json_string(f->module->path));
        json_object_set_new(o, "offset", hex_value(f->address - f->module->base));
    }
    if (f->inlined) json_object_set_new(o, "inlined", json_true());
    if (f->function != NULL) {
        json_object_set_new(o, "function", rp_json_text(f->function));
        if (f->mangled != NULL) json_object_set_new(o, "mangled", rp_json_text(f->mangled));
        if (!f->inlined) json_object_set_new(o, "function_offset", rp_u64_json(f->function_offset));
    }
    if (f->file != NULL) {
        json_object_set_new(o, "file", rp_json_text(f->file));
        json_object_set_new(o, "line", json_integer(f->line));
    }
    return o;
}

static json_t *notes_json(const struct rp_report *r) {
    json_t *notes = json_array();
    for (size_t i = 0; i < r->note_count && i < RP_NOTES_MAX; i++)
        json_array_append_new(notes, rp_json_text(r->notes[i]));
    if (r->note_count > RP_NOTES_MAX) {
        char more[64];
        snprintf(more, sizeof more, "%zu more not shown", r->note_count - RP_NOTES_MAX);
        json_array_append_new(notes, json_string(more));
    }
    return notes;
}

static json_t *timeline_json(const struct rp_report *r) {
    json_t *ticks = json_array();
    for (size_t i = 0; i < r->tick_count; i++) {
        const struct rp_tick *t = &r->ticks[i];
        json_t *o = json_object();
        json_object_set_new(o, "time_ns", rp_u64_json(t->time_ns));
        json_object_set_new(o, "footprint_bytes", rp_u64_json(t->footprint_bytes));
        json_object_set_new(o, "counter_bytes", rp_u64_json(t->counter_bytes));
        json_object_set_new(o, "baseline_bytes", rp_u64_json(t->baseline_bytes));
        json_object_set_new(o, "policy", json_string(t->policy));
        json_array_append_new(ticks, o);
    }
    return ticks;
}

static json_t *sites_json(const struct rp_report *r) {
    json_t *sites = json_array();
    for (size_t i = 0; i < r->site_count; i++) {
        const struct rp_site *s = &r->sites[i];
        json_t *o = json_object();
        json_object_set_new(o, "rank", json_integer((json_int_t)i + 1));
        json_object_set_new(o, "est_bytes", rp_u64_json(s->est_bytes));
        json_object_set_new(
            o, "share",
            json_real(r->sites_est_bytes ? (double)s->est_bytes / (double)r->sites_est_bytes : 0));
        json_object_set_new(o, "est_objects", rp_u64_json(s->est_objects));
        json_object_set_new(o, "live_samples", rp_u64_json(s->live_samples));
        json_object_set_new(o, "live_sampled_bytes", rp_u64_json(s->live_sampled_bytes));
        json_object_set_new(o, "total_samples", rp_u64_json(s->total_samples));
        rp_site_stack_json(o, s);
        json_array_append_new(sites, o);
    }
    return sites;
}

static json_t *modules_json(const struct rp_report *r) {
    json_t *modules = json_array();
    for (size_t i = 0; i < r->module_count; i++) {
        const struct rp_module *m = &r->modules[i];
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(m->path));
        json_object_set_new(o, "base", hex_value(m->base));
        json_object_set_new(o, "start", hex_value(m->start));
        json_object_set_new(o, "end", hex_value(m->end));
        json_object_set_new(o, "build_id", json_string(m->build_id));
        json_object_set_new(o, "symbols", json_string(module_state_name(m->state)));
        json_array_append_new(modules, o);
    }
    return modules;
}

void rp_print_json(const struct rp_report *r) {
    json_t *out = json_object();
    json_object_set_new(out, "membudget_report", json_integer(1));
    json_object_set_new(out, "dump_format",
                        json_incref(json_object_get(r->root, "membudget_dump")));
    json_object_set_new(out, "version", json_string(r->version));
    json_object_set_new(out, "reason", json_string(r->reason));
    json_object_set_new(out, "pid", rp_u64_json(r->pid));
    json_object_set_new(out, "comm", json_string(r->comm));
    json_object_set_new(out, "time_unix_ns", rp_u64_json(r->time_unix_ns));
    json_object_set_new(out, "uptime_ns", rp_u64_json(r->uptime_ns));
    if (r->note_count > 0) json_object_set_new(out, "notes", notes_json(r));
    json_object_set(out, "limit", r->limit);
    json_object_set(out, "footprint", r->footprint);
    json_object_set(out, "policy", r->policy);
    json_t *size_classes = json_object_get(r->root, "size_classes");
    json_object_set_new(out, "size_classes",
                        json_is_array(size_classes) ? json_incref(size_classes) : json_array());
    json_object_set_new(out, "timeline", timeline_json(r));
    json_object_set(out, "sampling", r->sampling);
    json_t *allocator = json_object_get(r->root, "allocator");
    if (json_is_object(allocator)) json_object_set(out, "allocator", allocator);
    json_object_set_new(out, "sites", sites_json(r));
    json_object_set_new(out, "modules", modules_json(r));
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
}

/* ---- the command ---------------------------------------------------------------------- */

static bool parse_count(const char *s, size_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || v > 1000000) return false;
    *out = (size_t)v;
    return true;
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr,
            "\n%s: usage: membudget report DUMP [--svg FILE] [--folded | --json] "
            "[--html FILE] [--sites N] [--frames N] [--no-symbols]; or --diff OLD NEW\n",
            prog);
    return 2;
}

static int finish(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output\n", prog);
        return 1;
    }
    return 0;
}

static int diff_main(const char *old_path, const char *new_path, bool symbols,
                     enum rp_diff_form form, size_t max_sites, size_t max_frames) {
    struct rp_report old = {0}, new = {0};
    if (!rp_load_file(&old, old_path)) return 1;
    if (!rp_load_file(&new, new_path)) {
        rp_free(&old);
        return 1;
    }
    old.expand_frames = new.expand_frames = true;
    if (symbols) {
        rp_symbolize(&old);
        rp_symbolize(&new);
    }
    for (int side = 0; side < 2; side++) {
        const struct rp_report *r = side ? &new : &old;
        for (size_t i = 0; i < r->note_count && i < RP_NOTES_MAX; i++)
            fprintf(stderr, "%s: %s: note: %s\n", prog, T(r->path), T(r->notes[i]));
    }
    int status = rp_print_diff(&old, &new, form, max_sites, max_frames) ? 0 : 1;
    if (status != 0) fprintf(stderr, "%s: out of memory\n", prog);
    if (finish() != 0) status = 1;
    rp_free(&old);
    rp_free(&new);
    return status;
}

enum rp_out { RP_OUT_TEXT, RP_OUT_FOLDED, RP_OUT_JSON };

/* One report: the pictures asked for (--svg, --html), then the text, --folded
 * or --json on stdout. */
static int one_main(const char *path, bool symbols, const char *svg, const char *html,
                    enum rp_out form, size_t max_sites, size_t max_frames) {
    struct rp_report r = {0};
    if (!rp_load_file(&r, path)) return 1;
    r.expand_frames = true;
    if (symbols) rp_symbolize(&r);
    if ((svg != NULL && !rp_write_svg(&r, svg)) || (html != NULL && !rp_write_html(&r, html))) {
        rp_free(&r);
        return 1;
    }
    if (form == RP_OUT_FOLDED) {
        /* The lines are for a flame graph: what the reader set aside goes to stderr. */
        for (size_t i = 0; i < r.note_count && i < RP_NOTES_MAX; i++)
            fprintf(stderr, "%s: %s: note: %s\n", prog, T(r.path), T(r.notes[i]));
        rp_print_folded(&r);
    } else if (form == RP_OUT_JSON) {
        rp_print_json(&r);
    } else {
        rp_print_text(&r, max_sites, max_frames);
    }
    int status = finish();
    rp_free(&r);
    return status;
}

int report_main(int argc, char **argv) {
    static const struct option options[] = {
        {"svg", required_argument, NULL, 's'},    {"folded", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},         {"sites", required_argument, NULL, 'n'},
        {"frames", required_argument, NULL, 'F'}, {"no-symbols", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {"diff", required_argument, NULL, 'd'},
        {"html", required_argument, NULL, 'H'},   {NULL, 0, NULL, 0},
    };
    const char *svg = NULL, *diff = NULL, *html = NULL;
    bool folded = false, json = false, symbols = true;
    size_t max_sites = DEFAULT_SITES, max_frames = DEFAULT_FRAMES;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            svg = optarg;
            break;
        case 'f':
            folded = true;
            break;
        case 'H':
            if (optarg[0] == '\0') return usage_error("%s", "--html needs a file name");
            html = optarg;
            break;
        case 'd':
            if (diff != NULL) return usage_error("%s", "--diff given twice: one OLD report");
            diff = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'S':
            symbols = false;
            break;
        case 'n':
            if (!parse_count(optarg, &max_sites))
                return usage_error("--sites %s: expected a count", optarg);
            break;
        case 'F':
            if (!parse_count(optarg, &max_frames))
                return usage_error("--frames %s: expected a count", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? diff != NULL ? "--diff OLD NEW: NEW missing"
                                                               : "which report? (DUMP missing)"
                                 : diff != NULL ? "--diff OLD NEW: one NEW report"
                                                : "one report at a time");
    if (folded && json)
        return usage_error("%s", "--folded and --json each replace the text: choose one");
    if (diff != NULL && (svg != NULL || html != NULL))
        return usage_error("%s", svg != NULL ? "--svg draws one report's timeline: not with --diff"
                                             : "--html shows one report: not with --diff");
    if (diff != NULL)
        return diff_main(diff, argv[optind], symbols,
                         folded ? RP_DIFF_FOLDED
                         : json ? RP_DIFF_JSON
                                : RP_DIFF_TEXT,
                         max_sites, max_frames);

    return one_main(argv[optind], symbols, svg, html,
                    folded ? RP_OUT_FOLDED
                    : json ? RP_OUT_JSON
                           : RP_OUT_TEXT,
                    max_sites, max_frames);
}
