/* The footprint timeline as an SVG picture (membudget report --svg): the
 * footprint and the budget counter over time (monitor ticks, policy events and
 * the moment of the report), the conservative, strict and kill thresholds as
 * horizontal lines, and every policy change as a marked vertical line.  Plain
 * SVG 1.1 with a white background, so it reads the same in any browser. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/report_model.h"
#include "tools/textout.h"

#define WIDTH 960
#define HEIGHT 440
#define LEFT 84
#define RIGHT 170
#define TOP 48
#define BOTTOM 56
#define PLOT_W (WIDTH - LEFT - RIGHT)
#define PLOT_H (HEIGHT - TOP - BOTTOM)

struct point {
    uint64_t time_ns, bytes;
};

static int point_compare(const void *a, const void *b) {
    const struct point *x = a, *y = b;
    if (x->time_ns != y->time_ns) return x->time_ns < y->time_ns ? -1 : 1;
    return 0;
}

struct scale {
    uint64_t t_max, y_max;
};

static double sx(const struct scale *s, uint64_t t) {
    return LEFT + (double)PLOT_W * (double)t / (double)s->t_max;
}

static double sy(const struct scale *s, uint64_t bytes) {
    if (bytes > s->y_max) bytes = s->y_max;
    return TOP + (double)PLOT_H * (1.0 - (double)bytes / (double)s->y_max);
}

/* A round step for about `target` intervals over `range` (target >= 2): 1, 2
 * or 5 x 10^k, at least range / (2.5 x target); raw <= 2^63, so no product
 * below overflows. */
static uint64_t nice_step(uint64_t range, unsigned target) {
    uint64_t raw = range / target, step = 1;
    if (raw == 0) return 1;
    while (step <= raw / 10) step *= 10;
    if (step <= raw / 5) return step * 5;
    if (step <= raw / 2) return step * 2;
    return step;
}

/* The grid lines of an axis: 0, step, 2 x step ... up to max, counted rather
 * than added up (max + step may wrap), and never more than AXIS_LINES_MAX
 * whatever the dump says. */
#define AXIS_LINES_MAX 64
static uint64_t axis_lines(uint64_t max, uint64_t *step) {
    if (*step == 0) *step = 1;
    if (max / *step >= AXIS_LINES_MAX) *step = max / (AXIS_LINES_MAX - 1) + 1;
    return max / *step + 1;
}

/* Sizes step in powers of two of KiB/MiB/GiB times 1, 2 or 5: labels stay round. */
static uint64_t nice_bytes_step(uint64_t range, unsigned target) {
    uint64_t unit = 1;
    while (unit < ((uint64_t)1 << 60) && range / (unit << 10) >= target) unit <<= 10;
    return unit * nice_step(range / unit, target);
}

static const char *policy_color(const char *policy) {
    if (strcmp(policy, "conservative") == 0) return "#c99700";
    if (strcmp(policy, "strict") == 0) return "#e0620d";
    if (strcmp(policy, "strict-synchronous") == 0) return "#c0392b";
    return "#2e8b57";
}

static void threshold_line(FILE *out, const struct scale *s, uint64_t bytes, const char *name,
                           const char *color, const char *dash) {
    if (bytes == 0 || bytes > s->y_max) return;
    char b[32];
    double y = sy(s, bytes);
    fprintf(out,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.5\"%s%s%s/>\n",
            LEFT, y, LEFT + PLOT_W, y, color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" font-size=\"12\">%s %s</text>\n",
            LEFT + PLOT_W + 6, y + 4, color, name, mb_bytes_text(b, sizeof b, bytes));
}

bool rp_write_svg(const struct rp_report *r, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "membudget report: cannot write %s\n", path);
        return false;
    }
    /* The footprint: ticks, events, and the report itself. */
    size_t n = 0, cap = r->tick_count + r->event_count + 1;
    struct point *fp = calloc(cap, sizeof *fp),
                 *counter = calloc(r->tick_count + 1, sizeof *counter);
    size_t counter_n = 0;
    if (fp == NULL || counter == NULL) {
        fclose(out);
        return false;
    }
    for (size_t i = 0; i < r->tick_count; i++) {
        fp[n++] = (struct point){r->ticks[i].time_ns, r->ticks[i].footprint_bytes};
        counter[counter_n++] = (struct point){r->ticks[i].time_ns, r->ticks[i].counter_bytes};
    }
    for (size_t i = 0; i < r->event_count; i++)
        fp[n++] = (struct point){r->events[i].time_ns, r->events[i].footprint_bytes};
    fp[n++] = (struct point){r->uptime_ns, r->footprint_bytes};
    counter[counter_n++] = (struct point){r->uptime_ns, r->counter_bytes};
    qsort(fp, n, sizeof *fp, point_compare);
    qsort(counter, counter_n, sizeof *counter, point_compare);

    struct scale s = {.t_max = 1, .y_max = 1};
    for (size_t i = 0; i < n; i++) {
        if (fp[i].time_ns > s.t_max) s.t_max = fp[i].time_ns;
        if (fp[i].bytes > s.y_max) s.y_max = fp[i].bytes;
    }
    uint64_t top = r->kill_bytes > r->strict_sync_bytes ? r->kill_bytes : r->strict_sync_bytes;
    if (top > s.y_max) s.y_max = top;
    s.y_max = s.y_max > UINT64_MAX - s.y_max / 12 ? UINT64_MAX : s.y_max + s.y_max / 12;

    char b[32];
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", WIDTH, HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">pid %" PRIu64 " (",
            LEFT, r->pid);
    tx_xml(out, r->comm);
    fprintf(out, "): footprint %s, limit %s, ", mb_bytes_text(b, sizeof b, r->footprint_bytes),
            mb_bytes_text((char[32]){0}, 32, r->kill_bytes));
    tx_xml(out, r->reason);
    fprintf(out, "</text>\n");
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
            "stroke=\"#888888\"/>\n",
            LEFT, TOP, PLOT_W, PLOT_H);

    /* Axes: round steps in bytes and seconds. */
    uint64_t ystep = nice_bytes_step(s.y_max, 5);
    uint64_t ylines = axis_lines(s.y_max, &ystep);
    for (uint64_t k = 0; k < ylines; k++) {
        uint64_t v = k * ystep;
        double y = sy(&s, v);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                LEFT, y, LEFT + PLOT_W, y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
                LEFT - 6, y + 4, mb_bytes_text(b, sizeof b, v));
    }
    uint64_t tstep = nice_step(s.t_max, 8);
    uint64_t tlines = axis_lines(s.t_max, &tstep);
    for (uint64_t k = 0; k < tlines; k++) {
        uint64_t t = k * tstep;
        double x = sx(&s, t);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n", x,
                TOP, x, TOP + PLOT_H);
        fprintf(out,
                "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.3g s</text>\n",
                x, TOP + PLOT_H + 16, (double)t / 1e9);
    }
    fprintf(
        out,
        "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">time since start</text>\n",
        LEFT + PLOT_W / 2, HEIGHT - 12);

    threshold_line(out, &s, r->conservative_bytes, "conservative", "#c99700", "6,4");
    threshold_line(out, &s, r->strict_bytes, "strict", "#e0620d", "6,4");
    if (r->strict_sync_bytes != r->kill_bytes)
        threshold_line(out, &s, r->strict_sync_bytes, "strict-sync", "#c0392b", "2,3");
    threshold_line(out, &s, r->kill_bytes, "kill", "#d62728", NULL);

    /* Policy changes: a vertical line and the new policy's name, labels moved
     * apart when events come close together. */
    double label_x = -1e9;
    for (size_t i = 0; i < r->event_count; i++) {
        const struct rp_event *e = &r->events[i];
        bool policy = strcmp(e->kind, "policy") == 0;
        const char *color = policy ? policy_color(e->to) : "#d62728";
        double x = sx(&s, e->time_ns);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                "stroke-dasharray=\"3,3\"/>\n",
                x, TOP, x, TOP + PLOT_H, color);
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x,
                sy(&s, e->footprint_bytes), color);
        label_x = x - 3 > label_x + 12 ? x - 3 : label_x + 12;
        fprintf(out,
                "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" fill=\"%s\" transform=\"rotate(-90 "
                "%.1f %d)\">",
                label_x, TOP + PLOT_H - 4, color, label_x, TOP + PLOT_H - 4);
        tx_xml(out, policy ? e->to : e->kind);
        fprintf(out, "</text>\n");
    }

    /* The counter (thin) and the footprint (bold). */
    fprintf(out, "<polyline fill=\"none\" stroke=\"#7f7f7f\" stroke-width=\"1.2\" points=\"");
    for (size_t i = 0; i < counter_n; i++)
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", sx(&s, counter[i].time_ns),
                sy(&s, counter[i].bytes));
    fprintf(out, "\"/>\n");
    fprintf(out, "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2.5\" points=\"");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", sx(&s, fp[i].time_ns), sy(&s, fp[i].bytes));
    fprintf(out, "\"/>\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#1f5fbf\"/>\n",
                sx(&s, fp[i].time_ns), sy(&s, fp[i].bytes));

    /* Legend. */
    int lx = LEFT + PLOT_W + 6, ly = TOP + PLOT_H - 40;
    fprintf(
        out,
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f5fbf\" stroke-width=\"2.5\"/>"
        "<text x=\"%d\" y=\"%d\" font-size=\"11\">footprint</text>\n",
        lx, ly, lx + 18, ly, lx + 22, ly + 4);
    fprintf(
        out,
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#7f7f7f\" stroke-width=\"1.2\"/>"
        "<text x=\"%d\" y=\"%d\" font-size=\"11\">counter</text>\n",
        lx, ly + 16, lx + 18, ly + 16, lx + 22, ly + 20);
    fprintf(out, "</svg>\n");
    free(fp);
    free(counter);
    if (fclose(out) != 0) {
        fprintf(stderr, "membudget report: cannot write %s\n", path);
        return false;
    }
    return true;
}
