/* run_can_preload on Linux (tools/run_start.h): what keeps ld.so from
 * preloading the library into a program (an ELF class or machine of its own,
 * static linking, secure mode). */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tools/run_start.h"

#if __SIZEOF_POINTER__ == 8
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

struct elf_facts {
    unsigned char elf_class, data;
    unsigned machine;
    bool has_interp;
    char interp[PATH_MAX];
};

/* The ELF header fields that decide whether ld.so can preload into it, and
 * its program interpreter.  false: not an ELF file (or unreadable). */
static bool elf_read(int fd, struct elf_facts *out) {
    ElfW(Ehdr) eh;
    memset(out, 0, sizeof *out);
    if (pread(fd, &eh, sizeof eh, 0) < (ssize_t)EI_NIDENT ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return false;
    out->elf_class = eh.e_ident[EI_CLASS];
    out->data = eh.e_ident[EI_DATA];
    /* Another class or byte order: e_machine and the program headers are not
     * ours to read, and the class alone already answers. */
    if (out->elf_class != NATIVE_CLASS || out->data != NATIVE_DATA) return true;
    out->machine = eh.e_machine;
    if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum > 4096) return true;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        ElfW(Phdr) ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
            break;
        if (ph.p_type != PT_INTERP) continue;
        out->has_interp = true;
        size_t n =
            ph.p_filesz < sizeof out->interp - 1 ? (size_t)ph.p_filesz : sizeof out->interp - 1;
        ssize_t got = pread(fd, out->interp, n, (off_t)ph.p_offset);
        out->interp[got > 0 ? (size_t)got : 0] = '\0';
        break;
    }
    return true;
}

static bool elf_read_path(const char *path, struct elf_facts *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = elf_read(fd, out);
    close(fd);
    return ok;
}

/* Is the file of `st` the dynamic loader itself (run as a program, it
 * honours LD_PRELOAD though it has no interpreter of its own)? */
static bool is_dynamic_loader(const struct stat *st) {
    struct elf_facts self;
    struct stat ld;
    return elf_read_path("/proc/self/exe", &self) && self.has_interp &&
           stat(self.interp, &ld) == 0 && ld.st_dev == st->st_dev && ld.st_ino == st->st_ino;
}

/* The kernel's rule (fs/exec.c, commoncap.c): an exec that changes the
 * credentials sets AT_SECURE, and ld.so then ignores LD_PRELOAD entries with a
 * slash.  NULL when the exec keeps them. */
static const char *secure_mode(int fd, const struct stat *st, char *buf, size_t cap) {
    struct statvfs vfs;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) return NULL;
    if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOSUID) != 0) return NULL;
    if ((st->st_mode & S_ISUID) != 0 && st->st_uid != getuid()) {
        snprintf(buf, cap, "setuid (to uid %lu)", (unsigned long)st->st_uid);
        return buf;
    }
    if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && st->st_gid != getgid()) {
        snprintf(buf, cap, "setgid (to gid %lu)", (unsigned long)st->st_gid);
        return buf;
    }
    if (getuid() != 0 && fgetxattr(fd, "security.capability", NULL, 0) > 0)
        return "given file capabilities";
    return NULL;
}

static const char *class_name(unsigned char c) {
    return c == ELFCLASS32 ? "32-bit" : c == ELFCLASS64 ? "64-bit" : "unknown-class";
}

/* One program, or the interpreter of a script (depth counts #! levels, as
 * the kernel allows a few).  On false, `why` says what the ELF file named in
 * `culprit` is ("is statically linked, ..."). */
static bool can_preload_file(const char *path, const struct elf_facts *lib, int depth,
                             char *culprit, size_t culprit_cap, char *why, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return true; /* exec will say why */
    struct stat st;
    char head[256 + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = pread(fd, head, sizeof head - 1, 0);
    struct elf_facts elf;
    char secure[64];
    const char *mode;
    bool ok = true;
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        head[n] = '\0';
        char *interp = head + 2 + strspn(head + 2, " \t");
        interp[strcspn(interp, " \t\n")] = '\0';
        if (interp[0] != '\0' && depth < 4)
            ok = can_preload_file(interp, lib, depth + 1, culprit, culprit_cap, why, cap);
    } else if (n > 0 && elf_read(fd, &elf)) {
        ok = false;
        if (elf.elf_class != lib->elf_class || elf.data != lib->data)
            snprintf(why, cap, "is a %s program and the library is %s", class_name(elf.elf_class),
                     class_name(lib->elf_class));
        else if (elf.machine != lib->machine)
            snprintf(why, cap, "is built for another machine (ELF machine %u, the library's %u)",
                     elf.machine, lib->machine);
        else if (!elf.has_interp && !is_dynamic_loader(&st))
            snprintf(why, cap,
                     "is statically linked, so no dynamic loader reads LD_PRELOAD for it");
        else if ((mode = secure_mode(fd, &st, secure, sizeof secure)) != NULL)
            snprintf(why, cap,
                     "is %s, so the dynamic loader runs it in secure mode, which ignores "
                     "LD_PRELOAD",
                     mode);
        else
            ok = true;
        if (!ok) snprintf(culprit, culprit_cap, "%s", path);
    }
    close(fd);
    return ok;
}

bool run_can_preload(const char *cmd, const char *lib, char *why, size_t cap) {
    char path[PATH_MAX], culprit[PATH_MAX], what[512];
    struct elf_facts lib_elf;
    if (!run_find_command(cmd, path, sizeof path) || !elf_read_path(lib, &lib_elf)) return true;
    if (can_preload_file(path, &lib_elf, 0, culprit, sizeof culprit, what, sizeof what))
        return true;
    if (strcmp(culprit, path) == 0)
        snprintf(why, cap, "it %s", what);
    else
        snprintf(why, cap, "its interpreter %s %s", culprit, what);
    return false;
}
