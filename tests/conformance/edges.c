/* Reproducers of allocator bugs found by the fuzzers (tests/fuzz/) and the
 * CPython suite (check-conformance), each the smallest program that showed the
 * bug, kept as regression tests and run preloaded under the release and the
 * debug library.  What each one caught:
 *  - an aligned allocation of 0 bytes with an alignment above the largest size
 *    class (256 KiB) fails with ENOMEM, where glibc, and the same call with a
 *    smaller alignment, return a unique pointer (fuzz_alloc, input
 *    tests/fuzz/regress/fuzz_alloc/posix_memalign-512K-size-0);
 *  - malloc_trim() while other threads allocate: the debug library's check of
 *    the budget counter against the committed total runs without stopping
 *    those threads, and fails (the process dies of SIGILL) although the counter
 *    is right once they stop (fuzz_alloc under -DMB_DEBUG=1);
 *  - a request no machine could satisfy (64 TiB, or close to PTRDIFF_MAX, as
 *    Python's test_io and test_decimal make to see MemoryError) kills the
 *    process under the default MEMBUDGET_ACTION=abort, as if its footprint had
 *    reached that size, where glibc returns NULL with ENOMEM (check-conformance).
 * Each case runs in a child process, so a crash is one failed test. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child; its exit status 0 is a pass.  Returns a description of
 * anything else in `why`. */
static int in_child(int (*fn)(void), char *why, size_t cap) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "fork: errno %d", errno);
        return 0;
    }
    if (pid == 0) {
        alarm(60);
        _exit(fn());
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    if (WIFSIGNALED(status))
        snprintf(why, cap, "the child died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(why, cap, "the child exited with status %d", WEXITSTATUS(status));
    return 0;
}

/* ---- aligned allocations of size 0 ------------------------------------------ */
static int aligned_zero(void) {
    int bad = 0;
    for (unsigned k = 4; k <= 22; k++) {
        size_t align = (size_t)1 << k;
        void *p = NULL;
        int rc = T_POSIX_MEMALIGN(&p, align, 0);
        errno = 0;
        void *q = T_ALIGNED_ALLOC(align, 0);
        int q_errno = errno;
        void *r = T_MEMALIGN(align, 0);
        if (rc != 0 || !p || (uintptr_t)p % align || !q || (uintptr_t)q % align || !r ||
            (uintptr_t)r % align) {
            fprintf(stderr,
                    "  alignment %zu, size 0: posix_memalign -> %d (%p), aligned_alloc -> %p "
                    "(errno %d), memalign -> %p\n",
                    align, rc, p, q, q_errno, r);
            bad++;
        }
        T_FREE(p);
        T_FREE(q);
        T_FREE(r);
    }
    return bad ? 1 : 0;
}

static void test_aligned_size_zero_any_alignment(void) {
    char why[128];
    if (!in_child(aligned_zero, why, sizeof why))
        expect_true(0, "aligned allocations of 0 bytes: %s", why);
}

/* ---- malloc_trim while other threads allocate --------------------------------- */
static atomic_int trim_stop;

static void *trim_churn(void *arg) {
    tu_rng rng = {(uint64_t)(uintptr_t)arg};
    void *keep[64] = {0};
    while (!atomic_load_explicit(&trim_stop, memory_order_relaxed)) {
        unsigned i = (unsigned)tu_below(&rng, 64);
        T_FREE(keep[i]);
        size_t n = tu_below(&rng, 4) ? tu_between(&rng, 16, 70000) : tu_between(&rng, 300000, 400000);
        keep[i] = T_MALLOC(n);
        if (keep[i]) memset(keep[i], 1, n);
    }
    for (int i = 0; i < 64; i++) T_FREE(keep[i]);
    return NULL;
}

static int trim_race(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, trim_churn, (void *)(uintptr_t)(i + 1));
    for (int k = 0; k < 50000; k++) T_TRIM(0);
    atomic_store(&trim_stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    T_TRIM(0);
    return 0;
}

static void test_trim_while_threads_allocate(void) {
    char why[128];
    if (!in_child(trim_race, why, sizeof why))
        expect_true(0, "malloc_trim(0) while two threads allocate: %s", why);
}

/* ---- requests that cannot be satisfied at all ---------------------------------- */
static int impossible_requests(void) {
    static const size_t sizes[] = {(size_t)1 << 46, (size_t)PTRDIFF_MAX - (1 << 20)};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = T_MALLOC(tu_opaque_size(sizes[i]));
        if (p || errno != ENOMEM) {
            fprintf(stderr, "  malloc(%zu) = %p, errno %d\n", sizes[i], p, errno);
            return 1;
        }
    }
    return 0;
}

static void test_impossible_request_fails_with_enomem(void) {
    char why[128];
    if (!in_child(impossible_requests, why, sizeof why))
        expect_true(0, "malloc(64 TiB) and malloc(PTRDIFF_MAX - 1 MiB): %s", why);
}

int main(void) {
    RUN(test_aligned_size_zero_any_alignment);
    RUN(test_trim_while_threads_allocate);
    RUN(test_impossible_request_fails_with_enomem);
    return harness_finish();
}
