/* The machine-readable outputs of `membudget stat`: one process's JSON object
 * (`stat PID --json`), the document of every process (`stat --all --json`),
 * and one Prometheus text exposition for one or many processes (`stat PID
 * --prometheus`, `stat --all --prometheus`).  Formats: docs/json.md and
 * membudget(1).  Text from pages and /proc is escaped for where it goes
 * (tools/textout.h; label values as the exposition format says). */
#ifndef MEMBUDGET_TOOLS_STAT_OUT_H
#define MEMBUDGET_TOOLS_STAT_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tools/livestats.h"

/* /proc/<pid>/cmdline with its NULs and newlines as spaces ("" when it
 * cannot be read), cut to fit cap. */
void stat_read_cmdline(pid_t pid, char *out, size_t cap);

/* The footprint as a percentage of the limit (0 when there is none). */
double stat_limit_percent(const struct mb_statspage *p);

/* The `stat --json` object of lp on stdout, each line after the first led by
 * indent, without a newline after its closing brace. */
void stat_json_object(const struct live_process *lp, const char *indent);

/* The `stat --all --json` document: its version, the age bound, what the
 * scan could not show, and every process's object. */
void stat_json_all(const struct live_scan *scan);

/* One exposition for count processes: each metric's HELP and TYPE once, then
 * one sample per process that has the metric, labelled pid and comm.  false
 * (nothing written) when memory for it cannot be had. */
bool stat_prometheus(const struct live_process *procs, size_t count);

#endif
