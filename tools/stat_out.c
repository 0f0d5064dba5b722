/* `membudget stat --json` and `--prometheus`, for one process or all (see
 * stat_out.h). */
#include "tools/stat_out.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/utf8.h"
#include "tools/proc.h"
#include "tools/textout.h"

void stat_read_cmdline(pid_t pid, char *out, size_t cap) { proc_cmdline(pid, out, cap); }

double stat_limit_percent(const struct mb_statspage *p) {
    return p->limit_bytes != 0 ? 100.0 * (double)p->footprint_bytes / (double)p->limit_bytes : 0;
}

/* ---- Prometheus ---------------------------------------------------------------- */

/* A label value of the text exposition format: UTF-8 with backslash, double
 * quote and line feed escaped (\\ \" \n, the only escapes it has).  Bytes
 * that are not UTF-8 and the other control characters, which the format
 * would carry raw to whoever reads it, become U+FFFD.  Cut on a character
 * boundary to fit cap. */
static void prom_label(char *out, size_t cap, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), len = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t seq = mb_utf8_seq(p + i, n - i, &c);
        const char *piece = (const char *)p + i;
        size_t piece_len = seq;
        if (c == '\\' || c == '"') {
            piece = c == '"' ? "\\\"" : "\\\\";
            piece_len = 2;
        } else if (c == '\n' && seq == 1) {
            piece = "\\n";
            piece_len = 2;
        } else if (seq == 0 || c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)) {
            piece = "\xef\xbf\xbd";
            piece_len = 3;
        }
        if (len + piece_len >= cap) break;
        memcpy(out + len, piece, piece_len);
        len += piece_len;
        i += seq == 0 ? 1 : seq;
    }
    out[len] = '\0';
}

/* What the exposition needs of one process: its top site (named once) and
 * its labels pid and comm. */
struct prom_proc {
    const struct live_process *lp;
    struct live_top_site site;
    char labels[160];
};

/* A metric: membudget_<name>, its type and help. */
struct prom_metric {
    char name[64];
    const char *type;
    char help[256];
};

/* The metrics after the page's figures, in the order they are written. */
enum prom_extra {
    PROM_LIMIT_RATIO,
    PROM_LAST_UPDATE,
    PROM_STALE,
    PROM_SAMPLE_RATE,
    PROM_TOP_SITE_BYTES,
    PROM_TOP_SITE_SAMPLES,
    PROM_EXTRA_COUNT
};

static void metric(struct prom_metric *m, const char *name, const char *type, const char *help) {
    snprintf(m->name, sizeof m->name, "%s", name);
    m->type = type;
    snprintf(m->help, sizeof m->help, "%s", help);
}

/* membudget_info's labels: pid, comm and the page's names. */
static void info_labels(const struct prom_proc *pp, char *labels, size_t cap) {
    char value[400];
    size_t len = (size_t)snprintf(labels, cap, "%s", pp->labels);
    for (size_t i = 0; i < live_text_count && len < cap; i++) {
        const struct live_text *t = &live_texts[i];
        if (!t->prom) continue;
        prom_label(value, sizeof value, live_text_value(&pp->lp->page, t));
        int n = snprintf(labels + len, cap - len, ",%s=\"%s\"", t->key, value);
        if (n > 0 && (size_t)n < cap - len) len += (size_t)n;
    }
}

/* A figure of the list as a metric (a counter named with "_total"); false
 * when it is none, or the process's page does not have it. */
static bool figure_sample(const struct prom_proc *pp, const struct live_figure *f,
                          struct prom_metric *m, double *value) {
    if (f->prom == NULL) return false;
    size_t n = strlen(f->name);
    bool total =
        strcmp(f->prom, "counter") == 0 && !(n >= 6 && strcmp(f->name + n - 6, "_total") == 0);
    char name[64];
    snprintf(name, sizeof name, "%s%s", f->name, total ? "_total" : "");
    metric(m, name, f->prom, f->help);
    if (!live_figure_present(&pp->lp->page, f)) return false;
    *value = (double)live_figure_value(&pp->lp->page, f);
    return true;
}

/* The metrics after the figures. */
static bool extra_sample(const struct prom_proc *pp, enum prom_extra k, struct prom_metric *m,
                         char *labels, size_t cap, double *value) {
    const struct mb_statspage *p = &pp->lp->page;
    const struct live_top_site *t = &pp->site;
    switch (k) {
    case PROM_LIMIT_RATIO:
        metric(m, "limit_ratio", "gauge", "Footprint divided by the kill threshold.");
        *value = p->limit_bytes ? (double)p->footprint_bytes / (double)p->limit_bytes : 0;
        return true;
    case PROM_LAST_UPDATE:
        metric(m, "last_update_timestamp_seconds", "gauge", "When the figures were last updated.");
        *value = (double)p->updated_unix_ns / 1e9;
        return true;
    case PROM_STALE:
        metric(m, "stale", "gauge", "");
        snprintf(m->help, sizeof m->help,
                 "1 when the figures are older than %g s (%d times the %g s the page is rewritten "
                 "within): not current.",
                 (double)LIVE_STALE_NS / 1e9, LIVE_STALE_FACTOR, (double)LIVE_BOUND_NS / 1e9);
        *value = live_age_of(live_age_ns(p)) == LIVE_AGE_STALE ? 1 : 0;
        return true;
    case PROM_SAMPLE_RATE:
        metric(m, "sample_rate_bytes", "gauge",
               "Mean bytes between sampled allocations (MEMBUDGET_SAMPLE); 0: sampling off.");
        *value = (double)t->rate_bytes;
        return t->state != LIVE_TOP_UNKNOWN; /* the page has no sampling fields */
    case PROM_TOP_SITE_BYTES:
    case PROM_TOP_SITE_SAMPLES:
        if (k == PROM_TOP_SITE_BYTES)
            metric(m, "top_site_bytes", "gauge",
                   "Estimated live bytes of the sampled allocation site holding the most; site "
                   "is its innermost frame, stack its three innermost.");
        else
            metric(m, "top_site_live_samples", "gauge", "Live samples at the top site.");
        if (t->state != LIVE_TOP_OK) return false;
        {
            char site[200], stack[480];
            prom_label(site, sizeof site, t->frame_count > 0 ? t->frames[0].name : "[no frames]");
            prom_label(stack, sizeof stack, t->label);
            snprintf(labels, cap, "%s,site=\"%s\",stack=\"%s\"", pp->labels, site, stack);
        }
        *value = (double)(k == PROM_TOP_SITE_BYTES ? t->est_bytes : t->live_samples);
        return true;
    case PROM_EXTRA_COUNT:
        break;
    }
    return false;
}

/* Metric k (0: membudget_info, then the list's figures, then the extras) of
 * one process: its name, type and help in *m whether or not the process has
 * it; its labels and value when it does (true). */
static bool prom_sample(const struct prom_proc *pp, size_t k, struct prom_metric *m, char *labels,
                        size_t cap, double *value) {
    snprintf(labels, cap, "%s", pp->labels);
    if (k == 0) {
        metric(m, "info", "gauge", "The process under a budget; its policy, action and state.");
        info_labels(pp, labels, cap);
        *value = 1;
        return true;
    }
    if (k - 1 < live_figure_count) return figure_sample(pp, &live_figures[k - 1], m, value);
    return extra_sample(pp, (enum prom_extra)(k - 1 - live_figure_count), m, labels, cap, value);
}

bool stat_prometheus(const struct live_process *procs, size_t count) {
    struct prom_proc *pp = calloc(count != 0 ? count : 1, sizeof *pp);
    if (pp == NULL) return false;
    for (size_t i = 0; i < count; i++) {
        char comm[64];
        pp[i].lp = &procs[i];
        live_top_site(&procs[i], &pp[i].site);
        prom_label(comm, sizeof comm, procs[i].page.comm);
        snprintf(pp[i].labels, sizeof pp[i].labels, "pid=\"%ld\",comm=\"%s\"",
                 (long)procs[i].pid, comm);
    }
    size_t metrics = 1 + live_figure_count + PROM_EXTRA_COUNT;
    for (size_t k = 0; k < metrics; k++) {
        bool announced = false;
        for (size_t i = 0; i < count; i++) {
            struct prom_metric m;
            char labels[1200];
            double value = 0;
            if (!prom_sample(&pp[i], k, &m, labels, sizeof labels, &value)) continue;
            if (!announced)
                printf("# HELP membudget_%s %s\n# TYPE membudget_%s %s\n", m.name, m.help, m.name,
                       m.type);
            announced = true;
            printf("membudget_%s{%s} %.17g\n", m.name, labels, value);
        }
    }
    free(pp);
    return true;
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_key_string(const char *indent, const char *key, const char *value) {
    printf("%s  \"%s\": ", indent, key);
    tx_json(stdout, value);
    printf(",\n");
}

static void json_key_u64(const char *indent, const char *key, uint64_t value) {
    printf("%s  \"%s\": %" PRIu64 ",\n", indent, key, value);
}

static void json_frame(const struct live_top_frame *fr) {
    printf("{\"address\": \"0x%" PRIx64 "\", \"name\": ", fr->address);
    tx_json(stdout, fr->name);
    if (fr->symbolized) {
        printf(", \"function\": ");
        tx_json(stdout, fr->name);
    }
    if (fr->file[0] != '\0') {
        printf(", \"file\": ");
        tx_json(stdout, fr->file);
        printf(", \"line\": %d", fr->line);
    }
    if (fr->module[0] != '\0') {
        printf(", \"module\": ");
        tx_json(stdout, fr->module);
        if (!tx_is_utf8(fr->module)) { /* the exact bytes of a path */
            printf(", \"module_bytes\": ");
            tx_hex(stdout, fr->module);
        }
        printf(", \"module_offset\": \"0x%" PRIx64 "\"", fr->module_offset);
    }
    putchar('}');
}

static void json_top_site(const struct live_process *lp, const char *indent) {
    struct live_top_site t;
    live_top_site(lp, &t);
    printf("%s  \"top_site\": {\"state\": \"%s\", \"text\": ", indent,
           live_top_state_name(t.state));
    tx_json(stdout, t.label);
    if (t.state != LIVE_TOP_UNKNOWN)
        printf(", \"sample_rate_bytes\": %" PRIu64 ",\n%s    \"scans\": %" PRIu64
               ", \"scan_ns\": %" PRIu64 ", \"resolve_ns\": %" PRIu64,
               t.rate_bytes, indent, t.scans, t.scan_ns, t.resolve_ns);
    if (t.state == LIVE_TOP_OK) {
        printf(",\n%s    \"est_bytes\": %" PRIu64 ", \"est_objects\": %" PRIu64
               ", \"live_samples\": %" PRIu64 ", \"live_sampled_bytes\": %" PRIu64
               ", \"depth\": %" PRIu32 ",\n%s    \"frames\": [",
               indent, t.est_bytes, t.est_objects, t.live_samples, t.live_sampled_bytes, t.depth,
               indent);
        for (size_t f = 0; f < t.frame_count; f++) {
            printf("%s\n%s      ", f ? "," : "", indent);
            json_frame(&t.frames[f]);
        }
        printf("]");
    }
    printf("}\n");
}

void stat_json_object(const struct live_process *lp, const char *indent) {
    const struct mb_statspage *p = &lp->page;
    char cmdline[256];
    stat_read_cmdline(lp->pid, cmdline, sizeof cmdline);
    printf("{\n");
    json_key_u64(indent, "membudget_stat", 1); /* the format's version: docs/json.md */
    json_key_u64(indent, "pid", (uint64_t)lp->pid);
    json_key_string(indent, "comm", p->comm);
    json_key_string(indent, "cmdline", cmdline);
    json_key_u64(indent, "page_size", p->size); /* bytes of the stats page the process wrote */
    for (size_t i = 0; i < live_figure_count; i++)
        if (live_figures[i].json && live_figure_present(p, &live_figures[i]))
            json_key_u64(indent, live_figures[i].name, live_figure_value(p, &live_figures[i]));
    printf("%s  \"limit_percent\": %.2f,\n", indent, stat_limit_percent(p));
    uint64_t age = live_age_ns(p);
    json_key_u64(indent, "age_ns", age);
    json_key_u64(indent, "bound_ns", LIVE_BOUND_NS);
    printf("%s  \"stale\": %s,\n", indent,
           live_age_of(age) == LIVE_AGE_STALE ? "true" : "false");
    for (size_t i = 0; i < live_text_count; i++)
        json_key_string(indent, live_texts[i].key, live_text_value(p, &live_texts[i]));
    json_top_site(lp, indent);
    printf("%s}", indent);
}

void stat_json_all(const struct live_scan *scan) {
    printf("{\n  \"membudget_stat_all\": 1,\n"); /* the format's version: docs/json.md */
    printf("  \"bound_ns\": %" PRIu64 ",\n  \"stale_after_ns\": %" PRIu64 ",\n",
           (uint64_t)LIVE_BOUND_NS, (uint64_t)LIVE_STALE_NS);
    printf("  \"denied\": %zu,\n  \"refused\": %zu,\n  \"refused_why\": ", scan->denied,
           scan->refused);
    tx_json(stdout, scan->refused_why);
    printf(",\n  \"cleaned\": %zu,\n  \"processes\": [", scan->cleaned);
    for (size_t i = 0; i < scan->count; i++) {
        printf("%s\n    ", i ? "," : "");
        stat_json_object(&scan->procs[i], "    ");
    }
    printf("%s]\n}\n", scan->count ? "\n  " : "");
}
