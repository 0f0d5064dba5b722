/* The report tool's picture of a dump (tools/report*.c): the JSON document
 * read into plain structures, with the frames resolved to modules and, where
 * the files are at hand, to functions and lines.  Shared by the loader and
 * the text output (report.c), the symbolizer (report_symbols.c) and the SVG
 * writer (report_svg.c). */
#ifndef MEMBUDGET_TOOLS_REPORT_MODEL_H
#define MEMBUDGET_TOOLS_REPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "alloc/fmt.h" /* mb_bytes_text: sizes as the library writes them */
#include "policy/stats_list.h"

#define RP_NOTES_MAX 8
/* The largest dump read (docs/dump.md): a real one with every site of the
 * table (16,384 stacks of 32 frames) takes about 12 MiB; memory and time are
 * proportional to the size read (about 15 bytes of memory per byte). */
#define RP_DUMP_MAX_BYTES ((size_t)32 << 20)
/* Frames read per site (the writer keeps 32) and the longest module path (the
 * kernel's PATH_MAX). */
#define RP_FRAMES_MAX 256
#define RP_PATH_MAX 4096
/* Calls inlined at one address expanded from the DWARF (the deepest kept),
 * and the longest symbol demangled (a longer one keeps its linkage name). */
#define RP_INLINE_MAX 16
#define RP_DEMANGLE_MAX 4096
/* Module files read for symbols: the largest, and how many. */
#define RP_MODULE_MAX_BYTES ((uint64_t)4 << 30)
#define RP_MODULE_FILES_MAX 4096

enum rp_module_state {
    RP_MODULE_UNREAD = 0, /* symbols not asked for (--no-symbols) */
    RP_MODULE_READ,       /* its file was found and matches the build-id */
    RP_MODULE_MISSING,    /* no readable ELF file at the path */
    RP_MODULE_MISMATCH,   /* a file is there, with another build-id */
    RP_MODULE_IRREGULAR,  /* not opened: not a regular file (a FIFO, a device, a
                             symbolic link, a directory) */
    RP_MODULE_TOO_LARGE   /* not read: larger than RP_MODULE_MAX_BYTES */
};

struct rp_module {
    const char *path;      /* as displayed: UTF-8 */
    const char *open_path; /* the exact bytes to open ("path_bytes"); NULL: path */
    const char *name;      /* the path's last component */
    uint64_t base;    /* load bias */
    uint64_t start, end;
    const char *build_id; /* hex; "" when the dump has none */
    enum rp_module_state state;
};

struct rp_frame {
    uint64_t address;               /* a return address, as recorded */
    const struct rp_module *module; /* NULL: in no recorded module */
    char *function;                 /* NULL: no symbol */
    uint64_t function_offset;       /* of the return address */
    char *file;                     /* NULL: no line information */
    int line;
    /* The linkage name when `function` is its demangled form (C++), for
     * --json; NULL when the symbol was not mangled or not demangled. */
    char *mangled;
    /* A call the compiler inlined into the frame after it: the same address,
     * expanded from the DWARF (DW_TAG_inlined_subroutine). */
    bool inlined;
};

struct rp_site {
    size_t order; /* its place in the dump: equal estimates keep it */
    uint64_t est_bytes, est_objects, live_samples, live_sampled_bytes, total_samples;
    bool unrecorded; /* samples whose stack could not be recorded */
    /* The writer kept the innermost sampling.max_frames frames and the stack
     * had at least that many: its outer frames may be missing. */
    bool truncated;
    size_t frame_count;
    struct rp_frame *frames; /* innermost first */
};

struct rp_event {
    uint64_t time_ns, footprint_bytes, threshold_bytes, released_bytes;
    const char *kind, *from, *to;
};

struct rp_tick {
    uint64_t time_ns, footprint_bytes, counter_bytes, baseline_bytes;
    const char *policy;
};

#define RP_FIGURE(name, page, api, dump, ...) MB_IF_##dump(uint64_t name;)
#define RP_THRESHOLD(stem, label, zero, page, help)                                                \
    uint64_t stem##_bytes;                                                                         \
    const char *stem##_source;

struct rp_report {
    json_t *root;
    const char *path; /* of the dump */
    const char *reason, *comm, *version;
    uint64_t pid, uptime_ns, time_unix_ns;
    json_t *limit, *footprint, *policy, *sampling; /* objects (never NULL) */
    /* The thresholds of "limit" and the figures of "footprint", from the list
     * (policy/stats_list.h): stem_bytes and stem_source, and each figure the
     * dump writes there under its name. */
    MB_STATS(RP_FIGURE, RP_THRESHOLD, MB_STATS_NONE)
    uint64_t footprint_bytes; /* footprint.bytes: the one the decision was taken on */
    struct rp_event *events;
    size_t event_count;
    struct rp_tick *ticks;
    size_t tick_count;
    struct rp_site *sites;
    size_t site_count;
    uint64_t sites_est_bytes; /* all sites together */
    size_t max_frames;        /* sampling.max_frames: frames the writer kept per stack */
    struct rp_module *modules;
    size_t module_count;
    /* rp_symbolize expands inlined calls into frames of their own, replacing
     * each site's frames with a malloc'd array, and keeps the mangled names.
     * Without it (a caller's fixed frame arrays: tools/livestats.c) the frames
     * stay in place, one per address, and only the demangled names are kept. */
    bool expand_frames;
    /* What the reader set aside (a number out of range, a frame list cut):
     * the first RP_NOTES_MAX, and how many there were. */
    char *notes[RP_NOTES_MAX];
    size_t note_count;
};


/* Members of a JSON object, with defaults when absent or of another type:
 * 0, "" and an empty object.  Addresses may be numbers or "0x..." strings.
 * Numbers are read once the loader has checked them (0 to 2^63 - 1). */
uint64_t rp_u64(const json_t *obj, const char *key);
const char *rp_str(const json_t *obj, const char *key);
uint64_t rp_address(const json_t *value);

/* report.c: the dump in text (len bytes; rewritten in place: see
 * guard_numbers) read into r; false, with one line on stderr naming path, when
 * it is not a report.  The outputs, to stdout.  rp_free releases what rp_load
 * and rp_symbolize took. */
bool rp_load(struct rp_report *r, char *text, size_t len, const char *path);
void rp_print_text(const struct rp_report *r, size_t max_sites, size_t max_frames);
void rp_print_folded(const struct rp_report *r);
void rp_print_json(const struct rp_report *r);
void rp_free(struct rp_report *r);
/* A frame's name: "function", else "module+0xoffset", else "0xaddress". */
void rp_frame_name(const struct rp_frame *f, char *buf, size_t cap);
/* A JSON string of s, bytes that are not UTF-8 as U+FFFD (a new reference). */
json_t *rp_json_text(const char *s);
/* A frame as --json writes it (a new reference). */
json_t *rp_frame_json(const struct rp_frame *f);
/* A number as --json writes it: past INT64_MAX, INT64_MAX (a new reference). */
json_t *rp_u64_json(uint64_t v);
/* A site's marks ("unrecorded", "truncated") and its "frames" array, set on o
 * as --json and --diff --json write them. */
void rp_site_stack_json(json_t *o, const struct rp_site *s);
/* A byte count in the one byte form, for printf's %s: each call gets its own
 * buffer of a ring of 16, so that several can stand in one printf. */
const char *rp_bytes(uint64_t bytes);
/* The frame that ends a stack the writer cut: "[stack cut at 32 frames]". */
const char *rp_truncation_mark(const struct rp_report *r);
/* A site's stack as one folded line, outermost frame first, names as on the
 * terminal with ';' as ':' (malloc'd); a cut stack starts at the mark. */
char *rp_folded_stack(const struct rp_report *r, const struct rp_site *s);
/* Reads the dump at path into r (rp_load); false, with one line on stderr,
 * when it cannot be read or is not a report. */
bool rp_load_file(struct rp_report *r, const char *path);

/* report_symbols.c: resolves every frame's function and line from the module
 * files the dump names, demangles C++ names and expands inlined calls into
 * frames of their own; modules get their state. */
void rp_symbolize(struct rp_report *r);
/* The demangled form of a C++ linkage name ("_Z..."), malloc'd; NULL when s is
 * not one or the system's demangler (libstdc++'s __cxa_demangle) refuses it. */
char *rp_demangle(const char *s);

/* report_svg.c: the footprint timeline with the thresholds and the policy
 * changes; false when the file cannot be written. */
bool rp_write_svg(const struct rp_report *r, const char *path);
/* The same picture to out (inside an HTML page: no XML declaration). */
bool rp_svg_to(const struct rp_report *r, FILE *out, bool xml_declaration);

/* report_html.c: one self-contained page (no network): the flame graph of
 * live bytes by stack, zoomable and searchable, the timeline, the limit's
 * derivation and the allocator section; false when the file cannot be
 * written. */
bool rp_write_html(const struct rp_report *r, const char *path);

#endif
