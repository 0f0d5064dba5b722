/* membudget state, pages, release and dump: control of a running process
 * through the control area of its live page (policy/statspage.h, struct
 * mb_statspage_control, which gives the protocol; the process's side is
 * policy/control.c).
 *
 * Permission is kill(2)'s: the page must open for writing (its owner, or
 * root), kill(pid, 0) must succeed, and the page must be this process's: the
 * reader of `stat` (tools/livestats.c) checks the directory, the file and the
 * record, then the page opened here for writing must be the same record, with
 * the process's start time from /proc/PID/stat.  The page is another user's
 * file: it is mapped only for the futex words and the lock, every access to
 * the mapping runs under a SIGBUS guard (a file cut short under us is an
 * error, not a crash), and what the process answers is copied, bounded and
 * escaped before it is printed.  Nothing waits forever: the lock and the
 * answer each have the time limit of --timeout. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "membudget.h"
#include "policy/config.h"
#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/textout.h"

#define CONTROL_TIMEOUT_DEFAULT 5.0 /* seconds: the lock, then the answer */
#define CONTROL_EXIT_NO_ANSWER 3    /* the process did not answer in time */

struct control_cmd {
    const char *name;
    enum mb_control_op op;
    const char *operand; /* what follows PID, for the usage text; NULL: nothing */
};

static const struct control_cmd control_cmds[] = {
    {"state", MB_CONTROL_STATE, "active|inactive"},
    {"pages", MB_CONTROL_PAGES, "N"},
    {"release", MB_CONTROL_RELEASE, "conservative|strict|critical|inactive-limit"},
    {"dump", MB_CONTROL_DUMP, NULL},
};

static const char *const level_names[] = {NULL, "conservative", "strict", "critical",
                                          "inactive-limit"};
_Static_assert(sizeof level_names / sizeof *level_names == MEMBUDGET_LEVEL_INACTIVE_LIMIT + 1,
               "a name per public level");

/* ---- the SIGBUS guard ------------------------------------------------------- */

static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_armed;

static void on_bus(int sig) {
    if (bus_armed) siglongjmp(bus_jump, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void bus_guard_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

/* ---- opening the page ------------------------------------------------------- */

struct target {
    const char *sub;
    pid_t pid;
    int fd;
    struct mb_statspage_control *c; /* in the shared mapping */
    void *map;
    struct mb_statspage page; /* the checked copy */
};

/* Field 22 of /proc/PID/stat, the start time; 0 when it cannot be read.
 * Fields are counted from the last ')': the name may hold both. */
static uint64_t proc_start_ticks(pid_t pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL) return 0;
    p++;
    for (int field = 3; field < 22 && *p != '\0'; field++) {
        while (*p == ' ') p++;
        while (*p != ' ' && *p != '\0') p++;
    }
    return strtoull(p, NULL, 10);
}

/* live_read's refusals, in one line each; exit status 1. */
static int read_failure(const struct target *t, enum live_status s, const struct live_error *e) {
    char why[sizeof e->why];
    tx_term_buf(why, sizeof why, e->why, sizeof why);
    bool exists = kill(t->pid, 0) == 0 || errno == EPERM;
    if ((s == LIVE_STALE || s == LIVE_NONE) && !exists)
        cli_error(t->sub, "no process %ld", (long)t->pid);
    else if (s == LIVE_STALE)
        cli_error(t->sub, "pid %ld is not running with membudget (the page there was another "
                  "process's, and was removed)", (long)t->pid);
    else if (s == LIVE_NONE)
        cli_error(t->sub, "pid %ld is not running with membudget (%s)", (long)t->pid, why);
    else if (s == LIVE_DENIED)
        cli_error(t->sub, "pid %ld: permission denied (only its owner or root may command it)",
                  (long)t->pid);
    else
        cli_error(t->sub, "refused the page of pid %ld: %s", (long)t->pid, why);
    return CLI_EXIT_FAILURE;
}

/* The page of t->pid, a process of uid, opened for writing in its owner's
 * directory, without following a link or blocking: -1 after one line. */
static int open_for_writing(const struct target *t, uid_t uid) {
    char dir_path[96], name[24];
    live_dir_path(dir_path, sizeof dir_path, uid);
    snprintf(name, sizeof name, "%ld", (long)t->pid);
    int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (dir < 0 || fstat(dir, &st) != 0 || st.st_uid != uid || (st.st_mode & 022) != 0) {
        cli_error(t->sub, "pid %ld: %s changed under the command", (long)t->pid, dir_path);
        if (dir >= 0) close(dir);
        return -1;
    }
    int fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int err = errno;
    close(dir);
    if (fd < 0) {
        if (err == EACCES || err == EPERM)
            cli_error(t->sub, "pid %ld: permission denied (only its owner or root may command it)",
                      (long)t->pid);
        else
            cli_error(t->sub, "pid %ld: cannot open its page for writing: %s", (long)t->pid,
                      strerror(err));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != uid || st.st_nlink != 1 ||
        st.st_size < (off_t)MB_STATSPAGE_FILE_BYTES) {
        cli_error(t->sub, "refused the page of pid %ld: not a regular file of its owner's of %u "
                  "bytes", (long)t->pid, MB_STATSPAGE_FILE_BYTES);
        close(fd);
        return -1;
    }
    return fd;
}

/* Finds, checks, opens and maps the page of t->pid; 0, or an exit status
 * after one line. */
static int target_open(struct target *t) {
    struct live_process lp;
    struct live_error e;
    enum live_status s = live_read(t->pid, &lp, &e);
    if (s != LIVE_OK) return read_failure(t, s, &e);
    if (kill(t->pid, 0) != 0) {
        if (errno == ESRCH) return read_failure(t, LIVE_STALE, &e);
        cli_error(t->sub, "pid %ld: permission denied (only its owner or root may command it)",
                  (long)t->pid);
        return CLI_EXIT_FAILURE;
    }
    t->fd = open_for_writing(t, lp.uid);
    if (t->fd < 0) return CLI_EXIT_FAILURE;
    /* The file opened here must hold the record just checked, of this
     * process: the same pid (live_read_fd), creation and start time, and that
     * start time the process's own. */
    s = live_read_fd(t->fd, t->pid, &t->page, &e);
    uint64_t start = proc_start_ticks(t->pid);
    if (s != LIVE_OK || t->page.created_unix_ns != lp.page.created_unix_ns || start == 0 ||
        t->page.start_ticks != start) {
        cli_error(t->sub, "refused the page of pid %ld: it is not the page of the running process "
                  "(its start time is not the process's)", (long)t->pid);
        return CLI_EXIT_FAILURE;
    }
    if (t->page.size < MB_STATSPAGE_SIZE_CONTROL) {
        cli_error(t->sub, "pid %ld does not take commands (its library predates them)",
                  (long)t->pid);
        return CLI_EXIT_FAILURE;
    }
    t->map = mmap(NULL, MB_STATSPAGE_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
    if (t->map == MAP_FAILED) {
        cli_error(t->sub, "pid %ld: cannot map its page: %s", (long)t->pid, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    t->c = &((struct mb_statspage *)t->map)->control;
    return 0;
}

/* ---- the request -------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the process says it takes commands; one line when it does not. */
static bool serving(const struct target *t) {
    uint32_t v = atomic_load_explicit(&t->c->serving, memory_order_acquire);
    if (v == MB_CONTROL_SERVING) return true;
    if (v == MB_CONTROL_OFF)
        cli_error(t->sub, "pid %ld does not take commands (MEMBUDGET_CONTROL=off)", (long)t->pid);
    else if (v == MB_CONTROL_NO_THREAD)
        cli_error(t->sub, "pid %ld does not take commands (its control thread could not be started)",
                  (long)t->pid);
    else
        cli_error(t->sub, "refused the page of pid %ld: control state %" PRIu32 " is not one this "
                  "version knows", (long)t->pid, v);
    return false;
}

/* Takes the lock (CAS 0 -> our pid; a holder that no longer exists is taken
 * over); false, after one line, when the deadline passes first. */
static bool lock_take(const struct target *t, uint64_t deadline, double timeout) {
    uint32_t me = (uint32_t)getpid(), holder = 0;
    for (;;) {
        uint32_t expected = 0;
        if (atomic_compare_exchange_strong(&t->c->lock, &expected, me)) return true;
        holder = expected;
        if (holder == me || (kill((pid_t)holder, 0) != 0 && errno == ESRCH)) {
            if (atomic_compare_exchange_strong(&t->c->lock, &expected, me)) return true;
            continue;
        }
        if (now_ns() >= deadline) break;
        pause_ms(10);
    }
    cli_error(t->sub, "pid %ld: another command (pid %" PRIu32 ") still holds its control area; "
              "gave up after %g s", (long)t->pid, holder, timeout);
    return false;
}

static void lock_release(const struct target *t) {
    uint32_t me = (uint32_t)getpid();
    atomic_compare_exchange_strong(&t->c->lock, &me, 0);
}

/* Posts op and arg; returns the request number the answer will carry. */
static uint32_t post(const struct target *t, enum mb_control_op op, uint64_t arg) {
    struct mb_statspage_control *c = t->c;
    uint32_t r = atomic_load_explicit(&c->request, memory_order_relaxed);
    uint32_t writing = (r & 1u) ? r + 2 : r + 1; /* odd: not to be served yet */
    atomic_store_explicit(&c->request, writing, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    __atomic_store_n(&c->op, (uint32_t)op, __ATOMIC_RELAXED);
    __atomic_store_n(&c->arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&c->requester, (uint32_t)getpid(), __ATOMIC_RELAXED);
    atomic_store_explicit(&c->request, writing + 1, memory_order_release);
    os_futex_wake_shared(&c->request, 1);
    return writing + 1;
}

/* What the process answered, copied out of the page. */
struct reply {
    int32_t result;
    uint64_t bytes, footprint;
    char text[MB_CONTROL_TEXT];
};

/* Waits for the answer to request r; 0 with *out filled, or an exit status
 * after one line. */
static int await(const struct target *t, uint32_t r, uint64_t deadline, double timeout,
                 struct reply *out) {
    struct mb_statspage_control *c = t->c;
    for (;;) {
        uint32_t d = atomic_load_explicit(&c->done, memory_order_acquire);
        if (d == r) break;
        uint64_t now = now_ns();
        if (kill(t->pid, 0) != 0 && errno == ESRCH) {
            cli_error(t->sub, "pid %ld exited before answering", (long)t->pid);
            return CLI_EXIT_FAILURE;
        }
        if (now >= deadline) {
            /* Withdrawn: an odd request is never served (unless the process
             * had already begun, which its `done` would then say). */
            uint32_t posted = r;
            bool withdrawn = atomic_compare_exchange_strong(&c->request, &posted, r + 1);
            if (!withdrawn || atomic_load_explicit(&c->done, memory_order_acquire) != r) {
                cli_error(t->sub, "pid %ld did not answer within %g s (stopped, or its control "
                          "thread is held up); the request was withdrawn", (long)t->pid, timeout);
                return CONTROL_EXIT_NO_ANSWER;
            }
        }
        uint64_t wait = deadline - now < 100000000u ? deadline - now : 100000000u;
        os_futex_wait_shared(&c->done, d, wait);
    }
    out->result = __atomic_load_n(&c->result, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&c->result_bytes, __ATOMIC_RELAXED);
    out->footprint = __atomic_load_n(&c->result_footprint, __ATOMIC_RELAXED);
    memcpy(out->text, c->result_text, sizeof out->text);
    out->text[sizeof out->text - 1] = '\0';
    return 0;
}

/* Serving, the lock, the request and the answer; 0 with *out, or an exit
 * status after one line. */
static int exchange_unguarded(const struct target *t, enum mb_control_op op, uint64_t arg,
                              uint64_t deadline, double timeout, struct reply *out) {
    if (!serving(t)) return CLI_EXIT_FAILURE;
    if (!lock_take(t, deadline, timeout)) return CONTROL_EXIT_NO_ANSWER;
    uint32_t r = post(t, op, arg);
    int rc = await(t, r, deadline, timeout, out);
    lock_release(t);
    return rc;
}

/* The whole exchange under the SIGBUS guard. */
static int exchange(const struct target *t, enum mb_control_op op, uint64_t arg, double timeout,
                    struct reply *out) {
    const uint64_t deadline = now_ns() + (uint64_t)(timeout * 1e9);
    bus_guard_install();
    if (sigsetjmp(bus_jump, 1) != 0) {
        bus_armed = 0;
        cli_error(t->sub, "pid %ld: its page was cut short under the command", (long)t->pid);
        return CLI_EXIT_FAILURE;
    }
    bus_armed = 1;
    int rc = exchange_unguarded(t, op, arg, deadline, timeout, out);
    bus_armed = 0;
    return rc;
}

/* ---- the commands ------------------------------------------------------------- */

static void print_bytes(uint64_t bytes) {
    char text[32];
    printf("%s (%" PRIu64 " bytes)", mb_bytes_text(text, sizeof text, bytes), bytes);
}

/* The process answered that it could not: one line, exit status 1. */
static int reply_failed(const struct target *t, const struct reply *r) {
    char why[sizeof r->text];
    tx_term_buf(why, sizeof why, r->text, sizeof why);
    cli_error(t->sub, "pid %ld could not do it: %s (%s)", (long)t->pid, strerror(r->result), why);
    return CLI_EXIT_FAILURE;
}

static void print_reply(const struct target *t, enum mb_control_op op, uint64_t arg,
                        const struct reply *r) {
    switch (op) {
    case MB_CONTROL_STATE:
        printf("pid %ld: state %s; kill threshold ", (long)t->pid,
               arg == MB_STATE_INACTIVE ? "inactive" : "active");
        break;
    case MB_CONTROL_PAGES:
        printf("pid %ld: pages %" PRIu64 "; kill threshold ", (long)t->pid, arg);
        break;
    case MB_CONTROL_RELEASE:
        printf("pid %ld: pressure %s: callbacks run, released ", (long)t->pid, level_names[arg]);
        print_bytes(r->bytes);
        fputs("; footprint now ", stdout);
        print_bytes(r->footprint);
        putchar('\n');
        return;
    default: /* the report's path, alone on its line */
        tx_term(stdout, r->text);
        putchar('\n');
        return;
    }
    print_bytes(r->bytes);
    fputs(": ", stdout);
    tx_term(stdout, r->text);
    putchar('\n');
}

static const char control_usage[] =
    "usage: membudget state PID active|inactive [--timeout SECONDS]\n"
    "       membudget pages PID N [--timeout SECONDS]\n"
    "       membudget release PID conservative|strict|critical|inactive-limit [--timeout SECONDS]\n"
    "       membudget dump PID [--timeout SECONDS]\n"
    "\n"
    "Command a running process that has the library (its owner or root, as kill):\n"
    "  state     set the jetsam model's process state; its thresholds change at once\n"
    "  pages     set the jetsam model's page count (1 to 1000000)\n"
    "  release   send it pressure: its callbacks run at LEVEL and it releases what\n"
    "            that level releases; prints the bytes released\n"
    "  dump      make it write a report and go on running; prints the report's path\n"
    "\n"
    "  --timeout SECONDS  give up after this long (0.1 to 60; default 5)\n"
    "\n"
    "Exit status: 0 done; 1 not done (no such process, not running with membudget,\n"
    "permission denied, MEMBUDGET_CONTROL=off, or the process could not); 2 bad\n"
    "arguments; 3 no answer in time.\n";

/* The operand after PID as the request's argument; exits 2 on anything else. */
static uint64_t parse_operand(const struct control_cmd *cmd, const char *s) {
    uint64_t v = 0;
    switch (cmd->op) {
    case MB_CONTROL_STATE:
        if (strcmp(s, "active") == 0) return MB_STATE_ACTIVE;
        if (strcmp(s, "inactive") == 0) return MB_STATE_INACTIVE;
        break;
    case MB_CONTROL_PAGES:
        if (cli_parse_uint(s, 1, MB_CONTROL_PAGES_MAX, &v)) return v;
        cli_usage_error(cmd->name, "page count '%s' is not valid (expected a whole number from 1 "
                        "to 1000000)", s);
    case MB_CONTROL_RELEASE:
        for (unsigned i = MEMBUDGET_LEVEL_CONSERVATIVE; i <= MEMBUDGET_LEVEL_INACTIVE_LIMIT; i++)
            if (strcmp(s, level_names[i]) == 0) return i;
        break;
    default:
        break;
    }
    cli_usage_error(cmd->name, "'%s' is not valid (expected %s)", s, cmd->operand);
}

static int control_main(const struct control_cmd *cmd, int argc, char **argv) {
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char accepted[160];
    snprintf(accepted, sizeof accepted, "PID%s%s, --timeout SECONDS, --help",
             cmd->operand != NULL ? " " : "", cmd->operand != NULL ? cmd->operand : "");
    double timeout = CONTROL_TIMEOUT_DEFAULT;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt(cmd->name, argc, argv, ":ht:", longopts, accepted)) != -1) {
        if (c == 'h') {
            fputs(control_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (c == 't' && !cli_parse_seconds(optarg, 0.1, 60, &timeout))
            cli_usage_error(cmd->name, "--timeout '%s' is not valid (expected seconds from 0.1 to "
                            "60, such as 5 or 0.5)", optarg);
    }
    int want = cmd->operand != NULL ? 2 : 1;
    if (argc - optind < want)
        cli_usage_error(cmd->name, "%s (accepted: %s)",
                        optind >= argc ? "no PID given" : "no operand given", accepted);
    if (argc - optind > want)
        cli_usage_error(cmd->name, "unexpected argument '%s' (accepted: %s)", argv[optind + want],
                        accepted);
    uint64_t pid;
    if (!cli_parse_uint(argv[optind], 1, INT32_MAX, &pid))
        cli_usage_error(cmd->name, "PID '%s' is not valid (expected a process id: a whole number "
                        "from 1)", argv[optind]);
    uint64_t arg = want == 2 ? parse_operand(cmd, argv[optind + 1]) : 0;
    struct target t = {.sub = cmd->name, .pid = (pid_t)pid, .fd = -1};
    int rc = target_open(&t);
    struct reply r;
    if (rc == 0) rc = exchange(&t, cmd->op, arg, timeout, &r);
    if (rc == 0 && r.result != 0) rc = reply_failed(&t, &r);
    if (rc == 0) print_reply(&t, cmd->op, arg, &r);
    if (t.map != NULL && t.map != MAP_FAILED) munmap(t.map, MB_STATSPAGE_FILE_BYTES);
    if (t.fd >= 0) close(t.fd);
    if (rc == 0 && fflush(stdout) != 0) rc = CLI_EXIT_FAILURE;
    return rc;
}

int cmd_control(int argc, char **argv) {
    for (size_t i = 0; i < sizeof control_cmds / sizeof *control_cmds; i++)
        if (strcmp(argv[0], control_cmds[i].name) == 0)
            return control_main(&control_cmds[i], argc, argv);
    cli_usage_error(NULL, "unknown command '%s'", argv[0]);
}
