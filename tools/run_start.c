/* How `membudget run` makes sure the library starts in the command (see
 * run_start.h): ld.so preloads nothing it cannot parse or load, and says so in
 * one warning that a busy terminal loses, and then the program runs with no
 * budget at all.  `run` never lets that pass in silence. */
#include "tools/run_start.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload/handshake.h"
#include "tools/cli.h"
#include "tools/proc.h"

/* ---- the preload path ------------------------------------------------------- */

/* What LD_PRELOAD carries as it is: no separator (space, colon), no '$' for
 * ld.so to expand, nothing a shell or a log would mangle. */
static bool preload_safe(const char *s) {
    if (s[0] == '\0') return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '.' || c == '_' || c == '+' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool run_preload_prepare(const char *lib, struct run_preload *pre) {
    pre->link_dir[0] = '\0';
    if (preload_safe(lib)) {
        snprintf(pre->path, sizeof pre->path, "%s", lib);
        return true;
    }
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/' || !preload_safe(tmp)) tmp = "/tmp";
    if ((size_t)snprintf(pre->link_dir, sizeof pre->link_dir, "%s/membudget-lib.XXXXXX", tmp) >=
            sizeof pre->link_dir - 32 ||
        mkdtemp(pre->link_dir) == NULL) {
        cli_error("run",
                  "cannot create a directory in %s for a link to %s (its path cannot go "
                  "in LD_PRELOAD as it is): %s",
                  tmp, lib, strerror(errno));
        pre->link_dir[0] = '\0';
        return false;
    }
    /* The link keeps the library's name, so that another `run` inside this
     * one recognizes it in LD_PRELOAD. */
    snprintf(pre->path, sizeof pre->path, "%s/libmembudget.so", pre->link_dir);
    if (symlink(lib, pre->path) != 0) {
        cli_error("run", "cannot link %s to %s: %s", pre->path, lib, strerror(errno));
        rmdir(pre->link_dir);
        pre->link_dir[0] = '\0';
        return false;
    }
    return true;
}

void run_preload_finish(struct run_preload *pre) {
    if (pre->link_dir[0] == '\0') return;
    unlink(pre->path);
    rmdir(pre->link_dir);
    pre->link_dir[0] = '\0';
}

/* ---- before exec (run_can_preload: tools/run_preload_<os>.c) ---------------------- */

/* The file execvp would run for cmd: cmd itself when it has a slash, else
 * the first executable regular file of that name along $PATH. */
bool run_find_command(const char *cmd, char *out, size_t cap) {
    if (strchr(cmd, '/') != NULL) return (size_t)snprintf(out, cap, "%s", cmd) < cap;
    const char *path = getenv("PATH");
    if (path == NULL) path = "/bin:/usr/bin"; /* execvp's default */
    for (const char *p = path;; p++) {
        size_t len = strcspn(p, ":");
        struct stat st;
        if ((size_t)snprintf(out, cap, "%.*s%s%s", (int)len, len > 0 ? p : ".", "/", cmd) < cap &&
            stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return true;
        p += len;
        if (*p == '\0') return false;
    }
}


/* ---- after exec: the handshake ----------------------------------------------------- */

bool run_handshake_open(struct run_handshake *hs) {
    int fds[2];
    hs->ours = hs->theirs = -1;
    if (proc_socketpair_cloexec(fds) != 0) {
        cli_error("run", "socketpair: %s", strerror(errno));
        return false;
    }
    hs->ours = fds[0];
    hs->theirs = fds[1];
    /* Not 0, 1 or 2 (when this process started with one of them closed): the
     * command's standard streams are not ours to take. */
    if (hs->theirs <= 2) {
        int moved = fcntl(hs->theirs, F_DUPFD_CLOEXEC, 3);
        close(hs->theirs);
        hs->theirs = moved;
    }
    struct stat st;
    if (hs->theirs < 0 || fstat(hs->theirs, &st) != 0) {
        cli_error("run", "handshake socket: %s", strerror(errno));
        run_handshake_close(hs);
        return false;
    }
    snprintf(hs->env_value, sizeof hs->env_value, "%d:%llu", hs->theirs,
             (unsigned long long)st.st_ino);
    return true;
}

void run_handshake_child(const struct run_handshake *hs) {
    close(hs->ours);
    fcntl(hs->theirs, F_SETFD, 0); /* inherited across exec */
    setenv(MB_HANDSHAKE_ENV, hs->env_value, 1);
}

void run_handshake_parent(struct run_handshake *hs) {
    close(hs->theirs); /* so that the end of every holder reads as EOF */
    hs->theirs = -1;
}

void run_handshake_close(struct run_handshake *hs) {
    if (hs->ours >= 0) close(hs->ours);
    if (hs->theirs >= 0) close(hs->theirs);
    hs->ours = hs->theirs = -1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Has pid ended?  Leaves it unreaped (WNOWAIT).  ECHILD (SIGCHLD ignored by
 * whoever started us: the kernel reaped it) counts as ended, or the wait
 * would spin to its deadline. */
static bool ended(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid == pid;
}

/* The record, as preload/handshake.h has it. */
static enum run_start_result judge_answer(char *rec, pid_t pid, char *why, size_t cap) {
    static const char tag[] = MB_HANDSHAKE_TAG " ";
    char *end;
    if (strncmp(rec, tag, sizeof tag - 1) != 0) {
        snprintf(why, cap, "the library's answer was not understood");
        return RUN_START_NO_ANSWER;
    }
    long from = strtol(rec + sizeof tag - 1, &end, 10);
    const char *state = *end == ' ' ? end + 1 : "";
    if (from != (long)pid) {
        snprintf(why, cap, "the library did not start in it but in pid %ld, started by it", from);
        return RUN_START_OTHER_PID;
    }
    if (strncmp(state, MB_HANDSHAKE_ALLOCATOR " ", sizeof MB_HANDSHAKE_ALLOCATOR) == 0)
        return RUN_START_LIVE;
    if (strncmp(state, MB_HANDSHAKE_FOREIGN " ", sizeof MB_HANDSHAKE_FOREIGN) == 0) {
        snprintf(why, cap,
                 "the library started in it but is not its allocator (it has a "
                 "malloc of its own)");
        return RUN_START_FOREIGN;
    }
    snprintf(why, cap, "the library's answer was not understood");
    return RUN_START_NO_ANSWER;
}

enum run_start_result run_handshake_wait(struct run_handshake *hs, pid_t pid, double seconds,
                                         char *why, size_t cap) {
    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    const double deadline = now_seconds() + seconds;
    enum run_start_result result;
    for (;;) {
        /* Without a pidfd (an older kernel), look at the process every
         * 100 ms; with one, its end wakes the poll. */
        double left = deadline - now_seconds();
        int ms = left > 0 ? (int)(left * 1000.0) + 1 : 0;
        if (pidfd < 0 && ms > 100) ms = 100;
        struct pollfd fds[2] = {{hs->ours, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int n = poll(fds, pidfd >= 0 ? 2 : 1, ms);
        if (n < 0 && errno != EINTR) {
            snprintf(why, cap, "the wait for the library failed: poll: %s", strerror(errno));
            result = RUN_START_NO_ANSWER;
            break;
        }
        /* The answer first: a command that answered and ended at once has
         * still run under the library. */
        if (n > 0 && fds[0].revents != 0) {
            char rec[MB_HANDSHAKE_RECORD_MAX + 1];
            ssize_t got = recv(hs->ours, rec, sizeof rec - 1, MSG_DONTWAIT);
            if (got > 0) {
                rec[got] = '\0';
                result = judge_answer(rec, pid, why, cap);
                break;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            /* End of file: no process holds the other end any more.  One
             * that is exiting closes its descriptors before it can be
             * waited for: the caller tells the two apart by the status. */
            snprintf(why, cap, "the library did not start in it%s", proc_not_live_hint());
            result = RUN_START_CLOSED;
            break;
        }
        if (ended(pid)) {
            snprintf(why, cap, "the library did not start in it%s", proc_not_live_hint());
            result = RUN_START_EXITED;
            break;
        }
        if (n == 0 && deadline - now_seconds() <= 0) {
            snprintf(why, cap, "the library did not start in it (no answer in %g s)%s", seconds,
                     proc_not_live_hint());
            result = RUN_START_NO_ANSWER;
            break;
        }
    }
    if (pidfd >= 0) close(pidfd);
    return result;
}
