/* Symbolization for the report tool: libdwfl places each module's file at the
 * load bias the dump recorded, then answers "which function and which line" for
 * every frame.  A module whose file is missing, or whose build-id differs from
 * the one recorded (the file was rebuilt or upgraded since), is not used: its
 * frames keep their module+offset form rather than take wrong names. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "tools/report_model.h"

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

/* The file's GNU build-id in hex, into out; "" when it has none.  False when
 * the file is not a readable ELF object. */
static bool file_build_id(const char *path, char *out, size_t cap) {
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool ok = elf != NULL && elf_kind(elf) == ELF_K_ELF;
    if (ok) {
        const void *id;
        ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
        static const char digits[] = "0123456789abcdef";
        for (ssize_t i = 0; i < n && (size_t)(2 * i + 2) < cap; i++) {
            unsigned char c = ((const unsigned char *)id)[i];
            out[2 * i] = digits[c >> 4];
            out[2 * i + 1] = digits[c & 15];
            out[2 * i + 2] = '\0';
        }
    }
    if (elf != NULL) elf_end(elf);
    close(fd);
    return ok;
}

void rp_symbolize(struct rp_report *r) {
    elf_version(EV_CURRENT);
    Dwfl *dwfl = dwfl_begin(&callbacks);
    if (dwfl == NULL) return;
    dwfl_report_begin(dwfl);
    for (size_t i = 0; i < r->module_count; i++) {
        struct rp_module *m = &r->modules[i];
        char id[256];
        if (m->path[0] != '/' || !file_build_id(m->path, id, sizeof id)) {
            m->state = RP_MODULE_MISSING;
            continue;
        }
        if (m->build_id[0] != '\0' && strcmp(id, m->build_id) != 0) {
            m->state = RP_MODULE_MISMATCH;
            continue;
        }
        /* ET_DYN placed at its bias; ET_EXEC where it was linked. */
        if (dwfl_report_elf(dwfl, m->name, m->path, -1, m->base, true) == NULL) {
            m->state = RP_MODULE_MISSING;
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
                frame->function = strdup(name);
                frame->function_offset = offset + 1;
            }
            Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
            int lineno = 0;
            const char *file =
                line != NULL ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
            if (file != NULL && lineno > 0) {
                frame->file = strdup(file);
                frame->line = lineno;
            }
        }
    }
    dwfl_end(dwfl);
}
