/* The indexes of tools/report_index.h: the scopes around an address or a
 * DIE from an index of each DWARF unit, built once; a module's symbol lookups
 * answered from earlier ones.
 *
 * libdw's dwarf_getscopes walks the unit's DIE tree for every address it is
 * asked about, and dwarf_getscopes_die walks the tree until it meets the DIE.
 * For a library such as libpython with its debug symbols, whose units hold
 * tens of thousands of DIEs, that was nearly all of the report's time.  Nor
 * does dwarf_getscopes give every inlined call: past the innermost inlined
 * call it answers the scopes around that call's abstract definition, not the
 * calls it is nested in (inner inlined into middle inlined into outer: inner,
 * then outer's unit, middle lost), and none at all when that definition lies
 * in another unit (link-time optimization: DW_FORM_ref_addr; dwz: a partial
 * unit or the .gnu_debugaltlink file).
 *
 * Here the tree of a unit is walked once, by the same rules as libdw's walk
 * (children of the DIEs that may hold scopes; the children of an imported
 * partial unit taken in place of the DW_TAG_imported_unit that imports it)
 * into an array in preorder, each node with its parent, the end of its
 * subtree and its address ranges (dwarf_ranges, which dwarf_haspc reads), and
 * a table from DIE address to node.  A lookup of an address descends from the
 * unit through the first child containing the address at each level, as
 * libdw's pruned walk does, and answers that whole path, innermost first:
 * each inlined call on it is one of the calls active at the address, in the
 * order addr2line -i and gdb list them.
 *
 * What differs from libdw: an error met while walking a unit (malformed
 * DWARF, an import cycle, nesting deeper than SCOPES_DEPTH_MAX, memory) makes
 * every lookup in that unit fail, where libdw fails only the lookups whose
 * walk meets it; a DIE whose ranges cannot be read counts as holding no
 * address (libdw fails the lookup unless the error is a missing
 * .debug_ranges).  Either way the frame keeps its function and line without
 * inlined calls. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dwarf.h>
#include <elfutils/libdwfl.h>

#include "tools/report_index.h"

#define NONE UINT32_MAX
/* DIEs nested in one another, imported units counted (libdw recurses without
 * a bound; a file is hostile input). */
#define SCOPES_DEPTH_MAX 512
/* Nodes and ranges of one unit: indexes are 32 bits. */
#define SCOPES_ITEMS_MAX ((size_t)UINT32_MAX - 1)

struct node {
    Dwarf_Die die;
    uint32_t parent;      /* NONE: the unit */
    uint32_t end;         /* one past the last node of its subtree */
    uint32_t range_first; /* its ranges: ranges[range_first .. range_first + range_count) */
    uint32_t range_count;
    int tag;
};

/* A range of one of the unit's children: [lo, hi) of node. */
struct span {
    Dwarf_Addr lo, hi;
    uint32_t node;
};

struct unit_index {
    void *root; /* the unit DIE's address: the key */
    bool failed;
    struct node *nodes;
    size_t count, cap;
    Dwarf_Addr (*ranges)[2];
    size_t range_count, range_cap;
    uint32_t *slots; /* DIE address -> node + 1 (0: empty), its first in preorder */
    struct span *top; /* the ranges of the unit's children, by start (top_by_start) */
    Dwarf_Addr *top_end; /* top_end[k]: the largest end of top[0 .. k] */
    size_t top_count;
    size_t mask;
};

struct rp_scopes {
    struct unit_index **units;
    size_t count, cap;
};

/* The tags libdw's walk descends into (elfutils' may_have_scopes): DIEs with
 * addresses to match, and DIEs without that can own some. */
static bool may_have_scopes(int tag) {
    switch (tag) {
    case DW_TAG_compile_unit:
    case DW_TAG_module:
    case DW_TAG_lexical_block:
    case DW_TAG_with_stmt:
    case DW_TAG_catch_block:
    case DW_TAG_try_block:
    case DW_TAG_entry_point:
    case DW_TAG_inlined_subroutine:
    case DW_TAG_subprogram:
    case DW_TAG_namespace:
    case DW_TAG_class_type:
    case DW_TAG_structure_type:
        return true;
    default:
        return false;
    }
}

/* items (count of *cap, each of size `size`) with room for one more: the
 * same array or a larger copy; NULL when there is no room (items kept). */
static void *room_for_one(void *items, size_t *cap, size_t count, size_t size) {
    if (count < *cap) return items;
    if (count >= SCOPES_ITEMS_MAX) return NULL;
    size_t grown = *cap ? 2 * *cap : 64;
    void *p = realloc(items, grown * size);
    if (p != NULL) *cap = grown;
    return p;
}

/* A node for die under parent, with its ranges; its index in *at. */
static bool add_node(struct unit_index *x, Dwarf_Die *die, uint32_t parent, uint32_t *at) {
    struct node *nodes = room_for_one(x->nodes, &x->cap, x->count, sizeof *nodes);
    if (nodes == NULL) return false;
    x->nodes = nodes;
    struct node *n = &x->nodes[x->count];
    *n = (struct node){.die = *die,
                       .parent = parent,
                       .range_first = (uint32_t)x->range_count,
                       .tag = dwarf_tag(die)};
    Dwarf_Addr base, start, end;
    ptrdiff_t offset = 0;
    if (parent != NONE) /* the unit's own ranges are never asked */
        while ((offset = dwarf_ranges(die, offset, &base, &start, &end)) > 0) {
            Dwarf_Addr(*ranges)[2] =
                room_for_one(x->ranges, &x->range_cap, x->range_count, sizeof *ranges);
            if (ranges == NULL) return false;
            x->ranges = ranges;
            x->ranges[x->range_count][0] = start;
            x->ranges[x->range_count][1] = end;
            x->range_count++;
            n->range_count++;
        }
    *at = (uint32_t)x->count++;
    return true;
}

/* Imported units being walked, innermost first (libdw refuses a cycle). */
struct import {
    void *addr;
    const struct import *next;
};

static bool walk_children(struct unit_index *x, uint32_t parent, Dwarf_Die child,
                          const struct import *imports, unsigned depth);

/* One child: its node, then its own children when it may hold scopes. */
static bool visit(struct unit_index *x, uint32_t parent, Dwarf_Die *die,
                  const struct import *imports, unsigned depth) {
    uint32_t at;
    if (!add_node(x, die, parent, &at)) return false;
    if (may_have_scopes(x->nodes[at].tag) && dwarf_haschildren(die)) {
        Dwarf_Die first;
        int r = dwarf_child(die, &first);
        if (r < 0 || (r == 0 && !walk_children(x, at, first, imports, depth + 1))) return false;
    }
    x->nodes[at].end = (uint32_t)x->count;
    return true;
}

/* The children of node `parent` from `child` on, as libdw's walk_children
 * takes them: the children of an imported unit (not a compile unit) in place
 * of the DW_TAG_imported_unit.  False on an error. */
static bool walk_children(struct unit_index *x, uint32_t parent, Dwarf_Die child,
                          const struct import *imports, unsigned depth) {
    if (depth > SCOPES_DEPTH_MAX) return false;
    int r;
    do {
        while (dwarf_tag(&child) == DW_TAG_imported_unit) {
            Dwarf_Die orig = child, unit, first;
            Dwarf_Attribute attr;
            if (dwarf_formref_die(dwarf_attr(&orig, DW_AT_import, &attr), &unit) != NULL &&
                dwarf_tag(&unit) != DW_TAG_compile_unit && dwarf_child(&unit, &first) == 0) {
                for (const struct import *i = imports; i != NULL; i = i->next)
                    if (i->addr == orig.addr) return false;
                struct import here = {orig.addr, imports};
                if (!walk_children(x, parent, first, &here, depth + 1)) return false;
            }
            if ((r = dwarf_siblingof(&orig, &child)) != 0) return r > 0;
        }
        if (!visit(x, parent, &child, imports, depth)) return false;
    } while ((r = dwarf_siblingof(&child, &child)) == 0);
    return r > 0;
}

static size_t slot_of(const struct unit_index *x, const void *addr) {
    return (size_t)(((uintptr_t)addr * (uint64_t)0x9e3779b97f4a7c15u) >> 17) & x->mask;
}

/* The node of the DIE at addr (its first in preorder, as libdw's walks meet
 * it first), or NONE. */
static uint32_t find(const struct unit_index *x, const void *addr) {
    if (x->slots == NULL) return NONE;
    for (size_t i = slot_of(x, addr); x->slots[i] != 0; i = (i + 1) & x->mask)
        if (x->nodes[x->slots[i] - 1].die.addr == addr) return x->slots[i] - 1;
    return NONE;
}

static bool build_table(struct unit_index *x) {
    size_t slots = 64;
    while (slots < 2 * x->count) slots *= 2;
    x->slots = calloc(slots, sizeof *x->slots);
    if (x->slots == NULL) return false;
    x->mask = slots - 1;
    for (uint32_t n = 0; n < x->count; n++) {
        size_t i = slot_of(x, x->nodes[n].die.addr);
        while (x->slots[i] != 0 && x->nodes[x->slots[i] - 1].die.addr != x->nodes[n].die.addr)
            i = (i + 1) & x->mask;
        if (x->slots[i] == 0) x->slots[i] = n + 1;
    }
    return true;
}

static int span_order(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* The ranges of the unit's children sorted by start, with the largest end
 * so far: a unit of a program built with link-time optimization has
 * thousands of functions, which each lookup would otherwise try in turn. */
static bool build_top(struct unit_index *x) {
    size_t n = 0;
    for (uint32_t j = 1; j < x->nodes[0].end; j = x->nodes[j].end) n += x->nodes[j].range_count;
    if (n == 0) return true;
    x->top = malloc(n * sizeof *x->top);
    x->top_end = malloc(n * sizeof *x->top_end);
    if (x->top == NULL || x->top_end == NULL) return false;
    for (uint32_t j = 1; j < x->nodes[0].end; j = x->nodes[j].end)
        for (uint32_t k = 0; k < x->nodes[j].range_count; k++) {
            const Dwarf_Addr *range = x->ranges[x->nodes[j].range_first + k];
            x->top[x->top_count++] = (struct span){range[0], range[1], j};
        }
    qsort(x->top, x->top_count, sizeof *x->top, span_order);
    for (size_t k = 0; k < x->top_count; k++)
        x->top_end[k] = k == 0 || x->top[k].hi > x->top_end[k - 1] ? x->top[k].hi : x->top_end[k - 1];
    return true;
}

/* The unit's first child (in preorder) containing pc, or NONE: among the
 * spans starting at or before pc, back from the last one, as long as one of
 * them may still end after pc. */
static uint32_t top_child(const struct unit_index *x, Dwarf_Addr pc) {
    size_t lo = 0, hi = x->top_count; /* the first span starting after pc */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->top[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t found = NONE;
    for (size_t k = lo; k-- > 0 && x->top_end[k] > pc;)
        if (x->top[k].hi > pc && x->top[k].node < found) found = x->top[k].node;
    return found;
}

/* The index of the unit whose DIE is root, walked now; on an error, one
 * marked failed (and holding nothing). */
static struct unit_index *build(Dwarf_Die *root) {
    struct unit_index *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    x->root = root->addr;
    uint32_t at;
    Dwarf_Die first;
    int r = 0;
    bool ok = add_node(x, root, NONE, &at) && (r = dwarf_child(root, &first)) >= 0 &&
              (r != 0 || walk_children(x, 0, first, NULL, 1));
    if (ok) {
        x->nodes[0].end = (uint32_t)x->count;
        ok = build_table(x) && build_top(x);
    }
    if (!ok) {
        free(x->nodes);
        free(x->ranges);
        free(x->slots);
        free(x->top);
        free(x->top_end);
        *x = (struct unit_index){.root = root->addr, .failed = true};
    }
    return x;
}

/* The index of the unit whose DIE is root: built on first use.  NULL when it
 * cannot be had. */
static struct unit_index *unit_of(struct rp_scopes *s, Dwarf_Die *root) {
    for (size_t i = s->count; i-- > 0;)
        if (s->units[i]->root == root->addr) return s->units[i];
    struct unit_index **units = room_for_one(s->units, &s->cap, s->count, sizeof *units);
    if (units == NULL) return NULL;
    s->units = units;
    struct unit_index *x = build(root);
    if (x != NULL) s->units[s->count++] = x;
    return x;
}

struct rp_scopes *rp_scopes_new(void) {
    return calloc(1, sizeof(struct rp_scopes));
}

void rp_scopes_free(struct rp_scopes *s) {
    if (s == NULL) return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->units[i]->nodes);
        free(s->units[i]->ranges);
        free(s->units[i]->slots);
        free(s->units[i]->top);
        free(s->units[i]->top_end);
        free(s->units[i]);
    }
    free(s->units);
    free(s);
}

static bool has_pc(const struct unit_index *x, uint32_t n, Dwarf_Addr pc) {
    const struct node *node = &x->nodes[n];
    for (uint32_t k = 0; k < node->range_count; k++) {
        const Dwarf_Addr *range = x->ranges[node->range_first + k];
        if (pc >= range[0] && pc < range[1]) return true;
    }
    return false;
}

/* How many scopes enclose node n: its parents up to the unit. */
static size_t depth_of(const struct unit_index *x, uint32_t n) {
    size_t d = 0;
    for (uint32_t p = x->nodes[n].parent; p != NONE; p = x->nodes[p].parent) d++;
    return d;
}

/* The path of pc: the unit, then the first child containing pc at each level
 * (the nodes libdw's pruned walk keeps), into path; its length. */
static size_t pc_path(const struct unit_index *x, Dwarf_Addr pc, uint32_t *path, size_t cap) {
    size_t len = 0;
    uint32_t at = 0;
    path[len++] = 0;
    while (len < cap) {
        uint32_t found = at == 0 ? top_child(x, pc) : NONE;
        for (uint32_t j = at + 1; at != 0 && j < x->nodes[at].end && found == NONE;
             j = x->nodes[j].end)
            if (has_pc(x, j, pc)) found = j;
        if (found == NONE) break;
        path[len++] = at = found;
    }
    return len;
}

int rp_scopes_path(struct rp_scopes *s, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **scopes) {
    struct unit_index *x = s != NULL && cudie != NULL ? unit_of(s, cudie) : NULL;
    if (x == NULL || x->failed) return -1;
    uint32_t path[SCOPES_DEPTH_MAX + 2];
    size_t len = pc_path(x, pc, path, sizeof path / sizeof path[0]);
    if (len == 1) return 0; /* no DIE of the unit contains pc */
    size_t n = len - 1;     /* the unit itself left out */
    Dwarf_Die *out = malloc(n * sizeof *out);
    if (out == NULL) return -1;
    for (size_t k = 0; k < n; k++) out[k] = x->nodes[path[len - 1 - k]].die;
    *scopes = out;
    return (int)n;
}

int rp_scopes_die(struct rp_scopes *s, Dwarf_Die *die, Dwarf_Die **scopes) {
    Dwarf_Die root;
    if (s == NULL || die == NULL || dwarf_diecu(die, &root, NULL, NULL) == NULL) return -1;
    struct unit_index *x = unit_of(s, &root);
    if (x == NULL || x->failed) return -1;
    uint32_t at = find(x, die->addr);
    if (at == NONE || at == 0) return 0; /* the unit itself is in no scope */
    size_t n = 1 + depth_of(x, at);
    Dwarf_Die *out = malloc(n * sizeof *out);
    if (out == NULL) return -1;
    size_t k = 0;
    out[k++] = x->nodes[at].die;
    for (uint32_t p = x->nodes[at].parent; p != NONE; p = x->nodes[p].parent)
        out[k++] = x->nodes[p].die;
    *scopes = out;
    return (int)n;
}

/* ---- symbols ---------------------------------------------------------------------- */

/* A module's symbol lookups answered from earlier ones.  libdwfl's
 * dwfl_module_addrinfo reads the whole symbol table at every call.  Between
 * two consecutive boundaries (addresses at which a symbol of the module
 * starts or ends: its st_value placed at the module's address, its resolved
 * entry, each plus its size), every address has the same symbols at or before
 * it and the same symbols around it, so libdwfl's choice among them, which
 * depends on nothing else, is the same: a symbol with a size found for one
 * address strictly inside such an interval is the answer for every other
 * address inside it, at its own offset.  Addresses on a boundary, and
 * answers without a size (whose choice also depends on sections), are always
 * asked to libdwfl. */

static int addr_order(const void *a, const void *b) {
    GElf_Addr x = *(const GElf_Addr *)a, y = *(const GElf_Addr *)b;
    return x < y ? -1 : x > y;
}

static void symtab_build(struct rp_symtab *t, Dwfl_Module *mod) {
    t->built = true;
    int n = dwfl_module_getsymtab(mod);
    GElf_Addr *b = n > 0 ? malloc((size_t)n * 4 * sizeof *b) : NULL;
    if (b == NULL) return;
    size_t c = 0;
    for (int i = 0; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        if (dwfl_module_getsym(mod, i, &sym, NULL) != NULL) {
            b[c++] = sym.st_value;
            b[c++] = sym.st_value + sym.st_size;
        }
        if (dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL) != NULL) {
            b[c++] = addr;
            b[c++] = addr + sym.st_size;
        }
    }
    qsort(b, c, sizeof *b, addr_order);
    size_t u = 0;
    for (size_t i = 0; i < c; i++)
        if (u == 0 || b[i] != b[u - 1]) b[u++] = b[i];
    t->names = calloc(u ? u : 1, sizeof *t->names);
    t->values = calloc(u ? u : 1, sizeof *t->values);
    if (t->names == NULL || t->values == NULL) {
        free(t->names);
        free(t->values);
        t->names = NULL;
        t->values = NULL;
        free(b);
        return;
    }
    t->bounds = b;
    t->count = u;
}

/* The interval of t strictly containing pc, or SIZE_MAX. */
static size_t symtab_interval(const struct rp_symtab *t, GElf_Addr pc) {
    if (t->count < 2 || pc <= t->bounds[0] || pc >= t->bounds[t->count - 1]) return SIZE_MAX;
    size_t lo = 0, hi = t->count - 1; /* bounds[lo] < pc < bounds[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->bounds[mid] == pc) return SIZE_MAX;
        if (t->bounds[mid] < pc)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

const char *rp_symtab_addrinfo(struct rp_symtab *t, Dwfl_Module *mod, GElf_Addr pc,
                               GElf_Off *offset) {
    GElf_Sym sym;
    if (t == NULL) return dwfl_module_addrinfo(mod, pc, offset, &sym, NULL, NULL, NULL);
    if (!t->built) symtab_build(t, mod);
    size_t k = symtab_interval(t, pc);
    if (k != SIZE_MAX && t->names[k] != NULL) {
        *offset = pc - t->values[k];
        return t->names[k];
    }
    const char *name = dwfl_module_addrinfo(mod, pc, offset, &sym, NULL, NULL, NULL);
    if (k != SIZE_MAX && name != NULL && sym.st_size != 0) {
        t->names[k] = name;
        t->values[k] = pc - *offset;
    }
    return name;
}

void rp_symtab_release(struct rp_symtab *t) {
    free(t->bounds);
    free(t->names);
    free(t->values);
    *t = (struct rp_symtab){0};
}
