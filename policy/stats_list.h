/* The statistics the library publishes, each named once, as mimalloc lists its
 * counters: MB_STATS(FIGURE, THRESHOLD, TEXT) calls one of the three row macros
 * per statistic, and each reader or writer defines the rows it needs and
 * passes MB_STATS_NONE for the others.  From this list come:
 *
 *   - the live page's figures and names (policy/statspage.h: struct
 *     mb_statspage, from `seq` to `limit_source`, in this order, and those
 *     appended after the top site's fields);
 *   - the threshold copies into the page (policy/statspage.c);
 *   - the dump's footprint and limit sections (policy/dump.c), and the
 *     _Static_asserts there that tie struct membudget_stats
 *     (include/membudget.h, written out: it is the ABI) to the api rows;
 *   - the page's reader (tools/livestats.c: live_figures[] and the checks of
 *     the names), and from it `membudget stat --json` and `--prometheus` and
 *     the figure columns of `membudget top` (tools/cmd_live.c);
 *   - the rows of `membudget limits`, text and --json (tools/cmd_limits.c);
 *   - the report tool's figures of a dump (tools/report_model.h, loaded in
 *     tools/report.c).
 *
 * What is not per field stays written out where it is: `stat`'s sentences,
 * `top`'s %LIM and other columns (tools/cmd_live.c), the report's text and
 * picture (tools/report.c, tools/report_svg.c),
 * where each figure's value comes from (policy/statspage.c, alloc/stats.c,
 * preload/public.c) and struct mb_limits (policy/limits.h).
 *
 * Adding a statistic:
 *   - a figure of struct membudget_stats: append the field to the struct in
 *     include/membudget.h (fields are only ever appended), fill it (alloc/ or
 *     preload/public.c), and add a FIGURE row with api yes (dump yes puts it
 *     in the dump's footprint section, and in the report tool's figures);
 *   - a threshold: the stem_bytes/stem_source pair in struct mb_limits,
 *     computed in policy/limits.c, and a THRESHOLD row with page no (the
 *     dump's limit section, `membudget limits`, the report tool follow);
 *   - a figure new to the live page: a row with page appended (a uint64_t
 *     after the top site's fields; a reader shows it only for pages whose
 *     writer had it), and its value in policy/statspage.c's fill() (a
 *     threshold's is copied there by itself).  The rows with page u64, u32
 *     and the TEXT rows are the page's first layout (MB_STATSPAGE_SIZE_V1):
 *     frozen, never reordered or changed.
 * Then docs/dump.md or docs/livepages.md. */
#ifndef MEMBUDGET_POLICY_STATS_LIST_H
#define MEMBUDGET_POLICY_STATS_LIST_H

/* FIGURE(name, page, api, dump, json, prom, top, title, help): a number.
 *   name  the field in each struct that carries it; the key of the dump,
 *         `stat --json` and the Prometheus metric (membudget_<name>; a
 *         counter gets "_total" unless its name ends so)
 *   page  u64, u32: a field of the page's first layout, in list order;
 *         appended: a uint64_t field at the end of the page, in list order;
 *         no: not in the page
 *   api   yes: a uint64_t field of struct membudget_stats
 *   dump  yes: written in the dump's "footprint" object from struct
 *         membudget_stats (so api yes too)
 *   json  yes: a member of `stat --json` (a page field)
 *   prom  gauge, counter: a metric of `stat --prometheus` (a page field); no
 *   top   its column in `membudget top`, 1 on (a page field; the columns
 *         between are top's own: 3, %LIM); 0: none.  title: the column's head
 *   help  what it is (the Prometheus HELP text)
 *
 * THRESHOLD(stem, label, zero, page, help): a byte figure of struct mb_limits
 * with where it came from, stem_bytes and stem_source.  The dump's "limit"
 * object and `membudget limits --json` carry both under those keys.
 *   label `membudget limits`'s name for it
 *   zero  what 0 means ("unknown", "none"), or NULL: 0 is a number
 *   page  u64 (first layout), appended: stem_bytes is also a page field (in
 *         `stat --json` and a gauge of `stat --prometheus`); no
 *
 * TEXT(name, size, key, prom): a NUL-terminated name in the page,
 * char name[size]; key: its `stat --json` member; prom: yes, a label of the
 * membudget_info metric named key. */
// clang-format off
#define MB_STATS(FIGURE, THRESHOLD, TEXT) \
    /*     name                  page api  dump json prom     top title     help */ \
    FIGURE(updated_unix_ns,      u64, no,  no,  yes, no,      0, NULL,     "CLOCK_REALTIME of the last update of the page.") \
    FIGURE(uptime_ns,            u64, no,  no,  yes, no,      0, NULL,     "Time since the budget started (start-up or fork).") \
    FIGURE(updates,              u64, no,  no,  yes, counter, 0, NULL,     "Updates of the live figures (monitor ticks).") \
    FIGURE(footprint_bytes,      u64, yes, no,  yes, gauge,   1, "FOOTPR", "Footprint as the budget sees it: counter + baseline.") \
    FIGURE(footprint_peak_bytes, u64, no,  no,  yes, gauge,   4, "PEAK",   "Highest footprint seen at a monitor tick.") \
    FIGURE(counter_bytes,        u64, yes, yes, yes, gauge,   5, "COUNTR", "Bytes committed by the allocator and charged anonymous mappings.") \
    FIGURE(counter_peak_bytes,   u64, yes, yes, yes, gauge,   0, NULL,     "Highest counter seen.") \
    FIGURE(baseline_bytes,       u64, yes, yes, yes, gauge,   6, "BASELN", "Anonymous memory the counter does not see.") \
    FIGURE(small_bytes,          no,  yes, yes, no,  no,      0, NULL,     "Committed small/medium pages, in use or cached.") \
    FIGURE(small_live_bytes,     no,  yes, yes, no,  no,      0, NULL,     "Bytes in small blocks handed out and not yet freed.") \
    FIGURE(large_bytes,          no,  yes, yes, no,  no,      0, NULL,     "Committed large spans, including the reuse cache.") \
    FIGURE(large_cached_bytes,   no,  yes, yes, no,  no,      0, NULL,     "Large spans kept for reuse.") \
    FIGURE(mmap_bytes,           no,  yes, yes, no,  no,      0, NULL,     "The application's charged anonymous mappings.") \
    FIGURE(meta_bytes,           no,  yes, yes, no,  no,      0, NULL,     "Allocator metadata.") \
    FIGURE(released_bytes,       no,  yes, yes, no,  no,      0, NULL,     "Bytes returned to the OS so far.") \
    FIGURE(pages_in_use,         no,  yes, yes, no,  no,      0, NULL,     "Small/medium pages holding blocks.") \
    FIGURE(pages_free,           no,  yes, yes, no,  no,      0, NULL,     "Committed pages waiting for reuse or release.") \
    FIGURE(threads,              no,  yes, yes, no,  no,      0, NULL,     "Thread heaps ever created.") \
    FIGURE(threads_live,         no,  yes, yes, no,  no,      0, NULL,     "Thread heaps owned by a running thread.") \
    FIGURE(chunks,               no,  yes, no,  no,  no,      0, NULL,     "Chunks reserved from the OS.") \
    FIGURE(os_bytes,             u64, no,  no,  yes, gauge,   0, NULL,     "The operating system's view the baseline comes from.") \
    THRESHOLD(phys,              "physical RAM",            "unknown", no,  "Physical RAM.") \
    THRESHOLD(cgroup,            "cgroup limit",            "none",    appended, "The smallest cgroup limit found.") \
    THRESHOLD(ram,               "ramSize",                 NULL,      no,  "ramSize, the jetsam model's memory size.") \
    THRESHOLD(kill,              "kill threshold",          NULL,      no,  "The kill threshold.") \
    FIGURE(limit_bytes,          u64, yes, no,  yes, gauge,   2, "LIMIT",  "The kill threshold.") \
    THRESHOLD(inactive_kill,     "inactive kill threshold", NULL,      no,  "The kill threshold of the process if inactive.") \
    THRESHOLD(base,              "base threshold",          NULL,      no,  "The base of the policy fractions.") \
    THRESHOLD(conservative,      "conservative",            NULL,      u64, "The Conservative policy threshold.") \
    THRESHOLD(strict,            "strict",                  NULL,      u64, "The Strict policy threshold.") \
    THRESHOLD(strict_sync,       "strict synchronous",      NULL,      u64, "The StrictSynchronous policy threshold.") \
    FIGURE(policy_events_total,  u64, no,  no,  yes, counter, 0, NULL,     "Policy history events recorded.") \
    FIGURE(policy,               u32, yes, no,  no,  gauge,   0, NULL,     "Policy: 0 unrestricted, 1 conservative, 2 strict, 3 strict-synchronous.") \
    FIGURE(pages,                u32, no,  no,  yes, no,      0, NULL,     "The jetsam model's page count.") \
    FIGURE(outside_policy,       appended, no, no, yes, gauge, 0, NULL,  "Policy the machine's and the container's memory ask for: 0 none, 1 conservative, 2 strict.") \
    FIGURE(outside_source,       appended, no, no, yes, gauge, 0, NULL,  "Source of outside_policy: 0 none, 1 memory PSI, 2 MemAvailable, 3 cgroup usage.") \
    FIGURE(psi_some,             appended, no, no, yes, gauge, 0, NULL,  "Memory PSI some avg10, in hundredths of a percent.") \
    FIGURE(psi_full,             appended, no, no, yes, gauge, 0, NULL,  "Memory PSI full avg10, in hundredths of a percent.") \
    FIGURE(mem_available_bytes,  appended, no, no, yes, gauge, 0, NULL,  "MemAvailable of the machine.") \
    FIGURE(mem_total_bytes,      appended, no, no, yes, gauge, 0, NULL,  "MemTotal of the machine.") \
    FIGURE(cgroup_usage_bytes,   appended, no, no, yes, gauge, 0, NULL,  "The memory cgroup's usage.") \
    TEXT(policy_name,            24,  "policy",           yes) \
    TEXT(action,                 8,   "action",           yes) \
    TEXT(state,                  12,  "state",            yes) \
    TEXT(footprint_source,       36,  "footprint_source", no) \
    TEXT(limit_source,           192, "limit_source",     yes)
// clang-format on

/* A row kind a user of the list does not need. */
#define MB_STATS_NONE(...)

/* The columns' words as code: MB_IF_##column(code) keeps code for yes. */
#define MB_IF_yes(...) __VA_ARGS__
#define MB_IF_no(...)
#define MB_BOOL_yes 1
#define MB_BOOL_no 0
/* page: the field of a page row, and code kept for page rows only. */
#define MB_PAGE_FIELD_u64(name) uint64_t name;
#define MB_PAGE_FIELD_u32(name) uint32_t name;
#define MB_PAGE_FIELD_appended(name)
#define MB_PAGE_FIELD_no(name)
#define MB_PAGE_APPENDED_FIELD_u64(name)
#define MB_PAGE_APPENDED_FIELD_u32(name)
#define MB_PAGE_APPENDED_FIELD_appended(name) uint64_t name;
#define MB_PAGE_APPENDED_FIELD_no(name)
#define MB_IF_PAGE_u64(...) __VA_ARGS__
#define MB_IF_PAGE_u32(...) __VA_ARGS__
#define MB_IF_PAGE_appended(...) __VA_ARGS__
#define MB_IF_PAGE_no(...)
/* prom: the metric type's name, NULL for no. */
#define MB_PROM_gauge "gauge"
#define MB_PROM_counter "counter"
#define MB_PROM_no NULL

/* How many api rows there are: struct membudget_stats has exactly these. */
#define MB_STATS_API_ROW(name, page, api, ...) MB_IF_##api(MB_STATS_API_##name, )
enum { MB_STATS(MB_STATS_API_ROW, MB_STATS_NONE, MB_STATS_NONE) MB_STATS_API_COUNT };

#endif
