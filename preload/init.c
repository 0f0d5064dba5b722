/* Start-up, fork and exit.  Nothing here runs on an allocation path: the first
 * malloc initializes the allocator from static state (alloc_init), and this
 * constructor, which runs before main, adds what needs libc: the fork handler,
 * the environment, and the check that we really are the process's allocator. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "alloc/fmt.h"
#include "alloc/internal.h"
#include "membudget.h"
#include "policy/budget.h"
#include "preload/preload.h"

int mb_verbose;

void *mb_malloc(size_t size);

/* One handler takes every allocator lock in rank order (alloc/lock.h). */
static void fork_prepare(void) {
    heap_atfork_prepare();
    mmap_atfork_prepare();
    alloc_atfork_prepare();
}

static void fork_parent(void) {
    alloc_atfork_parent();
    mmap_atfork_parent();
    heap_atfork_parent();
}

static void fork_child(void) {
    alloc_atfork_child();
    mmap_atfork_child();
    heap_atfork_child();
}

static void read_comm(char *out, size_t cap) {
    long n = os_read_small_file("/proc/self/comm", out, cap);
    if (n <= 0) {
        out[0] = '?';
        out[1] = '\0';
        return;
    }
    if (out[n - 1] == '\n') out[n - 1] = '\0';
}

__attribute__((constructor)) static void membudget_start(void) {
    alloc_init();
    const char *verbose = secure_getenv("MEMBUDGET_VERBOSE");
    if (verbose && verbose[0] >= '0' && verbose[0] <= '2' && verbose[1] == '\0')
        mb_verbose = verbose[0] - '0';
    pthread_atfork(fork_prepare, fork_parent, fork_child);
#ifndef MB_NO_EXPORTS
    /* Loaded with dlopen, our malloc is not the one the process calls. */
    void *global_malloc = dlsym(RTLD_DEFAULT, "malloc");
    if (global_malloc != NULL && global_malloc != (void *)mb_malloc) {
        static const char msg[] =
            "membudget: libmembudget.so was loaded with dlopen(), not preloaded: it is not "
            "this process's allocator and no budget applies (use LD_PRELOAD)\n";
        os_write_all(2, msg, sizeof msg - 1);
    }
#endif
}

__attribute__((destructor)) static void membudget_finish(void) {
    if (mb_verbose < 1) return;
    struct membudget_stats st;
    membudget_stats(&st, sizeof st);
    char comm[64], buf[512];
    read_comm(comm, sizeof comm);
    struct fmt f = FMT_ON(buf);
    fmt_str(&f, "membudget: pid ");
    fmt_u64(&f, (uint64_t)os_getpid());
    fmt_str(&f, " (");
    fmt_str(&f, comm);
    fmt_str(&f, ") at exit: committed ");
    fmt_bytes(&f, st.counter_bytes);
    fmt_str(&f, " (");
    fmt_u64(&f, st.counter_bytes);
    fmt_str(&f, "), peak ");
    fmt_bytes(&f, st.counter_peak_bytes);
    fmt_str(&f, " (");
    fmt_u64(&f, st.counter_peak_bytes);
    fmt_str(&f, "), pages ");
    fmt_u64(&f, st.pages_in_use);
    fmt_str(&f, ", threads ");
    fmt_u64(&f, st.threads);
    fmt_char(&f, '\n');
    fmt_write(&f, 2);
}
