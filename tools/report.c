/* membudget report (see report.h): loads a dump into struct rp_report, has it
 * symbolized, and writes one of the outputs: the text summary (one screen:
 * the death line, the limit and where it came from, the footprint breakdown,
 * the policy history, the top sites), folded stacks, or normalized JSON.
 * Everything printed depends only on the dump and the module files, so the
 * same dump gives the same bytes (the golden tests rely on it). */
#include "tools/report.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/report_model.h"

#define DEFAULT_SITES 10
#define DEFAULT_FRAMES 3
#define TEXT_EVENTS_MAX 8

static const char usage_text[] =
    "usage: membudget report DUMP [--svg FILE] [--folded | --json] [OPTIONS]\n"
    "\n"
    "Summarizes a report written by a process that exceeded its memory budget (or\n"
    "by membudget_dump()): the death line, how the limit was derived, the footprint\n"
    "breakdown, the policy history and the top allocation sites, symbolized from\n"
    "the module files the report names.\n"
    "\n"
    "  --svg FILE     also write the footprint timeline, with the thresholds and the\n"
    "                 policy changes, as an SVG picture\n"
    "  --folded       print folded stacks (\"frame;frame;frame bytes\", outermost\n"
    "                 frame first) for flamegraph.pl or speedscope, instead of the text\n"
    "  --json         print the report normalized and symbolized, instead of the text\n"
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

uint64_t rp_u64(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0) return (uint64_t)json_real_value(v);
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

const char *rp_bytes(char *buf, size_t cap, uint64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && bytes >= ((uint64_t)1 << (10 * (u + 1)))) u++;
    uint64_t unit = (uint64_t)1 << (10 * u);
    uint64_t whole = bytes >> (10 * u), rest = bytes & (unit - 1);
    uint64_t tenths = (rest * 10 + unit / 2) >> (10 * u);
    if (tenths == 10) {
        whole++;
        tenths = 0;
    }
    if (tenths != 0)
        snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 " %s", whole, tenths, units[u]);
    else
        snprintf(buf, cap, "%" PRIu64 " %s", whole, units[u]);
    return buf;
}

/* Several sizes in one printf: each call gets its own buffer of a ring. */
static const char *B(uint64_t bytes) {
    static char ring[16][32];
    static unsigned next;
    char *buf = ring[next++ % 16];
    return rp_bytes(buf, sizeof ring[0], bytes);
}

static const char *seconds(uint64_t ns) {
    static char ring[8][32];
    static unsigned next;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%" PRIu64 ".%03" PRIu64 " s", ns / 1000000000u,
             ns / 1000000u % 1000u);
    return buf;
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

static void load_modules(struct rp_report *r) {
    json_t *modules = json_object_get(r->root, "modules");
    r->module_count = json_array_size(modules);
    r->modules = xcalloc(r->module_count, sizeof *r->modules);
    for (size_t i = 0; i < r->module_count; i++) {
        json_t *m = json_array_get(modules, i);
        struct rp_module *mod = &r->modules[i];
        mod->path = rp_str(m, "path");
        const char *slash = strrchr(mod->path, '/');
        mod->name = slash != NULL ? slash + 1 : mod->path;
        mod->base = rp_address(json_object_get(m, "base"));
        mod->start = rp_address(json_object_get(m, "start"));
        mod->end = rp_address(json_object_get(m, "end"));
        mod->build_id = rp_str(m, "build_id");
    }
}

static const struct rp_module *module_of(const struct rp_report *r, uint64_t address) {
    for (size_t i = 0; i < r->module_count; i++)
        if (address >= r->modules[i].start && address < r->modules[i].end) return &r->modules[i];
    return NULL;
}

/* Sites as the dump lists them (most estimated bytes first), sorted again so a
 * hand-edited or merged dump reads the same way. */
static int site_compare(const void *a, const void *b) {
    const struct rp_site *x = a, *y = b;
    if (x->est_bytes != y->est_bytes) return x->est_bytes < y->est_bytes ? 1 : -1;
    return 0;
}

static void load_sites(struct rp_report *r) {
    json_t *sites = json_object_get(r->root, "sites");
    r->site_count = json_array_size(sites);
    r->sites = xcalloc(r->site_count, sizeof *r->sites);
    for (size_t i = 0; i < r->site_count; i++) {
        json_t *s = json_array_get(sites, i);
        struct rp_site *site = &r->sites[i];
        site->est_bytes = rp_u64(s, "est_bytes");
        site->est_objects = rp_u64(s, "est_objects");
        site->live_samples = rp_u64(s, "live_samples");
        site->live_sampled_bytes = rp_u64(s, "live_sampled_bytes");
        site->total_samples = rp_u64(s, "total_samples");
        site->unrecorded = json_is_true(json_object_get(s, "unrecorded"));
        json_t *frames = json_object_get(s, "frames");
        site->frame_count = json_array_size(frames);
        site->frames = xcalloc(site->frame_count, sizeof *site->frames);
        for (size_t f = 0; f < site->frame_count; f++) {
            struct rp_frame *frame = &site->frames[f];
            frame->address = rp_address(json_array_get(frames, f));
            frame->module = module_of(r, frame->address);
        }
        r->sites_est_bytes += site->est_bytes;
    }
    qsort(r->sites, r->site_count, sizeof *r->sites, site_compare);
}

static bool load_report(struct rp_report *r, const char *path) {
    json_error_t error;
    r->path = path;
    r->root = json_load_file(path, 0, &error);
    if (r->root == NULL) {
        if (error.line > 0)
            fprintf(stderr, "%s: %s: line %d: %s\n", prog, path, error.line, error.text);
        else
            fprintf(stderr, "%s: %s: %s\n", prog, path, error.text);
        return false;
    }
    if (!json_is_object(r->root) || !json_is_integer(json_object_get(r->root, "membudget_dump"))) {
        fprintf(stderr, "%s: %s: not a membudget report (no \"membudget_dump\" field)\n", prog,
                path);
        return false;
    }
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
    r->kill_bytes = rp_u64(r->limit, "kill_bytes");
    r->conservative_bytes = rp_u64(r->limit, "conservative_bytes");
    r->strict_bytes = rp_u64(r->limit, "strict_bytes");
    r->strict_sync_bytes = rp_u64(r->limit, "strict_sync_bytes");
    r->footprint_bytes = rp_u64(r->footprint, "bytes");
    load_events(r);
    load_ticks(r);
    load_modules(r);
    load_sites(r);
    return true;
}

/* ---- frames as text --------------------------------------------------------------- */

/* "function", else "module+0xoffset", else "0xaddress". */
static void frame_name(const struct rp_frame *f, char *buf, size_t cap) {
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
    const char *source = rp_str(r->limit, "kill_source");
    if (strcmp(r->reason, "request") == 0) {
        printf("membudget: pid %" PRIu64 " (%s) report: footprint %s, limit %s (%s)\n", r->pid,
               r->comm, B(r->footprint_bytes), B(r->kill_bytes), source);
    } else {
        printf("membudget: pid %" PRIu64
               " (%s) exceeded its memory budget: footprint %s >= limit %s (%s)\n",
               r->pid, r->comm, B(r->footprint_bytes), B(r->kill_bytes), source);
    }
    char when[64] = "";
    time_t t = (time_t)(r->time_unix_ns / 1000000000u);
    struct tm tm;
    if (r->time_unix_ns != 0 && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, " at %Y-%m-%d %H:%M:%S UTC", &tm);
    printf("  %s after %s%s; membudget %s\n", reason_words(r->reason), seconds(r->uptime_ns), when,
           r->version);
}

static void print_limit(const struct rp_report *r) {
    const json_t *l = r->limit;
    printf("\nLimit %s: %s\n", B(r->kill_bytes), rp_str(l, "kill_source"));
    printf("  conservative %s: %s\n", B(r->conservative_bytes), rp_str(l, "conservative_source"));
    printf("  strict       %s: %s\n", B(r->strict_bytes), rp_str(l, "strict_source"));
    printf("  strict-sync  %s: %s\n", B(r->strict_sync_bytes), rp_str(l, "strict_sync_source"));
    printf("  ramSize      %s: %s\n", B(rp_u64(l, "ram_bytes")), rp_str(l, "ram_source"));
}

static void print_footprint(const struct rp_report *r) {
    const json_t *f = r->footprint;
    const json_t *os = json_object_get(f, "os");
    printf("\nFootprint %s = counter %s + baseline %s (%s)\n", B(r->footprint_bytes),
           B(rp_u64(f, "counter_bytes")), B(rp_u64(f, "baseline_bytes")), rp_str(f, "source"));
    printf("  small pages %s (%s in live blocks), large spans %s (%s cached),\n",
           B(rp_u64(f, "small_bytes")), B(rp_u64(f, "small_live_bytes")),
           B(rp_u64(f, "large_bytes")), B(rp_u64(f, "large_cached_bytes")));
    printf("  application mmap %s, metadata %s; peak counter %s\n", B(rp_u64(f, "mmap_bytes")),
           B(rp_u64(f, "meta_bytes")), B(rp_u64(f, "counter_peak_bytes")));
    printf("  OS view: RssAnon %s + VmSwap %s", B(rp_u64(os, "rss_anon_bytes")),
           B(rp_u64(os, "vm_swap_bytes")));
    if (rp_u64(os, "cgroup_bytes") != 0) printf(", cgroup %s", B(rp_u64(os, "cgroup_bytes")));
    printf("\n");
}

static void print_policy(const struct rp_report *r) {
    uint64_t total = rp_u64(r->policy, "events_total");
    printf("\nPolicy %s; %" PRIu64 " event%s\n", rp_str(r->policy, "current"), total,
           total == 1 ? "" : "s");
    size_t first = r->event_count > TEXT_EVENTS_MAX ? r->event_count - TEXT_EVENTS_MAX : 0;
    uint64_t hidden = total > r->event_count ? total - r->event_count : 0;
    hidden += first;
    if (hidden) printf("  (%" PRIu64 " earlier not shown)\n", hidden);
    for (size_t i = first; i < r->event_count; i++) {
        const struct rp_event *e = &r->events[i];
        printf("  %10s  ", seconds(e->time_ns));
        if (strcmp(e->kind, "policy") == 0)
            printf("%s -> %s", e->from, e->to);
        else
            printf("%s", e->kind);
        printf(" at %s", B(e->footprint_bytes));
        if (e->threshold_bytes) printf(" (threshold %s)", B(e->threshold_bytes));
        printf(", released %s\n", B(e->released_bytes));
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
           rp_u64(r->sampling, "live_samples"), B(rate));
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
               B(s->est_bytes), share, s->est_objects, s->est_objects == 1 ? "" : "s",
               s->live_samples, s->live_samples == 1 ? "" : "s",
               s->unrecorded ? " (stacks not recorded)" : "");
        size_t frames = max_frames && max_frames < s->frame_count ? max_frames : s->frame_count;
        for (size_t f = 0; f < frames; f++) {
            char name[512], where[1024];
            frame_name(&s->frames[f], name, sizeof name);
            frame_where(&s->frames[f], where, sizeof where);
            printf("       %s%s%s\n", name, where[0] ? "  " : "", where);
        }
        if (frames < s->frame_count) printf("       ... %zu more\n", s->frame_count - frames);
    }
    if (n < r->site_count) printf("  ... %zu more sites\n", r->site_count - n);
}

static void print_symbols(const struct rp_report *r) {
    size_t read = 0, missing = 0, mismatch = 0, unread = 0, files = 0;
    for (size_t i = 0; i < r->module_count; i++) {
        if (r->modules[i].path[0] != '/') continue; /* the vDSO has no file */
        files++;
        switch (r->modules[i].state) {
        case RP_MODULE_READ:
            read++;
            break;
        case RP_MODULE_MISSING:
            missing++;
            break;
        case RP_MODULE_MISMATCH:
            mismatch++;
            break;
        case RP_MODULE_UNREAD:
            unread++;
            break;
        }
    }
    if (files == 0 || unread == files) return;
    printf("\nSymbols: %zu of %zu module files read", read, files);
    for (int pass = 0; pass < 2; pass++) {
        enum rp_module_state want = pass == 0 ? RP_MODULE_MISMATCH : RP_MODULE_MISSING;
        size_t count = pass == 0 ? mismatch : missing;
        if (count == 0) continue;
        printf("; %s:", pass == 0 ? "rebuilt since (build-id differs)" : "not found");
        for (size_t i = 0; i < r->module_count; i++) {
            const struct rp_module *m = &r->modules[i];
            if (m->state == want && m->path[0] == '/') printf(" %s", m->path);
        }
    }
    printf("\n");
}

static void print_text(const struct rp_report *r, size_t max_sites, size_t max_frames) {
    print_header(r);
    print_limit(r);
    print_footprint(r);
    print_policy(r);
    print_sites(r, max_sites, max_frames);
    print_symbols(r);
}

/* ---- folded stacks ---------------------------------------------------------------- */

/* One line per distinct stack, outermost frame first; sites that fold to the
 * same names (two calls in one function) are added together. */
static void print_folded(const struct rp_report *r) {
    size_t n = r->site_count;
    char **lines = xcalloc(n, sizeof *lines);
    uint64_t *bytes = xcalloc(n, sizeof *bytes);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rp_site *s = &r->sites[i];
        if (s->est_bytes == 0) continue;
        size_t cap = 64, len = 0;
        char *line = xcalloc(cap, 1);
        if (s->frame_count == 0) {
            snprintf(line, cap, "%s", s->unrecorded ? "[stack not recorded]" : "[no frames]");
            len = strlen(line);
        }
        for (size_t f = s->frame_count; f-- > 0;) {
            char name[512];
            frame_name(&s->frames[f], name, sizeof name);
            for (char *c = name; *c; c++)
                if (*c == ';' || *c == '\n') *c = ':';
            size_t need = len + strlen(name) + 2;
            if (need > cap) {
                while (cap < need) cap *= 2;
                line = realloc(line, cap);
                if (line == NULL) {
                    fprintf(stderr, "%s: out of memory\n", prog);
                    exit(1);
                }
            }
            if (len) line[len++] = ';';
            strcpy(line + len, name);
            len += strlen(name);
        }
        size_t j = 0;
        while (j < count && strcmp(lines[j], line) != 0) j++;
        if (j < count) {
            bytes[j] += s->est_bytes;
            free(line);
        } else {
            lines[count] = line;
            bytes[count++] = s->est_bytes;
        }
    }
    for (size_t j = 0; j < count; j++) {
        printf("%s %" PRIu64 "\n", lines[j], bytes[j]);
        free(lines[j]);
    }
    free(lines);
    free(bytes);
}

/* ---- normalized JSON ---------------------------------------------------------------- */

static json_t *hex_value(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return json_string(buf);
}

static json_t *u64_value(uint64_t v) { return json_integer((json_int_t)v); }

static const char *module_state_name(enum rp_module_state s) {
    switch (s) {
    case RP_MODULE_READ:
        return "read";
    case RP_MODULE_MISSING:
        return "not found";
    case RP_MODULE_MISMATCH:
        return "build-id differs";
    case RP_MODULE_UNREAD:
        break;
    }
    return "not read";
}

static json_t *frame_json(const struct rp_frame *f) {
    json_t *o = json_object();
    char name[512];
    frame_name(f, name, sizeof name);
    json_object_set_new(o, "address", hex_value(f->address));
    json_object_set_new(o, "name", json_string(name));
    if (f->module != NULL) {
        json_object_set_new(o, "module", json_string(f->module->path));
        json_object_set_new(o, "offset", hex_value(f->address - f->module->base));
    }
    if (f->function != NULL) {
        json_object_set_new(o, "function", json_string(f->function));
        json_object_set_new(o, "function_offset", u64_value(f->function_offset));
    }
    if (f->file != NULL) {
        json_object_set_new(o, "file", json_string(f->file));
        json_object_set_new(o, "line", json_integer(f->line));
    }
    return o;
}

static void print_json(const struct rp_report *r) {
    json_t *out = json_object();
    json_object_set_new(out, "membudget_report", json_integer(1));
    json_object_set_new(out, "dump_format",
                        json_incref(json_object_get(r->root, "membudget_dump")));
    json_object_set_new(out, "version", json_string(r->version));
    json_object_set_new(out, "reason", json_string(r->reason));
    json_object_set_new(out, "pid", u64_value(r->pid));
    json_object_set_new(out, "comm", json_string(r->comm));
    json_object_set_new(out, "time_unix_ns", u64_value(r->time_unix_ns));
    json_object_set_new(out, "uptime_ns", u64_value(r->uptime_ns));
    json_object_set(out, "limit", r->limit);
    json_object_set(out, "footprint", r->footprint);
    json_object_set(out, "policy", r->policy);
    json_t *size_classes = json_object_get(r->root, "size_classes");
    json_object_set_new(out, "size_classes",
                        json_is_array(size_classes) ? json_incref(size_classes) : json_array());
    json_t *ticks = json_array();
    for (size_t i = 0; i < r->tick_count; i++) {
        const struct rp_tick *t = &r->ticks[i];
        json_t *o = json_object();
        json_object_set_new(o, "time_ns", u64_value(t->time_ns));
        json_object_set_new(o, "footprint_bytes", u64_value(t->footprint_bytes));
        json_object_set_new(o, "counter_bytes", u64_value(t->counter_bytes));
        json_object_set_new(o, "baseline_bytes", u64_value(t->baseline_bytes));
        json_object_set_new(o, "policy", json_string(t->policy));
        json_array_append_new(ticks, o);
    }
    json_object_set_new(out, "timeline", ticks);
    json_object_set(out, "sampling", r->sampling);
    json_t *sites = json_array();
    for (size_t i = 0; i < r->site_count; i++) {
        const struct rp_site *s = &r->sites[i];
        json_t *o = json_object();
        json_object_set_new(o, "rank", json_integer((json_int_t)i + 1));
        json_object_set_new(o, "est_bytes", u64_value(s->est_bytes));
        json_object_set_new(
            o, "share",
            json_real(r->sites_est_bytes ? (double)s->est_bytes / (double)r->sites_est_bytes : 0));
        json_object_set_new(o, "est_objects", u64_value(s->est_objects));
        json_object_set_new(o, "live_samples", u64_value(s->live_samples));
        json_object_set_new(o, "live_sampled_bytes", u64_value(s->live_sampled_bytes));
        json_object_set_new(o, "total_samples", u64_value(s->total_samples));
        if (s->unrecorded) json_object_set_new(o, "unrecorded", json_true());
        json_t *frames = json_array();
        for (size_t f = 0; f < s->frame_count; f++)
            json_array_append_new(frames, frame_json(&s->frames[f]));
        json_object_set_new(o, "frames", frames);
        json_array_append_new(sites, o);
    }
    json_object_set_new(out, "sites", sites);
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
    json_object_set_new(out, "modules", modules);
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
            "[--sites N] [--frames N] [--no-symbols]\n",
            prog);
    return 2;
}

int report_main(int argc, char **argv) {
    static const struct option options[] = {
        {"svg", required_argument, NULL, 's'},    {"folded", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},         {"sites", required_argument, NULL, 'n'},
        {"frames", required_argument, NULL, 'F'}, {"no-symbols", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *svg = NULL;
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
        return usage_error("%s", optind >= argc ? "which report? (DUMP missing)"
                                                : "one report at a time");
    if (folded && json)
        return usage_error("%s", "--folded and --json each replace the text: choose one");

    struct rp_report r = {0};
    if (!load_report(&r, argv[optind])) return 1;
    if (symbols) rp_symbolize(&r);
    if (svg != NULL && !rp_write_svg(&r, svg)) return 1;
    if (folded)
        print_folded(&r);
    else if (json)
        print_json(&r);
    else
        print_text(&r, max_sites, max_frames);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output\n", prog);
        return 1;
    }
    for (size_t i = 0; i < r.site_count; i++) {
        for (size_t f = 0; f < r.sites[i].frame_count; f++) {
            free(r.sites[i].frames[f].function);
            free(r.sites[i].frames[f].file);
        }
        free(r.sites[i].frames);
    }
    free(r.sites);
    free(r.modules);
    free(r.ticks);
    free(r.events);
    json_decref(r.root);
    return 0;
}
