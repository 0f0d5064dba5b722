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

#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "tools/report_model.h"

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

void rp_symbolize(struct rp_report *r) {
    elf_version(EV_CURRENT);
    Dwfl *dwfl = dwfl_begin(&callbacks);
    if (dwfl == NULL) return;
    dwfl_report_begin(dwfl);
    size_t files = 0;
    bool *lines = calloc(r->module_count ? r->module_count : 1, sizeof *lines);
    if (lines == NULL) {
        dwfl_end(dwfl);
        return;
    }
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
    for (size_t s = 0; s < r->site_count; s++) {
        struct rp_site *site = &r->sites[s];
        for (size_t f = 0; f < site->frame_count; f++) {
            struct rp_frame *frame = &site->frames[f];
            const struct rp_module *m = frame->module;
            if (m == NULL || m->state != RP_MODULE_READ || frame->address == 0) continue;
            /* A return address: the call is the instruction before it. */
            Dwarf_Addr pc = frame->address - 1;
            Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
            if (mod == NULL) continue;
            GElf_Off offset = 0;
            GElf_Sym sym;
            const char *name = dwfl_module_addrinfo(mod, pc, &offset, &sym, NULL, NULL, NULL);
            if (name != NULL) {
                frame->function = name_copy(name);
                frame->function_offset = offset + 1;
            }
            if (!lines[m - r->modules]) continue; /* the symbol's name only */
            Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
            int lineno = 0;
            const char *file =
                line != NULL ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
            if (file != NULL && lineno > 0) {
                frame->file = name_copy(file);
                frame->line = lineno;
            }
        }
    }
    free(lines);
    dwfl_end(dwfl);
}
