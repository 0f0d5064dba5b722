/* The loaded modules, for the death dump (DESIGN §6): every ELF object mapped
 * into the process, with its path, load bias and GNU build-id, so that the
 * sampled return addresses can be symbolized later, by another program.
 *
 * On Linux (policy/modules_linux.c): read from /proc/self/maps with raw system
 * calls, and the ELF headers and notes with process_vm_readv on ourselves (a
 * page unmapped meanwhile gives an error, not a fault), else from the file.
 * No malloc, no stdio, no lock: not dl_iterate_phdr, whose loader lock a
 * thread in dlopen may hold while it allocates.  Callers serialize (one static
 * buffer); the dump's own flag does. */
#ifndef MEMBUDGET_POLICY_MODULES_H
#define MEMBUDGET_POLICY_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_MODULE_PATH_MAX 4096
#define MB_BUILD_ID_MAX 64 /* bytes; SHA-1 build-ids have 20 */

struct mb_module {
    const char *path; /* as /proc/self/maps shows it; "[vdso]" for the vDSO */
    uintptr_t bias;   /* run-time address minus the ELF file's virtual address */
    uintptr_t start;  /* the lowest and highest addresses of its mappings */
    uintptr_t end;
    uint8_t build_id[MB_BUILD_ID_MAX];
    unsigned build_id_len; /* 0: none found */
};

/* One line of /proc/self/maps, "start-end perms offset dev inode   path". */
struct mb_maps_line {
    uint64_t start, end, offset, inode;
    const char *path; /* "" for an anonymous mapping */
};
/* Calls fn for each line of /proc/self/maps, read with raw system calls into
 * buf (cap bytes, the caller's: callers serialize its use); a line longer than
 * buf is skipped.  Returns false when the file cannot be opened. */
bool mb_maps_each(char *buf, size_t cap, void (*fn)(void *ctx, const struct mb_maps_line *line),
                  void *ctx);

/* Calls fn once per ELF module, in address order; returns how many. */
unsigned mb_modules_each(void (*fn)(void *ctx, const struct mb_module *m), void *ctx);

#endif
