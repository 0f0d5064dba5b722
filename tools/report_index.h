/* The indexes the report's symbolizer (tools/report_symbols.c) builds once
 * instead of asking libdw and libdwfl again for every return address
 * (tools/report_index.c): the scopes around an address (each inlined call
 * active there) or a DIE (as dwarf_getscopes_die gives them), from an index
 * of each DWARF unit (libdw walks the unit's DIE tree at every call); a module's
 * symbol lookups, as dwfl_module_addrinfo answers them (it reads the whole
 * symbol table at every call), from earlier answers. */
#ifndef MEMBUDGET_TOOLS_REPORT_INDEX_H
#define MEMBUDGET_TOOLS_REPORT_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

/* The indexes built so far: one per unit (compile or partial unit), kept
 * until rp_scopes_free.  NULL when memory is short. */
struct rp_scopes;
struct rp_scopes *rp_scopes_new(void);
void rp_scopes_free(struct rp_scopes *s);

/* The DIEs of cudie's unit containing pc, innermost first, out to (not
 * counting) the unit DIE, in *scopes (malloc'd): every inlined call active at
 * pc (DW_TAG_inlined_subroutine, each inside the next) and the subprogram
 * they are inlined into, with the lexical blocks among them (dwarf_getscopes
 * answers the same up to the innermost inlined call only).  Their number, 0
 * when none, -1 on an error. */
int rp_scopes_path(struct rp_scopes *s, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **scopes);

/* dwarf_getscopes_die(die, scopes): a copy of die, then each scope around it
 * outwards to its unit, in *scopes (malloc'd); their number, 0 when die is in
 * no scope of its unit, -1 on an error. */
int rp_scopes_die(struct rp_scopes *s, Dwarf_Die *die, Dwarf_Die **scopes);

/* A module's symbol lookups answered from earlier ones (tools/report_index.c
 * says when that gives libdwfl's own answer); all zero before the first.
 * rp_symtab_addrinfo is dwfl_module_addrinfo(mod, pc, offset, ...) (through t
 * when not NULL); rp_symtab_release frees what t took. */
struct rp_symtab {
    bool built;
    size_t count;       /* boundaries */
    GElf_Addr *bounds;  /* sorted, distinct */
    const char **names; /* per interval (bounds[k], bounds[k + 1]): NULL until known */
    GElf_Addr *values;  /* the address minus the offset, for names[k] */
};
const char *rp_symtab_addrinfo(struct rp_symtab *t, Dwfl_Module *mod, GElf_Addr pc,
                               GElf_Off *offset);
void rp_symtab_release(struct rp_symtab *t);

#endif
