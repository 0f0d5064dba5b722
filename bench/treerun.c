/* treerun: runs one benchmark command and measures its whole process tree.
 *
 *   treerun -o RESULT [-p PRELOAD] [-t TIMEOUT_S] -- COMMAND [ARG...]
 *
 * Wall time is from fork to the exit of COMMAND.  Peak RSS is the largest ru_maxrss
 * of any process in the tree: wait4 reports, for each process it reaps, the maximum
 * of its own peak and the peaks of the descendants it reaped itself, and treerun is
 * a child subreaper, so descendants orphaned by their parents are reaped (and
 * counted) here too.  It is the peak of the largest single process, not the sum of
 * processes alive at the same moment.  treerun stays small on purpose: a child
 * inherits its parent's RSS high-water mark through fork and exec, so measuring from
 * a large parent (a Python runner) would inflate every small workload.
 * PRELOAD is put into LD_PRELOAD of COMMAND only; treerun itself runs without it.
 * RESULT gets one JSON object; stdout and stderr are COMMAND's. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig) {
    (void)sig;
    alarm_fired = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* Kills every process whose parent is us: the main child's group and any orphans
 * that were reparented to us (they may have left the group). */
static void kill_children(pid_t main_pgid) {
    if (main_pgid > 0) kill(-main_pgid, SIGKILL);
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *close_paren = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (close_paren && sscanf(close_paren + 2, "%c %d", &state, &ppid) == 2 && ppid == self)
            kill((pid_t)atoi(e->d_name), SIGKILL);
    }
    closedir(d);
}

static void usage(void) {
    fprintf(stderr, "usage: treerun -o RESULT [-p PRELOAD] [-t TIMEOUT_S] -- COMMAND [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *result_path = NULL, *preload = NULL;
    unsigned timeout_s = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+o:p:t:")) != -1) {
        switch (opt) {
        case 'o': result_path = optarg; break;
        case 'p': preload = optarg; break;
        case 't': timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!result_path || optind >= argc) usage();
    char **command = argv + optind;

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        perror("treerun: PR_SET_CHILD_SUBREAPER");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 must return EINTR */
    sigaction(SIGALRM, &sa, NULL);

    double start = now_s();
    pid_t child = fork();
    if (child < 0) {
        perror("treerun: fork");
        return 2;
    }
    if (child == 0) {
        setpgid(0, 0);
        if (preload && *preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(command[0], command);
        fprintf(stderr, "treerun: cannot run %s: %s\n", command[0], strerror(errno));
        _exit(127);
    }
    setpgid(child, child); /* also here, so the group exists before any kill */
    if (timeout_s) alarm(timeout_s);

    long max_rss_kb = 0;
    double wall = -1, user = 0, sys = 0;
    int main_status = 0, reaped = 0, timed_out = 0;
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, 0, &ru);
        if (pid < 0) {
            if (errno == EINTR && alarm_fired) {
                alarm_fired = 0;
                timed_out = 1;
                kill_children(child);
                continue;
            }
            if (errno == EINTR) continue;
            break; /* ECHILD: the whole tree is gone */
        }
        reaped++;
        if (ru.ru_maxrss > max_rss_kb) max_rss_kb = ru.ru_maxrss;
        user += tv_s(ru.ru_utime);
        sys += tv_s(ru.ru_stime);
        if (pid == child) {
            wall = now_s() - start;
            main_status = status;
            /* Orphans still running get a grace period, then are stopped. */
            alarm(timed_out ? 1 : 30);
        }
    }
    alarm(0);

    FILE *out = fopen(result_path, "w");
    if (!out) {
        perror("treerun: result file");
        return 2;
    }
    fprintf(out,
            "{\"wall_s\": %.6f, \"max_rss_kb\": %ld, \"user_s\": %.6f, \"sys_s\": %.6f, "
            "\"exit\": %d, \"signal\": %d, \"processes\": %d, \"timed_out\": %s}\n",
            wall, max_rss_kb, user, sys, WIFEXITED(main_status) ? WEXITSTATUS(main_status) : -1,
            WIFSIGNALED(main_status) ? WTERMSIG(main_status) : 0, reaped,
            timed_out ? "true" : "false");
    fclose(out);
    return 0;
}
