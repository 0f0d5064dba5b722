/* tools/proc.h on Darwin: libproc (proc_pidinfo, proc_pidpath) and sysctl. */
#include "tools/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <libproc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/proc_info.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <unistd.h>

static bool bsd_info(pid_t pid, struct proc_bsdinfo *info) {
    int n = proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, info, (int)sizeof *info);
    if (n == (int)sizeof *info) return true;
    if (n >= 0) errno = n == 0 && errno != 0 ? errno : EIO;
    return false;
}

bool proc_owner(pid_t pid, uid_t *uid) {
    struct proc_bsdinfo info;
    if (!bsd_info(pid, &info)) return false;
    *uid = info.pbi_uid; /* the effective uid (pbi_ruid is the real one) */
    return true;
}

/* The start time as the library's os_start_time gives it: microseconds since
 * the epoch. */
bool proc_state_start(pid_t pid, char *state, uint64_t *start) {
    struct proc_bsdinfo info;
    if (!bsd_info(pid, &info)) return false;
    *state = info.pbi_status == SZOMB ? 'Z' : '?';
    *start = (uint64_t)info.pbi_start_tvsec * 1000000u + (uint64_t)info.pbi_start_tvusec;
    return true;
}

/* The regions of the process with a file behind them, lowest first. */
int proc_maps_paths(pid_t pid, bool (*fn)(void *ctx, const char *path), void *ctx) {
    uint64_t address = 0;
    bool any = false;
    for (unsigned regions = 0; regions < (1u << 20); regions++) {
        struct proc_regionwithpathinfo info;
        int n = proc_pidinfo(pid, PROC_PIDREGIONPATHINFO, address, &info, (int)sizeof info);
        if (n != (int)sizeof info) break;
        any = true;
        info.prp_vip.vip_path[sizeof info.prp_vip.vip_path - 1] = '\0';
        if (info.prp_vip.vip_path[0] == '/' && fn(ctx, info.prp_vip.vip_path)) return 1;
        uint64_t next = info.prp_prinfo.pri_address + info.prp_prinfo.pri_size;
        if (next <= address) break;
        address = next;
    }
    return any ? 0 : -1;
}

/* KERN_PROCARGS2: argc, the executable's path, padding, then the arguments. */
void proc_cmdline(pid_t pid, char *out, size_t cap) {
    out[0] = '\0';
    int argmax = 0;
    size_t size = sizeof argmax;
    int mib_max[2] = {CTL_KERN, KERN_ARGMAX};
    if (sysctl(mib_max, 2, &argmax, &size, NULL, 0) != 0 || argmax <= 0 || argmax > (1 << 24))
        return;
    char *args = malloc((size_t)argmax);
    if (args == NULL) return;
    int mib[3] = {CTL_KERN, KERN_PROCARGS2, (int)pid};
    size = (size_t)argmax;
    int argc = 0;
    if (sysctl(mib, 3, args, &size, NULL, 0) != 0 || size < sizeof argc) {
        free(args);
        return;
    }
    memcpy(&argc, args, sizeof argc);
    const char *p = args + sizeof argc, *end = args + size;
    p = memchr(p, '\0', (size_t)(end - p)); /* the executable's path */
    while (p != NULL && p < end && *p == '\0') p++;
    size_t len = 0;
    for (int i = 0; p != NULL && p < end && i < argc && len + 1 < cap; i++) {
        if (i > 0) out[len++] = ' ';
        while (p < end && *p != '\0' && len + 1 < cap) out[len++] = *p == '\n' ? ' ' : *p, p++;
        while (p < end && *p != '\0') p++;
        p++;
    }
    out[len] = '\0';
    free(args);
}

bool proc_self_exe(char *out, size_t cap) {
    char path[PROC_PIDPATHINFO_MAXSIZE];
    int n = proc_pidpath(getpid(), path, sizeof path);
    if (n <= 0 || (size_t)n >= cap) return false;
    memcpy(out, path, (size_t)n);
    out[n] = '\0';
    return true;
}

/* sys_signame: the BSD names, lowercase and without "SIG". */
void proc_signal_name(int sig, char *buf, size_t cap) {
    if (sig <= 0 || sig >= NSIG || cap < 5) {
        snprintf(buf, cap, "signal %d", sig);
        return;
    }
    size_t len = (size_t)snprintf(buf, cap, "SIG%s", sys_signame[sig]);
    for (size_t i = 3; i < len && i < cap; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (char)(buf[i] - 'a' + 'A');
}

const char *proc_not_live_hint(void) {
    return ": dyld dropped DYLD_INSERT_LIBRARIES (System Integrity Protection strips it for a "
           "protected program or interpreter, the hardened runtime for a program without the "
           "com.apple.security.cs.allow-dyld-environment-variables entitlement)";
}

const char *proc_preload_variable(void) { return "DYLD_INSERT_LIBRARIES"; }
const char *proc_library_file(void) { return "libmembudget.dylib"; }

static int cloexec_pair(int fds[2]) {
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

/* Darwin has neither pipe2 nor SOCK_CLOEXEC: the flag is set at once after;
 * `run` creates these before it forks, on its one thread. */
int proc_pipe_cloexec(int fds[2]) { return pipe(fds) != 0 ? -1 : cloexec_pair(fds); }

/* Darwin's local sockets have no SOCK_SEQPACKET; datagrams keep the
 * boundaries as well. */
int proc_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0 ? -1 : cloexec_pair(fds);
}
