/* The scopes around an address or a DIE (tools/report_scopes.c), as libdw's
 * dwarf_getscopes and dwarf_getscopes_die give them, from an index of each
 * unit built on its first use: those two walk the unit's DIE tree at every
 * call, which made the report's inlined frames cost seconds for a library
 * with full debug information. */
#ifndef MEMBUDGET_TOOLS_REPORT_SCOPES_H
#define MEMBUDGET_TOOLS_REPORT_SCOPES_H

#include <elfutils/libdw.h>

/* The indexes built so far: one per unit (compile or partial unit), kept
 * until rp_scopes_free.  NULL when memory is short. */
struct rp_scopes;
struct rp_scopes *rp_scopes_new(void);
void rp_scopes_free(struct rp_scopes *s);

/* dwarf_getscopes(cudie, pc, scopes): the DIEs containing pc, innermost
 * first, in *scopes (malloc'd); their number, 0 when none, -1 on an error. */
int rp_scopes_pc(struct rp_scopes *s, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **scopes);

/* dwarf_getscopes_die(die, scopes): a copy of die, then each scope around it
 * outwards to its unit, in *scopes (malloc'd); their number, 0 when die is in
 * no scope of its unit, -1 on an error. */
int rp_scopes_die(struct rp_scopes *s, Dwarf_Die *die, Dwarf_Die **scopes);

#endif
