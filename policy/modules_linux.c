/* The loaded modules on Linux (see modules.h; ELF files, read with the raw
 * system calls of alloc/os_linux.h).  /proc/self/maps lists each file's
 * mappings one after another; a module is a run of lines with the same path
 * and inode (anonymous lines, such as a library's .bss, do not end it).  The
 * mapping at file offset 0 holds the ELF header, the program headers and,
 * usually, the notes. */
#include "policy/modules.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "alloc/os_linux.h"

#define MAPS_BUFFER_BYTES 65536
#define PHDRS_MAX 64
#define NOTES_MAX_BYTES 4096

/* All under the caller's serialization (the dump's flag). */
static char maps_buffer[MAPS_BUFFER_BYTES];
static char group_path[MB_MODULE_PATH_MAX];
static ElfW(Phdr) phdrs[PHDRS_MAX];
static unsigned char notes[NOTES_MAX_BYTES];

struct group {
    bool active;
    uint64_t inode;
    uintptr_t start, end;
    uintptr_t head_start, head_end; /* the mapping of file offset 0; head_end 0: none */
};

static bool read_self(void *dst, uintptr_t src, size_t n) {
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    long r = os_syscall6(SYS_process_vm_readv, os_getpid(), (long)&local, 1, (long)&remote, 1, 0);
    return r == (long)n;
}

static bool read_file(const char *path, uint64_t offset, void *dst, size_t n) {
    if (path[0] != '/') return false;
    long fd = os_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return false;
    long r = os_syscall6(SYS_pread64, fd, (long)dst, (long)n, (long)offset, 0, 0);
    os_close((int)fd);
    return r == (long)n;
}

/* Bytes [offset, offset + n) of the module's file, from memory when the head
 * mapping covers them, else from the file. */
static bool module_read(const struct group *g, uint64_t offset, void *dst, size_t n) {
    if (offset + n <= g->head_end - g->head_start && read_self(dst, g->head_start + offset, n))
        return true;
    return read_file(group_path, offset, dst, n);
}

static void find_build_id(const struct group *g, const ElfW(Phdr) * ph, struct mb_module *m) {
    size_t size = ph->p_filesz < NOTES_MAX_BYTES ? ph->p_filesz : NOTES_MAX_BYTES;
    if (!module_read(g, ph->p_offset, notes, size)) return;
    size_t align = ph->p_align == 8 ? 8 : 4;
    size_t pos = 0;
    while (pos + sizeof(ElfW(Nhdr)) <= size) {
        ElfW(Nhdr) nh;
        memcpy(&nh, notes + pos, sizeof nh);
        size_t name_at = pos + sizeof nh;
        size_t desc_at = name_at + ((nh.n_namesz + align - 1) & ~(align - 1));
        size_t next = desc_at + ((nh.n_descsz + align - 1) & ~(align - 1));
        if (desc_at > size || next > size || next <= pos) return;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(notes + name_at, "GNU", 4) == 0 && nh.n_descsz <= MB_BUILD_ID_MAX) {
            memcpy(m->build_id, notes + desc_at, nh.n_descsz);
            m->build_id_len = nh.n_descsz;
            return;
        }
        pos = next;
    }
}

/* The module of a finished group, if it is an ELF object of our class. */
static bool group_module(const struct group *g, struct mb_module *m) {
    if (g->head_end == 0) return false;
    if (group_path[0] != '/' && strcmp(group_path, "[vdso]") != 0) return false;
    ElfW(Ehdr) eh;
    if (!module_read(g, 0, &eh, sizeof eh)) return false;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 || eh.e_phnum > PHDRS_MAX)
        return false;
    if (!module_read(g, eh.e_phoff, phdrs, eh.e_phnum * sizeof(ElfW(Phdr)))) return false;
    const ElfW(Phdr) *first = NULL;
    for (unsigned i = 0; i < eh.e_phnum; i++)
        if (phdrs[i].p_type == PT_LOAD && (first == NULL || phdrs[i].p_vaddr < first->p_vaddr))
            first = &phdrs[i];
    if (first == NULL) return false;
    memset(m, 0, sizeof *m);
    m->path = group_path;
    m->bias = g->head_start - (first->p_vaddr & ~(uintptr_t)(OS_PAGE_SIZE - 1));
    m->start = g->start;
    m->end = g->end;
    for (unsigned i = 0; i < eh.e_phnum && m->build_id_len == 0; i++)
        if (phdrs[i].p_type == PT_NOTE) find_build_id(g, &phdrs[i], m);
    return true;
}

static const char *parse_hex(const char *p, uint64_t *out) {
    uint64_t v = 0;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            break;
        v = v << 4 | d;
    }
    *out = v;
    return p;
}

/* "start-end perms offset dev inode   path": false for a line of another shape. */
static bool parse_line(const char *p, struct mb_maps_line *out) {
    p = parse_hex(p, &out->start);
    if (*p++ != '-') return false;
    p = parse_hex(p, &out->end);
    if (*p++ != ' ') return false;
    while (*p != ' ' && *p != '\0') p++; /* perms */
    if (*p++ != ' ') return false;
    p = parse_hex(p, &out->offset);
    if (*p++ != ' ') return false;
    while (*p != ' ' && *p != '\0') p++; /* device */
    if (*p++ != ' ') return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
    out->inode = v;
    while (*p == ' ') p++;
    out->path = p;
    return true;
}

bool mb_maps_each(char *buf, size_t cap, void (*fn)(void *ctx, const struct mb_maps_line *line),
                  void *ctx) {
    long fd = os_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return false;
    size_t len = 0;
    for (;;) {
        long r = os_syscall6(SYS_read, fd, (long)(buf + len), (long)(cap - 1 - len), 0, 0, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            struct mb_maps_line l;
            if (parse_line(line, &l)) fn(ctx, &l);
            line = nl + 1;
        }
        len = (size_t)(buf + len - line);
        memmove(buf, line, len);
        if (len == cap - 1) len = 0; /* a line longer than the buffer */
    }
    os_close((int)fd);
    return true;
}

struct walk {
    struct group g;
    void (*fn)(void *ctx, const struct mb_module *m);
    void *ctx;
    unsigned count;
};

static void group_finish(struct walk *w) {
    struct mb_module m;
    if (w->g.active && group_module(&w->g, &m)) {
        w->fn(w->ctx, &m);
        w->count++;
    }
    w->g.active = false;
}

static void walk_line(void *ctx, const struct mb_maps_line *l) {
    struct walk *w = ctx;
    if (l->path[0] == '\0') return;
    struct group *g = &w->g;
    if (!g->active || g->inode != l->inode || strcmp(group_path, l->path) != 0) {
        group_finish(w);
        size_t n = strlen(l->path);
        if (n >= sizeof group_path) return; /* cannot be named: skipped */
        memcpy(group_path, l->path, n + 1);
        *g = (struct group){.active = true, .inode = l->inode, .start = l->start, .end = l->end};
    }
    if (l->end > g->end) g->end = l->end;
    if (l->offset == 0 && g->head_end == 0) {
        g->head_start = l->start;
        g->head_end = l->end;
    }
}

unsigned mb_modules_each(void (*fn)(void *ctx, const struct mb_module *m), void *ctx) {
    struct walk w = {.fn = fn, .ctx = ctx};
    if (!mb_maps_each(maps_buffer, sizeof maps_buffer, walk_line, &w)) return 0;
    group_finish(&w);
    return w.count;
}
