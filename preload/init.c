/* Start-up, fork and exit.  Nothing here runs on an allocation path: the first
 * malloc initializes the allocator from static state (alloc_init), and this
 * constructor, which runs before main, adds what needs libc: the fork handler,
 * the configuration, the limits and the pressure policy, the monitor, and the
 * check that we really are the process's allocator. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "alloc/fmt.h"
#include "membudget.h"
#include "policy/group.h"
#include "policy/budget.h"
#include "policy/config.h"
#include "policy/dump.h"
#include "policy/limits.h"
#include "policy/monitor.h"
#include "policy/pressure.h"
#include "policy/sample.h"
#include "policy/statspage.h"
#include "preload/handshake.h"
#include "preload/preload.h"

int mb_verbose;

/* One handler takes every allocator lock in rank order (alloc/lock.h). */
static void fork_prepare(void) {
    mb_sample_atfork_quiesce(); /* takes no lock: before them all */
    heap_atfork_prepare();
    mb_pressure_atfork_prepare();
    mmap_atfork_prepare();
    alloc_backend.atfork_prepare();
    mb_sample_atfork_prepare();
}

static void fork_parent(void) {
    mb_sample_atfork_parent();
    alloc_backend.atfork_parent();
    mmap_atfork_parent();
    mb_pressure_atfork_parent();
    heap_atfork_parent();
}

static void fork_child(void) {
    /* Locks are reset from the innermost rank out, so the debug build's rank
     * check sees no lock held when heap_atfork_child takes the heap lock. */
    mb_sample_atfork_child();
    alloc_backend.atfork_child();
    mmap_atfork_child();
    mb_pressure_atfork_child_unlock();
    heap_atfork_child();
    /* The child has its own budget story: its policy starts over. */
    mb_monitor_atfork_child();
    mb_dump_atfork_child();
    mb_pressure_atfork_child();
    mb_statspage_atfork_child();
    mb_group_atfork_child();
}

/* Start-up of the policy: configuration (one line per bad variable), limits,
 * monitor, pressure, dump.  Large structures live in static storage: this runs
 * once, before main. */
static struct mb_config cfg;

static void policy_start(void) {
    static struct mb_limits lim;
    /* A misspelt name is worth a line too; a setuid program ignores them all. */
    if (!os_secure_exec()) mb_config_check_unknown(environ, NULL);
    mb_verbose = (int)cfg.verbose;
    mb_limits_init(&lim, "/", &cfg, NULL);
    mb_monitor_init(&cfg, &lim);
    mb_pressure_init(&cfg, &lim);
    mb_dump_init(mb_fill_stats);
    mb_group_init(&cfg, NULL);
    mb_sample_init(cfg.sample_bytes);
    if (mb_verbose >= 2) {
        char buf[4096];
        size_t n = mb_limits_format(mb_pressure_limits(), buf, sizeof buf);
        os_write_all(2, buf, n);
    }
}

/* The library's one thread (policy/monitor.h): the monitor with
 * MEMBUDGET_MONITOR=thread, publishing and commands with MEMBUDGET_CONTROL=on;
 * after mb_statspage_start, which sets when the page is due. */
static void thread_start(void) {
    bool monitor = cfg.monitor == MB_MONITOR_THREAD, control = cfg.control == MB_CONTROL_MODE_ON;
    if (mb_monitor_start_thread(monitor, control) == 0) return;
    static const char monitor_msg[] =
        "membudget: MEMBUDGET_MONITOR=thread: the monitor thread could not be started; "
        "the monitor runs inline only\n";
    static const char control_msg[] =
        "membudget: MEMBUDGET_CONTROL=on: the control thread could not be started; the process "
        "takes no commands and publishes its live statistics at allocations only\n";
    if (monitor) os_write_all(2, monitor_msg, sizeof monitor_msg - 1);
    if (control && mb_verbose >= 1) os_write_all(2, control_msg, sizeof control_msg - 1);
}

/* MEMBUDGET_BACKEND: switch before our fork handler is registered, so that a
 * backend's own (jemalloc registers one as it starts) takes its locks after
 * ours. */
static void backend_start(void) {
    const char *name = mb_option_value_name(MB_OPT_BACKEND, cfg.backend);
    const char *why = alloc_backend_choose(name);
    if (why == NULL) return;
    char buf[256];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f, "membudget: MEMBUDGET_BACKEND=");
    mb_buf_str(&f, name);
    mb_buf_str(&f, ": ");
    mb_buf_str(&f, why);
    mb_buf_str(&f, "; using the native allocator\n");
    os_write_all(2, f.data, f.len);
}

/* ---- the handshake with `membudget run` (preload/handshake.h) -------------- */

static int handshake_fd = -1;

/* The decimal number at *p up to `end`; false on anything else or overflow. */
static bool parse_decimal(const char **p, char end, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9') return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (max - (uint64_t)(*s - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (*s != end) return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* Takes MEMBUDGET_HANDSHAKE out of the environment, every copy of it, before
 * anything reads the environment (the unknown-variable check would name it)
 * and before the program can exec another that would answer in our place;
 * keeps the descriptor when it is the socket the value names.  A bad value is
 * ignored: whoever set it learns nothing, the host runs on.  Only pointers
 * move in environ: nothing is allocated. */
static void handshake_take(void) {
    static const char prefix[] = MB_HANDSHAKE_ENV "=";
    const char *value = NULL;
    char **out = environ;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) == 0) {
            if (value == NULL) value = *e + sizeof prefix - 1;
            continue;
        }
        *out++ = *e;
    }
    if (out != NULL) *out = NULL;
    /* A setuid program answers no one (secure_getenv's rule). */
    if (value == NULL || os_secure_exec()) return;
    uint64_t fd, inode;
    struct stat st;
    if (!parse_decimal(&value, ':', 1u << 30, &fd) ||
        !parse_decimal(&value, '\0', UINT64_MAX, &inode))
        return;
    if (fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode) || (uint64_t)st.st_ino != inode) return;
    handshake_fd = (int)fd;
}

/* One record, then the descriptor is closed: the command's own children
 * never see it. */
static void handshake_answer(bool allocator) {
    if (handshake_fd < 0) return;
    char buf[MB_HANDSHAKE_RECORD_MAX];
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f, MB_HANDSHAKE_TAG " ");
    mb_buf_u64(&f, (uint64_t)os_getpid());
    mb_buf_str(&f, allocator ? " " MB_HANDSHAKE_ALLOCATOR " " : " " MB_HANDSHAKE_FOREIGN " ");
    mb_buf_str(&f, MEMBUDGET_VERSION "\n");
    ssize_t sent = send(handshake_fd, f.data, f.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent; /* a `run` that is gone or full wants no answer */
    os_close(handshake_fd);
    handshake_fd = -1;
}

__attribute__((constructor)) static void membudget_start(void) {
    alloc_init();
    handshake_take();
    mb_config_read_env(&cfg, NULL); /* one line per bad variable */
    backend_start();
    os_atfork(fork_prepare, fork_parent, fork_child);
    policy_start();
    mb_statspage_start(mb_verbose >= 1); /* live statistics, from the first tick */
    thread_start();
#ifndef MB_NO_EXPORTS
    /* Loaded with dlopen, our malloc is not the one the process calls.  Ask
     * the process's malloc for a block and see whose it is: comparing
     * addresses would take the canonical PLT entry of a non-PIE program
     * (Debian's python3) for another allocator. */
    void *(*global_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
    void (*global_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
    void *probe = global_malloc != NULL && global_free != NULL ? global_malloc(16) : NULL;
    bool foreign = probe != NULL && !alloc_backend.owns(probe);
    if (probe != NULL) global_free(probe);
    if (foreign) {
        static const char msg[] =
            "membudget: libmembudget.so is not this process's allocator (it was loaded with "
            "dlopen() rather than LD_PRELOAD, or the program has a malloc of its own): no budget "
            "applies\n";
        os_write_all(2, msg, sizeof msg - 1);
    }
    handshake_answer(!foreign);
#else
    handshake_answer(true);
#endif
}

__attribute__((destructor)) static void membudget_finish(void) {
    mb_statspage_close();
    mb_group_leave();
    if (mb_verbose < 1) return;
    struct membudget_stats st;
    membudget_stats(&st, sizeof st);
    char comm[64], buf[512];
    os_read_comm(comm, sizeof comm);
    struct mb_buf f = mb_buf_on(buf, sizeof buf);
    mb_buf_str(&f, "membudget: pid ");
    mb_buf_u64(&f, (uint64_t)os_getpid());
    mb_buf_str(&f, " (");
    mb_buf_str(&f, comm);
    mb_buf_str(&f, ") at exit: committed ");
    mb_buf_bytes(&f, st.counter_bytes);
    mb_buf_str(&f, " (");
    mb_buf_u64(&f, st.counter_bytes);
    mb_buf_str(&f, "), peak ");
    mb_buf_bytes(&f, st.counter_peak_bytes);
    mb_buf_str(&f, " (");
    mb_buf_u64(&f, st.counter_peak_bytes);
    mb_buf_str(&f, "), pages ");
    mb_buf_u64(&f, st.pages_in_use);
    mb_buf_str(&f, ", threads ");
    mb_buf_u64(&f, st.threads);
    if (!alloc_backend_is_default()) {
        mb_buf_str(&f, ", backend ");
        mb_buf_str(&f, alloc_backend.name);
    }
    mb_buf_char(&f, '\n');
    os_write_all(2, f.data, f.len);
}
