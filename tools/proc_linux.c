/* tools/proc.h on Linux: /proc. */
#include "tools/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool proc_owner(pid_t pid, uid_t *uid) {
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) {
        errno = EIO;
        return false;
    }
    text[n] = '\0';
    const char *line = strstr(text, "\nUid:");
    unsigned long real, effective;
    if (line == NULL || sscanf(line + 5, "%lu %lu", &real, &effective) != 2) {
        errno = EIO;
        return false;
    }
    *uid = (uid_t)effective;
    return true;
}

/* The state (field 3) and start time (field 22) of /proc/<pid>/stat.  Fields
 * are counted from the last ')': the command name may hold both spaces and
 * parentheses. */
bool proc_state_start(pid_t pid, char *state, uint64_t *start) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL || p[1] != ' ') return false;
    *state = p[2];
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ') p++;
        while (*p != ' ' && *p != '\0') p++;
    }
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p) return false;
    *start = v;
    return true;
}

/* The rest of each line of /proc/<pid>/maps from its first '/'. */
int proc_maps_paths(pid_t pid, bool (*fn)(void *ctx, const char *path), void *ctx) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int found = 0;
    bool any = false;
    while (!found && (n = getline(&line, &cap, f)) > 0) {
        any = true;
        if (line[n - 1] == '\n') line[n - 1] = '\0';
        char *name = strchr(line, '/');
        if (name != NULL && fn(ctx, name)) found = 1;
    }
    free(line);
    fclose(f);
    return any ? found : -1; /* an empty read: a zombie, or no access */
}

void proc_cmdline(pid_t pid, char *out, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL) return;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && out[n - 1] == '\0') n--;
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0' || out[i] == '\n') out[i] = ' ';
    out[n] = '\0';
}

bool proc_self_exe(char *out, size_t cap) {
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0) return false;
    out[n] = '\0';
    return true;
}

void proc_signal_name(int sig, char *buf, size_t cap) {
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev != NULL)
        snprintf(buf, cap, "SIG%s", abbrev);
    else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, cap, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, cap, "signal %d", sig);
}

const char *proc_not_live_hint(void) { return ""; }

const char *proc_preload_variable(void) { return "LD_PRELOAD"; }
const char *proc_library_file(void) { return "libmembudget.so"; }

int proc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int proc_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}
