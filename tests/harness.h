/* A tiny test harness: TEST_BEGIN/TEST_END bodies, expect_* checks with messages,
 * and one closing line "N passed, N failed" that CI reads.  Header-only so every
 * test program, preloaded or linked, builds from one source file. */
#ifndef MEMBUDGET_TESTS_HARNESS_H
#define MEMBUDGET_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_passed, harness_failed, harness_current_failed;
static const char *harness_current_name;

static void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), unused));
static void harness_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s (%s:%d): ", harness_current_name, file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    harness_current_failed = 1;
}

/* A test is a function; run_test() counts it as passed when no expect_* failed. */
typedef void (*harness_test_fn)(void);
static void __attribute__((unused)) run_test(const char *name, harness_test_fn fn) {
    harness_current_name = name;
    harness_current_failed = 0;
    fn();
    if (harness_current_failed) {
        harness_failed++;
    } else {
        harness_passed++;
        if (getenv("HARNESS_VERBOSE")) fprintf(stderr, "ok   %s\n", name);
    }
}
#define RUN(fn) run_test(#fn, fn)

/* The failure line: what was compared, then the caller's message (a format
 * string and its arguments). */
static void harness_fail_detail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));
static void harness_fail_detail(const char *file, int line, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s (%s:%d): %s", harness_current_name, file, line, what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    harness_current_failed = 1;
}

#define expect_true(cond, ...)                                                  \
    do {                                                                        \
        if (!(cond))                                                            \
            harness_fail_detail(__FILE__, __LINE__, "expected " #cond, ": " __VA_ARGS__); \
    } while (0)
#define HARNESS_CMP(type, fmtspec, a, b, op, ...)                               \
    do {                                                                        \
        type ha_ = (type)(a), hb_ = (type)(b);                                  \
        if (!(ha_ op hb_)) {                                                    \
            char what_[256];                                                    \
            snprintf(what_, sizeof what_, "%s == " fmtspec ", expected " #op " %s == " fmtspec, \
                     #a, ha_, #b, hb_);                                         \
            harness_fail_detail(__FILE__, __LINE__, what_, ": " __VA_ARGS__);    \
        }                                                                       \
    } while (0)
#define expect_zu_eq(a, b, ...) HARNESS_CMP(size_t, "%zu", a, b, ==, __VA_ARGS__)
#define expect_zu_le(a, b, ...) HARNESS_CMP(size_t, "%zu", a, b, <=, __VA_ARGS__)
#define expect_int_eq(a, b, ...) HARNESS_CMP(long long, "%lld", a, b, ==, __VA_ARGS__)
#define expect_ptr_null(p, ...) expect_true((p) == NULL, __VA_ARGS__)
#define expect_ptr_not_null(p, ...) expect_true((p) != NULL, __VA_ARGS__)

/* Prints the closing line and returns the process exit status. */
static int __attribute__((unused)) harness_finish(void) {
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    fflush(stdout);
    return harness_failed ? 1 : 0;
}

#endif
