/* Symbolization for the report tool: libdwfl places each module's file at the
 * load bias the dump recorded, then answers "which function and which line" for
 * every frame.  A module whose file is missing, or whose build-id differs from
 * the one recorded (the file was rebuilt or upgraded since), is not used: its
 * frames keep their module+offset form rather than take wrong names.  The
 * paths come from the dump, written by a process that may belong to someone
 * else: only regular files are opened, without blocking or following a link,
 * and libdwfl reads them through the descriptor checked here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "tools/report_model.h"
#include "tools/report_index.h"

/* Separate debug files are looked for under /usr/lib/debug only (by build-id,
 * or by the debug link's name in the module's directory mirrored there), never
 * beside the module: that directory, like the module's path, comes from the
 * dump, and libdwfl opens what it finds there itself, blocking. */
static char *debuginfo_path = "/usr/lib/debug";

/* The standard search, kept to the system's debug directory: a debug link
 * (a name read from the module file) that is not a plain file name is not
 * followed, so that it cannot lead out of that directory. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name) {
    if (debuglink_file != NULL && debuglink_file[0] != '/' &&
        (strchr(debuglink_file, '/') != NULL || strcmp(debuglink_file, "..") == 0)) {
        errno = 0;
        return -1;
    }
    return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
}

/* Modules are reported with a file descriptor (open_module), so libdwfl never
 * looks for the main file itself. */
static int find_elf_none(Dwfl_Module *mod, void **userdata, const char *modname,
                         Dwarf_Addr base, char **file_name, Elf **elfp) {
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name, (void)elfp;
    errno = 0;
    return -1;
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = find_elf_none,
    .find_debuginfo = find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

/* Opens a module file for reading only when it is a regular file no larger
 * than RP_MODULE_MAX_BYTES: never a FIFO (which would block), a device (whose
 * open may act), a symbolic link in the last component, or a directory.  The
 * kind is checked before opening (lstat) and again on what was opened
 * (fstat), so a file swapped in between is refused too.  Returns the
 * descriptor, or -1 with the module's state set. */
static int open_module(struct rp_module *m) {
    const char *path = m->open_path != NULL ? m->open_path : m->path;
    struct stat before, st;
    if (lstat(path, &before) != 0) {
        m->state = RP_MODULE_MISSING;
        return -1;
    }
    if (!S_ISREG(before.st_mode)) {
        m->state = RP_MODULE_IRREGULAR;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        m->state = errno == ELOOP ? RP_MODULE_IRREGULAR : RP_MODULE_MISSING;
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != before.st_dev ||
        st.st_ino != before.st_ino) {
        m->state = RP_MODULE_IRREGULAR;
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > RP_MODULE_MAX_BYTES) {
        m->state = RP_MODULE_TOO_LARGE;
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether libdw, reading this file's DWARF, could open a file the dump's
 * writer chose: a .gnu_debugaltlink section (dwz) names the alternate debug
 * file, which libdw opens itself, blocking and following links, when it meets
 * a reference into it: first by build-id under /usr/lib/debug, then at the
 * name given (relative to the module's directory).  Only the system's debug
 * directory is trusted. */
static bool altlink_outside_system(Elf *elf) {
    size_t strndx;
    if (elf_getshdrstrndx(elf, &strndx) != 0) return true;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
        GElf_Shdr shdr;
        const char *name;
        if (gelf_getshdr(scn, &shdr) == NULL ||
            (name = elf_strptr(elf, strndx, shdr.sh_name)) == NULL ||
            strcmp(name, ".gnu_debugaltlink") != 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (data == NULL || data->d_buf == NULL || data->d_size == 0) return true;
        const char *alt = data->d_buf;
        const char *nul = memchr(alt, '\0', data->d_size);
        if (nul == NULL) return true;
        const unsigned char *id = (const unsigned char *)nul + 1;
        size_t id_len = data->d_size - (size_t)(nul + 1 - alt);
        if (id_len >= 3 && id_len <= 64) {
            char path[sizeof "/usr/lib/debug/.build-id/" + 2 * 64 + sizeof ".debug"];
            int n = snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%02x/", id[0]);
            for (size_t i = 1; i < id_len; i++)
                n += snprintf(path + n, sizeof path - (size_t)n, "%02x", id[i]);
            snprintf(path + n, sizeof path - (size_t)n, ".debug");
            struct stat st;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return false;
        }
        return strncmp(alt, "/usr/lib/debug/", 15) != 0 || strstr(alt, "/../") != NULL;
    }
    return false;
}

/* The GNU build-id in hex of the ELF file open at fd, into out; "" when it
 * has none; *lines false when its line information must not be read
 * (altlink_outside_system).  False when it is not an ELF object. */
static bool file_build_id(int fd, char *out, size_t cap, bool *lines) {
    out[0] = '\0';
    *lines = false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool ok = elf != NULL && elf_kind(elf) == ELF_K_ELF;
    if (ok) {
        const void *id;
        ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
        size_t fit = cap > 0 ? (cap - 1) / 2 : 0; /* whole pairs only */
        struct mb_buf b = mb_buf_on(out, cap);
        mb_buf_hex_bytes(&b, id, n < 0 ? 0 : (size_t)n < fit ? (size_t)n : fit);
        *lines = !altlink_outside_system(elf);
    }
    if (elf != NULL) elf_end(elf);
    return ok;
}

/* A symbol or file name from a module file, of a bounded length. */
static char *name_copy(const char *s) {
    return strndup(s, RP_PATH_MAX);
}

/* libstdc++'s demangler (the Itanium C++ ABI's abi::__cxa_demangle), through
 * its C symbol: the result is malloc'd, status 0 on success.  Its recursion is
 * bounded by the demangler itself; the length of what it is given, here. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *length, int *status);

char *rp_demangle(const char *s) {
    if (s == NULL || strncmp(s, "_Z", 2) != 0 || strnlen(s, RP_DEMANGLE_MAX + 1) > RP_DEMANGLE_MAX)
        return NULL;
    int status = -1;
    char *d = __cxa_demangle(s, NULL, NULL, &status);
    if (status != 0 || d == NULL) {
        free(d);
        return NULL;
    }
    char *copy = name_copy(d);
    free(d);
    return copy;
}

/* The function name for a frame: demangled when it is a C++ linkage name (the
 * linkage name then kept in f->mangled). */
static void set_function(struct rp_frame *f, const char *name) {
    char *d = rp_demangle(name);
    if (d != NULL) {
        f->function = d;
        f->mangled = name_copy(name);
    } else {
        f->function = name_copy(name);
    }
}

/* The name of a subprogram or inlined subroutine DIE: its linkage name (to be
 * demangled), else (die_qualified_name, into buf) its DW_AT_name qualified by the namespaces and
 * classes around its declaration ("shapes::make_cells": a function with
 * internal linkage has no linkage name), following DW_AT_abstract_origin and
 * DW_AT_specification.  False when it has no name. */
static const char *die_linkage_name(Dwarf_Die *die) {
    Dwarf_Attribute attr;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != NULL ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != NULL)
        return dwarf_formstring(&attr);
    return NULL;
}

static bool is_c(int lang) {
    return lang == DW_LANG_C89 || lang == DW_LANG_C || lang == DW_LANG_C99 ||
           lang == DW_LANG_C11 || lang == 0x2c /* DW_LANG_C17 */;
}

static bool die_qualified_name(struct rp_scopes *units, Dwarf_Die *die, char *buf, size_t cap) {
    Dwarf_Attribute attr;
    const char *name = NULL;
    if (dwarf_attr_integrate(die, DW_AT_name, &attr) == NULL ||
        (name = dwarf_formstring(&attr)) == NULL)
        return false;
    /* The declaration: where the name was found. */
    Dwarf_Die decl = *die, next;
    for (int hops = 0; hops < 8; hops++) {
        if (dwarf_formref_die(dwarf_attr(&decl, DW_AT_abstract_origin, &attr), &next) == NULL &&
            dwarf_formref_die(dwarf_attr(&decl, DW_AT_specification, &attr), &next) == NULL)
            break;
        decl = next;
    }
    struct mb_buf b = mb_buf_on(buf, cap);
    Dwarf_Die *scopes = NULL;
    /* C has no namespaces or classes around a function: its unit (with
     * link-time optimization, often not the unit of the call) is not walked. */
    Dwarf_Die unit;
    bool c = dwarf_diecu(&decl, &unit, NULL, NULL) != NULL && is_c(dwarf_srclang(&unit));
    int n = c ? 0 : rp_scopes_die(units, &decl, &scopes);
    /* scopes[0] is the declaration, then each scope around it outwards. */
    for (int i = n - 1; i > 0; i--) {
        int tag = dwarf_tag(&scopes[i]);
        const char *scope = dwarf_diename(&scopes[i]);
        if (scope == NULL || (tag != DW_TAG_namespace && tag != DW_TAG_class_type &&
                              tag != DW_TAG_structure_type && tag != DW_TAG_union_type))
            continue;
        mb_buf_str(&b, scope);
        mb_buf_str(&b, "::");
    }
    free(scopes);
    mb_buf_str(&b, name);
    return true;
}

/* Where an inlined subroutine was called from: DW_AT_call_file (an index in
 * the file table of the DIE's own unit, else cudie's) and DW_AT_call_line. */
static void call_site(Dwarf_Die *cudie, Dwarf_Die *inlined, const char **file, int *line) {
    *file = NULL;
    *line = 0;
    Dwarf_Attribute attr;
    Dwarf_Word index, lineno;
    Dwarf_Files *files;
    size_t nfiles;
    Dwarf_Die own;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &index) != 0 ||
        dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &lineno) != 0 || lineno == 0 ||
        lineno > INT32_MAX)
        return;
    if ((dwarf_diecu(inlined, &own, NULL, NULL) == NULL ||
         dwarf_getsrcfiles(&own, &files, &nfiles) != 0) &&
        dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
        return;
    if (index >= nfiles) return;
    *file = dwarf_filesrc(files, index, NULL, NULL);
    *line = (int)lineno;
}

/* The line of pc into frame, without inlined calls. */
static void line_of(Dwfl_Module *mod, Dwarf_Addr pc, struct rp_frame *frame) {
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    int lineno = 0;
    const char *file = line != NULL ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file != NULL && lineno > 0) {
        frame->file = name_copy(file);
        frame->line = lineno;
    }
}

/* A site's frames, growing as inlined calls are inserted. */
struct frame_list {
    struct rp_frame *frames;
    size_t count, cap;
};

static struct rp_frame *frame_push(struct frame_list *l) {
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        struct rp_frame *grown = realloc(l->frames, cap * sizeof *grown);
        if (grown == NULL) return NULL;
        l->frames = grown;
        l->cap = cap;
    }
    struct rp_frame *f = &l->frames[l->count++];
    *f = (struct rp_frame){0};
    return f;
}

/* A copy of f that owns its own strings (a string that cannot be copied is
 * left out). */
static struct rp_frame frame_copy(const struct rp_frame *f) {
    struct rp_frame c = *f;
    c.function = f->function != NULL ? strdup(f->function) : NULL;
    c.file = f->file != NULL ? strdup(f->file) : NULL;
    c.mangled = f->mangled != NULL ? strdup(f->mangled) : NULL;
    return c;
}

static void frame_release(struct rp_frame *f) {
    free(f->function);
    free(f->file);
    free(f->mangled);
}

/* The frames an address resolved to, for the sites that share it (their outer
 * frames mostly): an open-addressing table of addresses, each naming its
 * frames in `frames`.  Looking a return address up (its symbol, its line,
 * the scopes around it) costs far more than the copy. */
struct memo_slot {
    uint64_t address; /* 0: empty (a frame at 0 is never resolved) */
    size_t first, count;
};

struct memo {
    struct memo_slot *slots;
    size_t mask;
    struct frame_list frames;
};

static struct memo_slot *memo_find(struct memo *m, uint64_t address) {
    if (m->slots == NULL) return NULL;
    size_t i = (size_t)((address * 0x9e3779b97f4a7c15u) >> 20) & m->mask;
    while (m->slots[i].address != 0 && m->slots[i].address != address) i = (i + 1) & m->mask;
    return &m->slots[i];
}

/* An inlined call's frame at file:lineno (none when file is NULL), pushed
 * on l: named by the DIE's linkage name, else its qualified name. */
static void push_inlined(struct rp_scopes *units, Dwarf_Die *die, const struct rp_frame *frame,
                         const char *file, int lineno, struct frame_list *l) {
    const char *linkage = die_linkage_name(die);
    char name[RP_DEMANGLE_MAX];
    bool named = linkage == NULL && die_qualified_name(units, die, name, sizeof name);
    struct rp_frame *f = frame_push(l);
    if (f == NULL) return;
    f->address = frame->address;
    f->module = frame->module;
    f->inlined = true;
    if (linkage != NULL)
        set_function(f, linkage);
    else if (named)
        f->function = name_copy(name);
    if (file != NULL) {
        f->file = name_copy(file);
        f->line = lineno;
    }
}

/* The frame at pc (symbolized in *frame already, its line still to set) and
 * the calls inlined there, innermost first, into l: the innermost inlined
 * callee at the line of pc; each caller (an inlined call, then the function
 * itself, the ELF symbol, last) at the call site of the callee inside it, as
 * addr2line -i lists them.  Without inlined calls, the frame alone with the
 * line of pc. */
static void expand_frame(struct rp_scopes *units, Dwfl_Module *mod, Dwarf_Addr pc,
                         struct rp_frame *frame, struct frame_list *l) {
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    int lineno = 0;
    const char *file = line != NULL ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file == NULL || lineno <= 0) file = NULL;

    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cudie != NULL ? rp_scopes_path(units, cudie, pc - bias, &scopes) : 0;
    /* The deepest RP_INLINE_MAX are kept: the outer ones are left out (their
     * call sites still followed, so that the function's line is its own). */
    size_t seen = 0;
    for (int i = 0; i < n && dwarf_tag(&scopes[i]) != DW_TAG_subprogram; i++) {
        if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine) continue;
        if (seen++ < RP_INLINE_MAX) push_inlined(units, &scopes[i], frame, file, lineno, l);
        call_site(cudie, &scopes[i], &file, &lineno); /* where the caller is */
    }
    free(scopes);
    struct rp_frame *f = frame_push(l);
    if (f == NULL) {
        free(frame->function);
        free(frame->mangled);
        return;
    }
    *f = *frame;
    if (file != NULL) {
        f->file = name_copy(file);
        f->line = lineno;
    }
}

/* Reports each module of the dump whose file can be trusted to dwfl (the
 * module's state set), at most RP_MODULE_FILES_MAX files; lines[i] true when
 * module i's line information may be read (file_build_id). */
static void report_modules(Dwfl *dwfl, struct rp_report *r, bool *lines) {
    size_t files = 0;
    dwfl_report_begin(dwfl);
    for (size_t i = 0; i < r->module_count; i++) {
        struct rp_module *m = &r->modules[i];
        char id[256];
        if (m->path[0] != '/') {
            m->state = RP_MODULE_MISSING;
            continue;
        }
        if (files == RP_MODULE_FILES_MAX) continue; /* stays "not read" */
        files++;
        int fd = open_module(m);
        if (fd < 0) continue;
        if (!file_build_id(fd, id, sizeof id, &lines[i])) {
            m->state = RP_MODULE_MISSING;
            close(fd);
            continue;
        }
        if (m->build_id[0] != '\0' && strcmp(id, m->build_id) != 0) {
            m->state = RP_MODULE_MISMATCH;
            close(fd);
            continue;
        }
        /* ET_DYN placed at its bias; ET_EXEC where it was linked.  libdwfl
         * reads the file through fd, the one checked, and closes it at
         * dwfl_end (not when it refuses the module). */
        const char *path = m->open_path != NULL ? m->open_path : m->path;
        if (dwfl_report_elf(dwfl, m->name, path, fd, m->base, true) == NULL) {
            m->state = RP_MODULE_MISSING;
            close(fd);
            continue;
        }
        m->state = RP_MODULE_READ;
    }
    dwfl_report_end(dwfl, NULL, NULL);
}

/* What rp_symbolize works with. */
struct symbolizer {
    struct rp_report *r;
    Dwfl *dwfl;
    const bool *lines; /* per module: its line information may be read */
    struct memo memo;
    struct rp_scopes *units;      /* the scopes of each unit a frame falls in, indexed once */
    struct rp_symtab *symtabs;    /* per module; NULL: none (one lookup per address) */
};

/* Names site->frames[f]: in place without expansion; else its frames (the
 * calls inlined at its address, then itself) appended to l, from the memo
 * when its address was met before. */
static void symbolize_frame(struct symbolizer *z, struct rp_site *site, size_t f,
                            struct frame_list *l) {
    struct rp_report *r = z->r;
    struct rp_frame frame = site->frames[f];
    const struct rp_module *m = frame.module;
    Dwfl_Module *mod = NULL;
    struct memo_slot *known = r->expand_frames && m != NULL && m->state == RP_MODULE_READ
                                  ? memo_find(&z->memo, frame.address)
                                  : NULL;
    if (known != NULL && known->address != 0) {
        for (size_t k = 0; k < known->count; k++) {
            struct rp_frame *slot = frame_push(l);
            if (slot != NULL) *slot = frame_copy(&z->memo.frames.frames[known->first + k]);
        }
        return;
    }
    size_t before = l->count;
    /* A return address: the call is the instruction before it. */
    Dwarf_Addr pc = frame.address - 1;
    if (m != NULL && m->state == RP_MODULE_READ && frame.address != 0)
        mod = dwfl_addrmodule(z->dwfl, pc);
    if (mod != NULL) {
        GElf_Off offset = 0;
        struct rp_symtab *t = z->symtabs != NULL ? &z->symtabs[m - r->modules] : NULL;
        const char *name = rp_symtab_addrinfo(t, mod, pc, &offset);
        if (name != NULL) {
            set_function(&frame, name);
            frame.function_offset = offset + 1;
        }
    }
    if (!r->expand_frames) {
        free(frame.mangled);
        frame.mangled = NULL;
        if (mod != NULL && z->lines[m - r->modules]) line_of(mod, pc, &frame);
        site->frames[f] = frame;
    } else if (mod != NULL && z->lines[m - r->modules]) {
        expand_frame(z->units, mod, pc, &frame, l);
    } else {
        struct rp_frame *slot = frame_push(l);
        if (slot != NULL) {
            *slot = frame;
        } else {
            free(frame.function);
            free(frame.mangled);
        }
    }
    if (known != NULL && frame.address != 0) {
        known->address = frame.address;
        known->first = z->memo.frames.count;
        for (size_t k = before; k < l->count; k++) {
            struct rp_frame *slot = frame_push(&z->memo.frames);
            if (slot == NULL) break;
            *slot = frame_copy(&l->frames[k]);
        }
        known->count = z->memo.frames.count - known->first;
    }
}

void rp_symbolize(struct rp_report *r) {
    elf_version(EV_CURRENT);
    struct symbolizer z = {.r = r, .dwfl = dwfl_begin(&callbacks)};
    if (z.dwfl == NULL) return;
    bool *lines = calloc(r->module_count ? r->module_count : 1, sizeof *lines);
    if (lines == NULL) {
        dwfl_end(z.dwfl);
        return;
    }
    report_modules(z.dwfl, r, lines);
    z.lines = lines;
    /* The memo holds at most one slot per frame read, at most half full. */
    size_t frames_read = 0;
    for (size_t s = 0; s < r->site_count; s++) frames_read += r->sites[s].frame_count;
    if (r->expand_frames && frames_read > 0) {
        size_t slots = 16;
        while (slots < 2 * frames_read) slots *= 2;
        z.memo.slots = calloc(slots, sizeof *z.memo.slots);
        z.memo.mask = slots - 1;
    }
    if (r->expand_frames) {
        z.units = rp_scopes_new();
        z.symtabs = calloc(r->module_count ? r->module_count : 1, sizeof *z.symtabs);
    }
    for (size_t s = 0; s < r->site_count; s++) {
        struct rp_site *site = &r->sites[s];
        struct frame_list l = {0};
        for (size_t f = 0; f < site->frame_count; f++) symbolize_frame(&z, site, f, &l);
        if (!r->expand_frames || l.frames == NULL) continue; /* in place */
        free(site->frames);
        site->frames = l.frames;
        site->frame_count = l.count;
    }
    for (size_t k = 0; k < z.memo.frames.count; k++) frame_release(&z.memo.frames.frames[k]);
    free(z.memo.frames.frames);
    free(z.memo.slots);
    rp_scopes_free(z.units);
    for (size_t i = 0; z.symtabs != NULL && i < r->module_count; i++)
        rp_symtab_release(&z.symtabs[i]);
    free(z.symtabs);
    free(lines);
    dwfl_end(z.dwfl);
}
