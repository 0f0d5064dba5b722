/* `membudget run` as the command's parent (see run_loop.h). */
#include "tools/run_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/proc.h"
#include "tools/run_start.h"
#include "tools/textout.h"

#define RUN_POLL_MS 100 /* how often the live page is read for the events file */

/* ---- signals ---------------------------------------------------------------------- */

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t stop_signal; /* SIGINT or SIGTERM came: no more restarts */

static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT};
#define HANDLED_COUNT (sizeof handled / sizeof handled[0])
static struct sigaction original[HANDLED_COUNT];

static void on_signal(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (sig == SIGINT || sig == SIGTERM) stop_signal = sig;
    /* The terminal's SIGINT goes to the whole foreground group, the command
     * included: sent by the kernel (si_code > 0), not by a process. */
    if (sig == SIGINT && info != NULL && info->si_code > 0) return;
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

void run_signals_install(void) {
    struct sigaction act = {.sa_sigaction = on_signal, .sa_flags = SA_RESTART | SA_SIGINFO};
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigemptyset(&act.sa_mask);
    sigemptyset(&ignore.sa_mask);
    for (size_t i = 0; i < HANDLED_COUNT; i++)
        sigaction(handled[i], handled[i] == SIGQUIT ? &ignore : &act, &original[i]);
}

static void signals_block(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < HANDLED_COUNT; i++) sigaddset(&set, handled[i]);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* ---- starting the command ----------------------------------------------------------- */

struct spawned {
    pid_t pid;
    int exec_err; /* errno of a failed exec; 0 when exec succeeded */
    enum run_start_result start;
    char why[1024];
};

static _Noreturn void exec_child(const struct run_job *job, const sigset_t *old_mask,
                                 int report_fd, const struct run_handshake *hs) {
    job->child_env(job->child_env_arg);
    run_handshake_child(hs);
    for (size_t i = 0; i < HANDLED_COUNT; i++) sigaction(handled[i], &original[i], NULL);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execvp(job->cmd[0], job->cmd);
    int err = errno;
    ssize_t w = write(report_fd, &err, sizeof err);
    (void)w;
    _exit(RUN_EXIT_NOT_FOUND);
}

/* Forks and execs the command with the handshake open and waits for the
 * library's answer (a command that does not answer is killed).  false after
 * an error line when nothing was started. */
static bool spawn(const struct run_job *job, struct spawned *s) {
    struct run_handshake hs;
    int pipe_fds[2];
    memset(s, 0, sizeof *s);
    if (!run_handshake_open(&hs)) return false;
    if (proc_pipe_cloexec(pipe_fds) != 0) {
        cli_error("run", "pipe: %s", strerror(errno));
        run_handshake_close(&hs);
        return false;
    }
    /* Signals wait, blocked, until the child's pid is known. */
    sigset_t old_mask;
    signals_block(&old_mask);
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0) {
        close(pipe_fds[0]);
        exec_child(job, &old_mask, pipe_fds[1], &hs);
    }
    if (s->pid > 0) child_pid = s->pid;
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    close(pipe_fds[1]);
    if (s->pid < 0) {
        cli_error("run", "fork: %s", strerror(errno));
        close(pipe_fds[0]);
        run_handshake_close(&hs);
        return false;
    }
    run_handshake_parent(&hs);
    ssize_t got;
    while ((got = read(pipe_fds[0], &s->exec_err, sizeof s->exec_err)) < 0 && errno == EINTR) {
    }
    close(pipe_fds[0]);
    if (got != (ssize_t)sizeof s->exec_err) {
        s->exec_err = 0;
        s->start = run_handshake_wait(&hs, s->pid, job->start_timeout, s->why, sizeof s->why);
        /* Whatever kept the library out, the command is not left running
         * without a budget. */
        if (s->start != RUN_START_LIVE) kill(s->pid, SIGKILL);
    }
    run_handshake_close(&hs);
    return true;
}

/* ---- waiting for it ------------------------------------------------------------------- */

/* Reaps pid into *status; with an events file, reads its live page every
 * RUN_POLL_MS meanwhile.  false after an error line. */
static bool wait_child(pid_t pid, struct run_events *ev, int *status) {
    int pidfd = -1;
#ifdef SYS_pidfd_open
    if (ev->out != NULL) pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    bool ok = true;
    for (;;) {
        pid_t r = waitpid(pid, status, ev->out != NULL ? WNOHANG : 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            cli_error("run", "waitpid: %s", strerror(errno));
            ok = false;
            break;
        }
        if (r != 0) continue;
        run_events_poll(ev);
        struct pollfd fd = {pidfd, POLLIN, 0};
        poll(&fd, pidfd >= 0 ? 1 : 0, RUN_POLL_MS); /* EINTR: look again */
    }
    if (pidfd >= 0) close(pidfd);
    child_pid = 0;
    return ok;
}

/* ---- one run ----------------------------------------------------------------------------- */

struct run_result {
    bool started;   /* it ran under the library: `end` says how it ended */
    double seconds; /* from fork to its end */
    struct run_end end;
};

static uint64_t now_unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec_failure(const char *cmd, int err, char *why, size_t cap) {
    if (err == ENOENT && strchr(cmd, '/') == NULL) {
        snprintf(why, cap, "%s: command not found", cmd);
        cli_error("run", "%s", why);
        return RUN_EXIT_NOT_FOUND;
    }
    snprintf(why, cap, "%s: %s", cmd, strerror(err));
    cli_error("run", "%s", why);
    return err == ENOENT || err == ENOTDIR ? RUN_EXIT_NOT_FOUND : RUN_EXIT_NOT_EXECUTABLE;
}

/* The line of a command the library did not start in. */
static void unbudgeted(const char *cmd, const struct spawned *s, int status, char *why,
                       size_t cap) {
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && s->start != RUN_START_EXITED)
        snprintf(why, cap, "%s: %s%s; killed it, so that it does not run without a budget", cmd,
                 s->why, s->start == RUN_START_CLOSED ? " (it closed the handshake descriptor)" : "");
    else if (WIFSIGNALED(status))
        snprintf(why, cap, "%s: %s, so it ran without a budget (until signal %d ended it)", cmd,
                 s->why, WTERMSIG(status));
    else
        snprintf(why, cap, "%s: %s, so it ran without a budget (it exited with status %d)", cmd,
                 s->why, WEXITSTATUS(status));
    cli_error("run", "%s", why);
}

/* Runs the command once (run number n); returns run's status for it. */
static int run_once(const struct run_job *job, unsigned n, struct run_result *r) {
    struct run_events *ev = job->events;
    memset(r, 0, sizeof *r);
    uint64_t started_ns = now_unix_ns();
    double t0 = now_seconds();
    struct spawned s;
    if (!spawn(job, &s)) return RUN_EXIT_INTERNAL;
    ev->run = n;
    ev->pid = s.pid;
    if (s.exec_err == 0 && s.start == RUN_START_LIVE)
        run_events_start(ev, n, s.pid, job->cmd, job->limit, job->state);
    int status = 0;
    if (!wait_child(s.pid, ev, &status)) return RUN_EXIT_INTERNAL;
    r->seconds = now_seconds() - t0;
    char why[2048];
    if (s.exec_err != 0) {
        int code = exec_failure(job->cmd[0], s.exec_err, why, sizeof why);
        run_events_not_started(ev, code, why);
        return code;
    }
    /* A process that died leaves its live-statistics page behind. */
    live_clean_if_stale(s.pid);
    if (s.start != RUN_START_LIVE) {
        unbudgeted(job->cmd[0], &s, status, why, sizeof why);
        run_events_not_started(ev, RUN_EXIT_UNBUDGETED, why);
        return RUN_EXIT_UNBUDGETED;
    }
    r->started = true;
    run_end_classify(status, s.pid, started_ns, job->place, &r->end);
    bool budget = r->end.kind == RUN_END_ACTIVE_LIMIT || r->end.kind == RUN_END_INACTIVE_LIMIT;
    if (budget) run_print_summary(&r->end, s.pid);
    if (r->end.status != 0) run_print_end(job->cmd[0], s.pid, &r->end);
    run_events_death(ev, &r->end);
    return r->end.status;
}

/* ---- restarts ------------------------------------------------------------------------------ */

static bool wants_restart(const struct run_job *job, const struct run_result *r) {
    if (!r->started) return false; /* it would not start the next time either */
    switch (job->restart) {
    case RUN_RESTART_ALWAYS:
        return r->end.status != 0;
    case RUN_RESTART_ON_BUDGET:
        return r->end.kind == RUN_END_ACTIVE_LIMIT || r->end.kind == RUN_END_INACTIVE_LIMIT;
    case RUN_RESTART_NEVER:
        break;
    }
    return false;
}

/* Sleeps `seconds` unless SIGINT or SIGTERM comes; false when one came. */
static bool restart_pause(double seconds) {
    double end = now_seconds() + seconds;
    while (stop_signal == 0) {
        double left = end - now_seconds();
        if (left <= 0) return true;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void stop_line(const struct run_job *job, const char *reason) {
    fputs("membudget run: not restarting ", stderr);
    tx_term(stderr, job->cmd[0]);
    fprintf(stderr, ": %s\n", reason);
}

/* Whether to start the command again after r; says why not when it
 * would have been, and counts `recent` as WebKit's m_recentCrashCount: a run
 * that lasted the window clears it, and one more than max_restarts deaths
 * in a row, each within the window of its start, stop the restarts. */
static bool restart_allowed(const struct run_job *job, const struct run_result *r,
                            unsigned *recent, unsigned restarts) {
    char reason[256], name[32];
    if (stop_signal != 0) {
        snprintf(reason, sizeof reason, "run received %s",
                 run_signal_name(stop_signal, name, sizeof name));
    } else {
        if (r->seconds >= job->window_s) *recent = 0;
        if (++*recent <= job->max_restarts) return true;
        snprintf(reason, sizeof reason,
                 "it died again within %g s of a restart (%u deaths in a row; --restart-max %u, "
                 "--restart-window %g)",
                 job->window_s, *recent, job->max_restarts, job->window_s);
    }
    stop_line(job, reason);
    run_events_stop(job->events, reason, restarts);
    return false;
}

int run_job_run(const struct run_job *job) {
    unsigned run = 1, restarts = 0, recent = 0;
    for (;;) {
        struct run_result r;
        int code = run_once(job, run, &r);
        if (!wants_restart(job, &r) || !restart_allowed(job, &r, &recent, restarts)) return code;
        restarts++;
        fputs("membudget run: restarting ", stderr);
        tx_term(stderr, job->cmd[0]);
        fprintf(stderr, " (restart %u) in %g s\n", restarts, job->delay_s);
        run_events_restart(job->events, restarts, recent, job->delay_s);
        if (!restart_pause(job->delay_s)) {
            char reason[64], name[32];
            snprintf(reason, sizeof reason, "run received %s",
                     run_signal_name(stop_signal, name, sizeof name));
            stop_line(job, reason);
            run_events_stop(job->events, reason, restarts);
            return code;
        }
        run++;
    }
}
