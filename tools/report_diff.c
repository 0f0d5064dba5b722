/* membudget report --diff OLD NEW (like jeprof --base): the sites of two
 * reports matched by their stack as names (a folded line: module+offset where
 * there is no symbol, so that two runs of one program at other load
 * addresses match), ordered by the growth of their estimated live bytes from
 * OLD to NEW.  Text, differential folded stacks ("stack old new", as
 * flamegraph.pl's difffolded.pl writes them) or JSON. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/report_diff.h"
#include "tools/textout.h"

struct diff_site {
    char *stack; /* the key: the folded line */
    uint64_t old_bytes, new_bytes, old_objects, new_objects;
    const struct rp_report *from; /* the report whose site stands for it (NEW if in both) */
    const struct rp_site *site;
    size_t order;
};

static int by_stack(const void *a, const void *b) {
    const struct diff_site *x = a, *y = b;
    int c = strcmp(x->stack, y->stack);
    if (c != 0) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The signed growth, saturated to what a double and JSON carry. */
static double growth(const struct diff_site *d) {
    return (double)d->new_bytes - (double)d->old_bytes;
}

static int by_growth(const void *a, const void *b) {
    const struct diff_site *x = a, *y = b;
    double gx = growth(x), gy = growth(y);
    if (gx != gy) return gx > gy ? -1 : 1;
    return strcmp(x->stack, y->stack);
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* Both reports' sites, merged by stack: *count entries, by growth. */
static struct diff_site *merge(const struct rp_report *old, const struct rp_report *new,
                               size_t *count) {
    size_t n = old->site_count + new->site_count, k = 0;
    struct diff_site *all = calloc(n ? n : 1, sizeof *all);
    if (all == NULL) return NULL;
    for (int side = 0; side < 2; side++) {
        const struct rp_report *r = side ? new : old;
        for (size_t i = 0; i < r->site_count; i++) {
            const struct rp_site *s = &r->sites[i];
            all[k] = (struct diff_site){
                .stack = rp_folded_stack(r, s), .from = r, .site = s, .order = k};
            if (side) {
                all[k].new_bytes = s->est_bytes;
                all[k].new_objects = s->est_objects;
            } else {
                all[k].old_bytes = s->est_bytes;
                all[k].old_objects = s->est_objects;
            }
            k++;
        }
    }
    qsort(all, k, sizeof *all, by_stack);
    size_t kept = 0;
    for (size_t j = 0; j < k; j++) {
        struct diff_site *last = kept ? &all[kept - 1] : NULL;
        if (last != NULL && strcmp(last->stack, all[j].stack) == 0) {
            last->old_bytes = add_sat(last->old_bytes, all[j].old_bytes);
            last->new_bytes = add_sat(last->new_bytes, all[j].new_bytes);
            last->old_objects = add_sat(last->old_objects, all[j].old_objects);
            last->new_objects = add_sat(last->new_objects, all[j].new_objects);
            if (all[j].from == new && last->from != new) {
                last->from = new;
                last->site = all[j].site;
            }
            free(all[j].stack);
        } else {
            all[kept++] = all[j];
        }
    }
    qsort(all, kept, sizeof *all, by_growth);
    *count = kept;
    return all;
}

/* "+8 MiB", "-2 MiB", "0 B". */
static const char *signed_bytes(uint64_t from, uint64_t to) {
    static char ring[4][40];
    static unsigned next;
    char *buf = ring[next++ % 4];
    char num[32];
    mb_bytes_text(num, sizeof num, to >= from ? to - from : from - to);
    snprintf(buf, sizeof ring[0], "%s%s", to > from ? "+" : to < from ? "-" : "", num);
    return buf;
}

static void print_side(const char *label, const struct rp_report *r) {
    printf("  %s ", label);
    tx_term(stdout, r->path);
    printf(": pid %" PRIu64 " (", r->pid);
    tx_term(stdout, r->comm);
    printf(") after %" PRIu64 ".%03" PRIu64 " s, footprint %s, sampled sites %s in %zu\n",
           r->uptime_ns / 1000000000u, r->uptime_ns / 1000000u % 1000u, rp_bytes(r->footprint_bytes),
           rp_bytes(r->sites_est_bytes), r->site_count);
}

static void print_text(const struct rp_report *old, const struct rp_report *new,
                       const struct diff_site *d, size_t n, size_t max_sites, size_t max_frames) {
    printf("membudget: report diff: footprint %s -> %s (%s), sampled sites %s -> %s (%s)\n",
           rp_bytes(old->footprint_bytes), rp_bytes(new->footprint_bytes),
           signed_bytes(old->footprint_bytes, new->footprint_bytes), rp_bytes(old->sites_est_bytes),
           rp_bytes(new->sites_est_bytes), signed_bytes(old->sites_est_bytes, new->sites_est_bytes));
    print_side("old", old);
    print_side("new", new);
    if (old->pid != new->pid) printf("  (two processes: sites matched by their stacks' names)\n");
    printf("\nSites by growth in estimated live bytes\n");
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) changed += d[i].old_bytes != d[i].new_bytes;
    if (changed == 0) printf("  none changed\n");
    size_t shown = 0;
    for (size_t i = 0; i < n && (max_sites == 0 || shown < max_sites); i++) {
        if (d[i].old_bytes == d[i].new_bytes) continue;
        shown++;
        printf("  #%-2zu %9s  %s -> %s\n", shown, signed_bytes(d[i].old_bytes, d[i].new_bytes),
               rp_bytes(d[i].old_bytes), rp_bytes(d[i].new_bytes));
        const struct rp_site *s = d[i].site;
        size_t frames = max_frames && max_frames < s->frame_count ? max_frames : s->frame_count;
        for (size_t f = 0; f < frames; f++) {
            char name[512];
            rp_frame_name(&s->frames[f], name, sizeof name);
            printf("       ");
            tx_term(stdout, name);
            if (s->frames[f].inlined) printf(" (inlined)");
            if (s->frames[f].file != NULL) {
                printf("  ");
                tx_term(stdout, s->frames[f].file);
                printf(":%d", s->frames[f].line);
            }
            printf("\n");
        }
        if (s->frame_count == 0)
            printf("       %s\n", s->unrecorded ? "[stack not recorded]" : "[no frames]");
        if (frames < s->frame_count)
            printf("       ... %zu more%s\n", s->frame_count - frames,
                   s->truncated ? ", then the stack was cut" : "");
        else if (s->truncated)
            printf("       %s\n", rp_truncation_mark(d[i].from));
    }
    if (shown < changed) printf("  ... %zu more sites changed\n", changed - shown);
    if (n > changed) printf("  (%zu site%s unchanged)\n", n - changed, n - changed == 1 ? "" : "s");
}

static void print_folded(const struct diff_site *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        printf("%s %" PRIu64 " %" PRIu64 "\n", d[i].stack, d[i].old_bytes, d[i].new_bytes);
}

static json_t *side_json(const struct rp_report *r) {
    json_t *o = json_object();
    json_object_set_new(o, "path", rp_json_text(r->path));
    json_object_set_new(o, "pid", rp_u64_json(r->pid));
    json_object_set_new(o, "comm", json_string(r->comm));
    json_object_set_new(o, "reason", json_string(r->reason));
    json_object_set_new(o, "time_unix_ns", rp_u64_json(r->time_unix_ns));
    json_object_set_new(o, "uptime_ns", rp_u64_json(r->uptime_ns));
    json_object_set_new(o, "footprint_bytes", rp_u64_json(r->footprint_bytes));
    json_object_set_new(o, "sites_est_bytes", rp_u64_json(r->sites_est_bytes));
    json_object_set_new(o, "site_count", rp_u64_json(r->site_count));
    return o;
}

static void print_json(const struct rp_report *old, const struct rp_report *new,
                       const struct diff_site *d, size_t n) {
    json_t *out = json_object();
    json_object_set_new(out, "membudget_diff", json_integer(1));
    json_object_set_new(out, "old", side_json(old));
    json_object_set_new(out, "new", side_json(new));
    json_t *sites = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        int64_t from = d[i].old_bytes > INT64_MAX ? INT64_MAX : (int64_t)d[i].old_bytes,
                to = d[i].new_bytes > INT64_MAX ? INT64_MAX : (int64_t)d[i].new_bytes;
        json_object_set_new(o, "rank", json_integer((json_int_t)i + 1));
        json_object_set_new(o, "growth_bytes", json_integer(to - from));
        json_object_set_new(o, "old_est_bytes", rp_u64_json(d[i].old_bytes));
        json_object_set_new(o, "new_est_bytes", rp_u64_json(d[i].new_bytes));
        json_object_set_new(o, "old_est_objects", rp_u64_json(d[i].old_objects));
        json_object_set_new(o, "new_est_objects", rp_u64_json(d[i].new_objects));
        const struct rp_site *s = d[i].site;
        rp_site_stack_json(o, s);
        json_array_append_new(sites, o);
    }
    json_object_set_new(out, "sites", sites);
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
}

bool rp_print_diff(const struct rp_report *old, const struct rp_report *new, enum rp_diff_form form,
                   size_t max_sites, size_t max_frames) {
    size_t n = 0;
    struct diff_site *d = merge(old, new, &n);
    if (d == NULL) return false;
    if (form == RP_DIFF_FOLDED)
        print_folded(d, n);
    else if (form == RP_DIFF_JSON)
        print_json(old, new, d, n);
    else
        print_text(old, new, d, n, max_sites, max_frames);
    for (size_t i = 0; i < n; i++) free(d[i].stack);
    free(d);
    return true;
}
