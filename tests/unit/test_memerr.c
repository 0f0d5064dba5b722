/* Memory errors the allocator must stop rather than absorb: a double free, a
 * free of a pointer into a block (interior or misaligned), the same for large
 * spans, and realloc and malloc_usable_size of such pointers.  Each misuse runs
 * in a child process, which must die of SIGABRT after one line on stderr that
 * names the call, the address, the size class and "double free" or "invalid
 * pointer".  Correct programs whose blocks look like free ones must not.
 *
 * With MBTEST_DEBUG_LIB=1 (check-unit-debug, the debug library) a signal
 * handler that allocates while the thread it interrupted is inside malloc must
 * be stopped too; the signal is raised from the debug library's test-only point
 * inside malloc (membudget_debug_inside_malloc, defined here), so the test does
 * not depend on timing.
 *
 * Preload mode only: the misuses are undefined behaviour that only membudget
 * promises to catch in this form. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The compiler must not see through the misuses (and warn, or drop them). */
static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* ---- running a misuse in a child -------------------------------------------------- */

struct outcome {
    int status;
    char err[8192];  /* the child's stderr */
    char addr[64];   /* what the child wrote on the address pipe: "%p" of the pointer */
};

static int addr_fd = -1;

/* Tells the parent what the message must name: a pointer, as "%p" prints it. */
static void announce_text(const char *text) {
    size_t n = strlen(text);
    if (write(addr_fd, text, n) != (ssize_t)n) _exit(90);
    close(addr_fd);
}

static void announce(const void *p) {
    char buf[64];
    snprintf(buf, sizeof buf, "%p", p);
    announce_text(buf);
}

static size_t read_all(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        if (len == cap - 1) break;
    }
    buf[len] = '\0';
    return len;
}

static int run_child(void (*misuse)(void), struct outcome *out) {
    int err_pipe[2], addr_pipe[2];
    memset(out, 0, sizeof *out);
    if (pipe(err_pipe) != 0 || pipe(addr_pipe) != 0) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(err_pipe[0]);
        close(addr_pipe[0]);
        dup2(err_pipe[1], 2);
        close(err_pipe[1]);
        addr_fd = addr_pipe[1];
        alarm(30);
        misuse();
        _exit(0);
    }
    close(err_pipe[1]);
    close(addr_pipe[1]);
    read_all(err_pipe[0], out->err, sizeof out->err);
    read_all(addr_pipe[0], out->addr, sizeof out->addr);
    close(err_pipe[0]);
    close(addr_pipe[0]);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
    }
    return 1;
}

/* The child died of SIGABRT and wrote exactly one "membudget:" line, which
 * holds every one of the NULL-terminated words (and the announced address). */
static void expect_abort_line(void (*misuse)(void), const char *what, const char *const *words) {
    struct outcome o;
    if (!run_child(misuse, &o)) {
        expect_true(0, "%s: fork or pipe failed (errno %d)", what, errno);
        return;
    }
    expect_true(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT,
                "%s: the child must die of SIGABRT; status 0x%x, stderr:\n%s", what, o.status,
                o.err);
    const char *line = strstr(o.err, "membudget: ");
    expect_ptr_not_null(line, "%s: no \"membudget: \" line on stderr:\n%s", what, o.err);
    if (!line) return;
    const char *end = strchr(line, '\n');
    expect_ptr_not_null(end, "%s: the line is not terminated", what);
    if (!end) return;
    expect_true(strstr(end, "membudget: ") == NULL, "%s: more than one line:\n%s", what, o.err);
    char text[512];
    size_t len = (size_t)(end - line) < sizeof text - 1 ? (size_t)(end - line) : sizeof text - 1;
    memcpy(text, line, len);
    text[len] = '\0';
    expect_true(o.addr[0] != '\0', "%s: the child announced no address", what);
    expect_true(strstr(text, o.addr) != NULL, "%s: the line does not name %s: %s", what, o.addr,
                text);
    for (const char *const *w = words; *w; w++)
        expect_true(strstr(text, *w) != NULL, "%s: the line lacks \"%s\": %s", what, *w, text);
}

/* The child exits 0 and writes nothing about membudget. */
static void expect_clean_exit(void (*fn)(void), const char *what) {
    struct outcome o;
    if (!run_child(fn, &o)) {
        expect_true(0, "%s: fork or pipe failed (errno %d)", what, errno);
        return;
    }
    expect_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
                "%s: the child must exit 0; status 0x%x, stderr:\n%s", what, o.status, o.err);
    expect_true(strstr(o.err, "membudget: ") == NULL, "%s: unexpected line:\n%s", what, o.err);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- small blocks ------------------------------------------------------------------- */

static void double_free_32(void) {
    char *p = T_MALLOC(32);
    announce(p);
    T_FREE(p);
    T_FREE(opaque(p));
}

/* Another free in between: the block is no longer at the head of the list. */
static void double_free_32_later(void) {
    char *p = T_MALLOC(32), *q = T_MALLOC(32), *r = T_MALLOC(32);
    announce(p);
    T_FREE(p);
    T_FREE(q);
    T_FREE(r);
    T_FREE(opaque(p));
}

/* The block went back to its page's free list (by allocations that drained the
 * owner's local list) before the second free. */
static void double_free_after_reuse_of_neighbours(void) {
    enum { N = 512 };
    static char *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = T_MALLOC(32);
    char *p = blocks[N / 2];
    announce(p);
    for (int i = 0; i < N; i++) T_FREE(blocks[i]);
    for (int i = 0; i < N / 4; i++) blocks[i] = T_MALLOC(32); /* not all of them */
    T_FREE(opaque(p));
}

static void *free_in_thread(void *p) {
    T_FREE(p);
    return NULL;
}

/* Freed by the owner, then again by another thread (the remote path). */
static void double_free_remote(void) {
    char *keep = T_MALLOC(32); /* keeps the page in use */
    char *p = T_MALLOC(32);
    announce(p);
    T_FREE(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, opaque(p)) != 0) _exit(91);
    pthread_join(t, NULL);
    T_FREE(keep);
}

/* Freed twice by another thread: the second time it is on thread_free. */
static void double_free_remote_twice(void) {
    char *keep = T_MALLOC(32);
    char *p = T_MALLOC(32);
    announce(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0) _exit(91);
    pthread_join(t, NULL);
    if (pthread_create(&t, NULL, free_in_thread, opaque(p)) != 0) _exit(91);
    pthread_join(t, NULL);
    T_FREE(keep);
}

static void interior_free_32(void) {
    char *q = T_MALLOC(32);
    announce(q + 16);
    T_FREE(opaque(q + 16));
}

/* 48 is not a power of two: the offset test is not a mask. */
static void interior_free_48(void) {
    char *q = T_MALLOC(48);
    char *r = T_MALLOC(48);
    announce(r + 32);
    T_FREE(opaque(r + 32));
    T_FREE(q);
}

static void misaligned_free(void) {
    char *q = T_MALLOC(100); /* size class 112 */
    announce(q + 8);
    T_FREE(opaque(q + 8));
}

static void misaligned_free_odd(void) {
    char *q = T_MALLOC(32);
    announce(q + 1);
    T_FREE(opaque(q + 1));
}

static void interior_realloc(void) {
    char *q = T_MALLOC(32);
    announce(q + 16);
    char *r = T_REALLOC(opaque(q + 16), 64);
    (void)opaque(r);
}

static void interior_usable_size(void) {
    char *q = T_MALLOC(32);
    announce(q + 16);
    size_t n = T_USABLE_SIZE(opaque(q + 16));
    (void)opaque((void *)n);
}

static void realloc_after_free(void) {
    char *keep = T_MALLOC(32);
    char *p = T_MALLOC(32);
    announce(p);
    T_FREE(p);
    char *r = T_REALLOC(opaque(p), 64);
    (void)opaque(r);
    T_FREE(keep);
}

static void test_double_free_small(void) {
    expect_abort_line(double_free_32, "free(p); free(p) of 32 bytes",
                      WORDS("double free", "free()", "size class 32"));
    expect_abort_line(double_free_32_later, "free(p); free(q); free(r); free(p)",
                      WORDS("double free", "free()", "size class 32"));
    expect_abort_line(double_free_after_reuse_of_neighbours,
                      "a double free after the page's free list was reused",
                      WORDS("double free", "free()", "size class 32"));
    expect_abort_line(double_free_remote, "a double free by another thread",
                      WORDS("double free", "free()", "size class 32"));
    expect_abort_line(double_free_remote_twice, "a double free, both by another thread",
                      WORDS("double free", "free()", "size class 32"));
    expect_abort_line(realloc_after_free, "realloc of a freed block",
                      WORDS("double free", "realloc()", "size class 32"));
}

static void test_invalid_pointer_small(void) {
    expect_abort_line(interior_free_32, "free(q + 16) of a 32-byte block",
                      WORDS("invalid pointer", "free()", "16 bytes into", "size class 32"));
    expect_abort_line(interior_free_48, "free(r + 32) of a 48-byte block",
                      WORDS("invalid pointer", "free()", "32 bytes into", "size class 48"));
    expect_abort_line(misaligned_free, "free(q + 8) of a 112-byte block",
                      WORDS("invalid pointer", "free()", "8 bytes into", "size class 112"));
    expect_abort_line(misaligned_free_odd, "free(q + 1)",
                      WORDS("invalid pointer", "free()", "1 bytes into", "size class 32"));
    expect_abort_line(interior_realloc, "realloc(q + 16)",
                      WORDS("invalid pointer", "realloc()", "16 bytes into", "size class 32"));
    expect_abort_line(interior_usable_size, "malloc_usable_size(q + 16)",
                      WORDS("invalid pointer", "malloc_usable_size()", "16 bytes into",
                            "size class 32"));
}

/* ---- large spans ---------------------------------------------------------------------- */

static void large_interior(void) {
    char *l = T_MALLOC(TU_MIB);
    announce(l + 16);
    T_FREE(opaque(l + 16));
}

static void large_interior_page(void) {
    char *l = T_MALLOC(TU_MIB);
    announce(l + 8192);
    T_FREE(opaque(l + 8192));
}

static void large_interior_realloc(void) {
    char *l = T_MALLOC(TU_MIB);
    announce(l + 4096);
    char *r = T_REALLOC(opaque(l + 4096), 2 * TU_MIB);
    (void)opaque(r);
}

static void large_interior_usable_size(void) {
    char *l = T_MALLOC(TU_MIB);
    announce(l + 64);
    size_t n = T_USABLE_SIZE(opaque(l + 64));
    (void)opaque((void *)n);
}

/* 1 MiB: kept in the span cache after the first free. */
static void large_double_free_cached(void) {
    char *l = T_MALLOC(TU_MIB);
    announce(l);
    T_FREE(l);
    T_FREE(opaque(l));
}

/* 64 MiB: above what the cache keeps, unmapped at the first free. */
static void large_double_free_unmapped(void) {
    char *l = T_MALLOC(64 * TU_MIB);
    announce(l);
    T_FREE(l);
    T_FREE(opaque(l));
}

/* The old address of a span that realloc moved: a page mapped right after
 * the span (or whatever already lies there) stops it from growing in place. */
static void large_free_after_moving_realloc(void) {
    char *l = T_MALLOC(TU_MIB);
    size_t usable = T_USABLE_SIZE(l);
    void *guard = mmap(l + usable, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    if (guard == MAP_FAILED && errno != EEXIST) _exit(95);
    l[0] = 1;
    char *m = T_REALLOC(l, 40 * TU_MIB);
    if (m == NULL || m == l) _exit(96);
    announce(l);
    T_FREE(opaque(l));
    T_FREE(m);
}

static void test_large_spans(void) {
    expect_abort_line(large_interior, "free(l + 16) of a 1 MiB span",
                      WORDS("invalid pointer", "free()", "16 bytes into a large span of 1048576"));
    expect_abort_line(large_interior_page, "free(l + 8192) of a 1 MiB span",
                      WORDS("invalid pointer", "free()", "8192 bytes into a large span"));
    expect_abort_line(large_interior_realloc, "realloc(l + 4096) of a 1 MiB span",
                      WORDS("invalid pointer", "realloc()", "4096 bytes into a large span"));
    expect_abort_line(large_interior_usable_size, "malloc_usable_size(l + 64) of a 1 MiB span",
                      WORDS("invalid pointer", "malloc_usable_size()", "64 bytes into a large span"));
    expect_abort_line(large_double_free_cached, "free(l); free(l) of a 1 MiB span",
                      WORDS("double free", "free()", "large span", "1048576 bytes"));
    expect_abort_line(large_double_free_unmapped, "free(l); free(l) of a 64 MiB span",
                      WORDS("double free", "free()", "large span", "67108864 bytes"));
    expect_abort_line(large_free_after_moving_realloc, "free of a span's address after realloc moved it",
                      WORDS("double free", "free()", "large span"));
}

/* ---- correct programs whose blocks look free ------------------------------------------ */

/* Blocks whose first words hold what a free block's do: zero, a pointer to
 * themselves (an empty circular list), a pointer to a neighbour, all ones. */
static void lookalikes(void) {
    enum { N = 4096 };
    static void **blocks[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            size_t size = 16 + (size_t)(i % 40) * 16;
            void **b = T_MALLOC(size);
            if (!b) _exit(92);
            switch ((i + round) % 4) {
            case 0: b[0] = NULL, b[1] = NULL; break;
            case 1: b[0] = b, b[1] = b; break;
            case 2: b[0] = i ? blocks[i - 1] : NULL, b[1] = i ? blocks[i - 1] : NULL; break;
            default: memset(b, 0xff, 16); break;
            }
            blocks[i] = b;
        }
        /* Free in an order that mixes pages and lists. */
        for (int i = 0; i < N; i += 2) T_FREE(blocks[i]);
        for (int i = 1; i < N; i += 2) T_FREE(blocks[i]);
    }
    /* Blocks freed by another thread, whose contents are the same kind. */
    for (int i = 0; i < N; i++) {
        blocks[i] = T_MALLOC(32);
        blocks[i][0] = blocks[i], blocks[i][1] = blocks[i];
    }
    for (int i = 0; i < N; i++) {
        pthread_t t;
        if (i % 512 == 0) {
            if (pthread_create(&t, NULL, free_in_thread, blocks[i]) != 0) _exit(93);
            pthread_join(t, NULL);
        } else {
            T_FREE(blocks[i]);
        }
    }
    /* A realloc and a usable size of a live block copied from a freed one. */
    char *a = T_MALLOC(64), *b = T_MALLOC(64);
    T_FREE(a);
    char *c = T_MALLOC(64);
    memcpy(c, opaque(b), 64);
    if (T_USABLE_SIZE(c) < 64) _exit(94);
    c = T_REALLOC(c, 48);
    T_FREE(c);
    T_FREE(b);
}

static void test_correct_programs_unaffected(void) {
    expect_clean_exit(lookalikes, "blocks whose contents look like a free block's");
}

/* ---- a signal handler that allocates, inside malloc (debug library) --------------------- */

static volatile sig_atomic_t raise_inside_malloc;

/* The debug library's test-only point (alloc/internal.h). */
void membudget_debug_inside_malloc(void);
void membudget_debug_inside_malloc(void) {
    if (raise_inside_malloc) {
        raise_inside_malloc = 0;
        raise(SIGUSR1);
    }
}

static void allocating_handler(int sig) {
    (void)sig;
    void *p = T_MALLOC(32);
    (void)opaque(p);
}

static void malloc_from_signal_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = allocating_handler;
    sigaction(SIGUSR1, &sa, NULL);
    announce_text("membudget: "); /* the line names no address */
    raise_inside_malloc = 1;
    void *p = T_MALLOC(64);
    (void)opaque(p);
}

static void test_malloc_reentered_from_signal_handler(void) {
    expect_abort_line(malloc_from_signal_handler, "malloc from a signal handler inside malloc",
                      WORDS("malloc() entered while this thread is inside malloc()",
                            "not async-signal-safe"));
}

int main(void) {
    if (!MBTEST_HAVE_API) {
        fprintf(stderr, "skip test_memerr: membudget is not preloaded\n");
        return harness_finish();
    }
    RUN(test_double_free_small);
    RUN(test_invalid_pointer_small);
    RUN(test_large_spans);
    RUN(test_correct_programs_unaffected);
    const char *debug = getenv("MBTEST_DEBUG_LIB");
    if (debug && strcmp(debug, "1") == 0)
        RUN(test_malloc_reentered_from_signal_handler);
    else
        fprintf(stderr, "skip test_malloc_reentered_from_signal_handler: only the debug library "
                        "checks (MBTEST_DEBUG_LIB=1)\n");
    return harness_finish();
}
