/* run_can_preload on Darwin (tools/run_start.h): what makes dyld ignore
 * DYLD_INSERT_LIBRARIES for a program.  System Integrity Protection strips
 * every DYLD_* variable when the kernel execs a protected file: the system's
 * own programs under /bin, /sbin, /usr (but /usr/local) and /System; a script
 * whose interpreter is one of them (/bin/sh, /usr/bin/env, /usr/bin/python3)
 * loses it too, which is most scripts.  dyld also ignores it for a setuid or
 * setgid program (a restricted process).  Hardened-runtime programs without
 * the allow-dyld-environment-variables entitlement are refused as well; their
 * code signature is not read here, and the handshake after exec says so. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/run_start.h"

static bool has_prefix(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The directories SIP protects, as /System/Library/Sandbox/rootless.conf
 * lists them, less their exceptions that matter here. */
static bool sip_protected(const char *path) {
    char real[PATH_MAX];
    if (realpath(path, real) == NULL) return false;
    if (has_prefix(real, "/usr/local") || has_prefix(real, "/opt")) return false;
    return has_prefix(real, "/bin") || has_prefix(real, "/sbin") || has_prefix(real, "/usr") ||
           has_prefix(real, "/System") || has_prefix(real, "/private/var/db") ||
           has_prefix(real, "/Applications/Safari.app");
}

static bool can_preload_file(const char *path, int depth, char *culprit, size_t culprit_cap,
                             char *why, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return true; /* exec will say why */
    struct stat st;
    char head[256 + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = pread(fd, head, sizeof head - 1, 0);
    close(fd);
    bool ok = true;
    if (sip_protected(path)) {
        snprintf(why, cap,
                 "is protected by System Integrity Protection, which removes "
                 "DYLD_INSERT_LIBRARIES from its environment (copy it outside /usr, /bin, /sbin "
                 "and /System, or run a program of your own)");
        ok = false;
    } else if (n >= 2 && head[0] == '#' && head[1] == '!') {
        head[n] = '\0';
        char *interp = head + 2 + strspn(head + 2, " \t");
        interp[strcspn(interp, " \t\n")] = '\0';
        if (interp[0] != '\0' && depth < 4)
            return can_preload_file(interp, depth + 1, culprit, culprit_cap, why, cap);
    } else if ((st.st_mode & S_ISUID) != 0 && st.st_uid != getuid()) {
        snprintf(why, cap, "is setuid (to uid %lu), and dyld ignores DYLD_INSERT_LIBRARIES for it",
                 (unsigned long)st.st_uid);
        ok = false;
    } else if ((st.st_mode & S_ISGID) != 0 && st.st_gid != getgid()) {
        snprintf(why, cap, "is setgid (to gid %lu), and dyld ignores DYLD_INSERT_LIBRARIES for it",
                 (unsigned long)st.st_gid);
        ok = false;
    }
    if (!ok) snprintf(culprit, culprit_cap, "%s", path);
    return ok;
}

bool run_can_preload(const char *cmd, const char *lib, char *why, size_t cap) {
    char path[PATH_MAX], culprit[PATH_MAX], what[512];
    (void)lib;
    if (!run_find_command(cmd, path, sizeof path)) return true;
    if (can_preload_file(path, 0, culprit, sizeof culprit, what, sizeof what)) return true;
    if (strcmp(culprit, path) == 0)
        snprintf(why, cap, "it %s", what);
    else
        snprintf(why, cap, "its interpreter %s %s", culprit, what);
    return false;
}
