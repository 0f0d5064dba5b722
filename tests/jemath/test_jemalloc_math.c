/* alloc/jemalloc_math.c against the C library's libm: log and exp within one
 * unit in the last place over their whole domains (random arguments of every
 * binary exponent, subnormals, the neighbourhoods of 1, of 0 and of the
 * overflow and underflow limits) and the same special values; round bit for bit.
 * With JEMATH_LIBRARY naming the library, also checks that it does not need
 * libm (DT_NEEDED), the point of having these functions. */
#include <elf.h>
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/jemalloc_math.h"
#include "harness.h"

#define SAMPLES 2000000

static uint64_t rng_state = 0x1905u;
static uint64_t next64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform(double lo, double hi) {
    return lo + (hi - lo) * ((double)(next64() >> 11) * 0x1p-53);
}
static double of_bits(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Distance in units in the last place; 0 for two NaNs or two equal values
 * (so +0 and -0 are 0 apart), huge for a NaN against a number. */
static uint64_t ulps(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
    if (a == b) return 0;
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if (ia < 0) ia = INT64_MIN - ia;
    if (ib < 0) ib = INT64_MIN - ib;
    return ia > ib ? (uint64_t)ia - (uint64_t)ib : (uint64_t)ib - (uint64_t)ia;
}

static int worst_count;
static void check_fn(const char *name, double (*ours)(double), double (*ref)(double), double x) {
    double a = ours(x), b = ref(x);
    if (ulps(a, b) > 1 && worst_count++ < 10)
        expect_true(0, "%s(%a) = %a, libm %a (%llu ulps)", name, x, a, b,
                    (unsigned long long)ulps(a, b));
}

static void test_log_specials(void) {
    expect_true(mbje_log(1.0) == 0.0 && !signbit(mbje_log(1.0)), "log(1) is +0");
    expect_true(isinf(mbje_log(0.0)) && mbje_log(0.0) < 0, "log(0) is -inf");
    expect_true(isinf(mbje_log(-0.0)) && mbje_log(-0.0) < 0, "log(-0) is -inf");
    expect_true(isinf(mbje_log(INFINITY)) && mbje_log(INFINITY) > 0, "log(inf) is inf");
    expect_true(isnan(mbje_log(-1.0)) && isnan(mbje_log(-INFINITY)), "log(<0) is NaN");
    expect_true(isnan(mbje_log(NAN)) && isnan(mbje_log(-0x1p-1074)), "log(NaN), log(-tiny)");
    expect_true(mbje_log(0x1p-1074) == log(0x1p-1074), "log of the smallest subnormal");
    expect_true(mbje_log(0x1p1023) == log(0x1p1023), "log(2^1023)");
    expect_true(mbje_log(M_E) == log(M_E), "log(e)");
}

static void test_log_domain(void) {
    worst_count = 0;
    for (int i = 0; i < SAMPLES; i++) {
        /* Every bit pattern of a positive finite double: every exponent, subnormals. */
        uint64_t u = next64() & 0x7fffffffffffffffull;
        if ((u >> 52) == 0x7ff) u &= 0x7fefffffffffffffull;
        check_fn("log", mbje_log, log, of_bits(u));
        check_fn("log", mbje_log, log, uniform(0.5, 2.0));
        check_fn("log", mbje_log, log, 1.0 + uniform(-0x1p-19, 0x1p-19));
    }
    /* jemalloc's sampling interval: log(1 - 1/2^lg_prof_sample). */
    for (int lg = 0; lg < 63; lg++) check_fn("log", mbje_log, log, 1.0 - 1.0 / (double)(1ull << lg));
    for (int e = -1074; e <= 1023; e++) check_fn("log", mbje_log, log, ldexp(1.0, e));
}

static void test_exp_specials(void) {
    expect_true(mbje_exp(0.0) == 1.0 && mbje_exp(-0.0) == 1.0, "exp(0) is 1");
    expect_true(isinf(mbje_exp(INFINITY)) && mbje_exp(-INFINITY) == 0.0, "exp(+-inf)");
    expect_true(isnan(mbje_exp(NAN)), "exp(NaN)");
    expect_true(isinf(mbje_exp(710.0)) && mbje_exp(-746.0) == 0.0, "overflow, underflow");
    expect_true(mbje_exp(709.78) == exp(709.78), "exp near the overflow limit");
    expect_true(mbje_exp(-745.13) == exp(-745.13), "exp near the underflow limit");
    expect_true(ulps(mbje_exp(1.0), M_E) <= 1, "exp(1) is e to within one ulp");
}

static void test_exp_domain(void) {
    worst_count = 0;
    for (int i = 0; i < SAMPLES; i++) {
        check_fn("exp", mbje_exp, exp, uniform(-745.2, 709.8));
        check_fn("exp", mbje_exp, exp, uniform(-1.0, 1.0));
        check_fn("exp", mbje_exp, exp, uniform(-745.2, -708.0)); /* subnormal results */
        check_fn("exp", mbje_exp, exp, uniform(-0x1p-27, 0x1p-27));
    }
    /* jemalloc's unbiasing: exp(-size / 2^lg_prof_sample). */
    for (int lg = 0; lg < 63; lg++)
        for (double sz = 8; sz < 0x1p40; sz *= 3) check_fn("exp", mbje_exp, exp, -sz / ldexp(1.0, lg));
}

static void check_round(double x) {
    double a = mbje_round(x), b = round(x);
    if (memcmp(&a, &b, sizeof a) != 0 && !(isnan(a) && isnan(b)) && worst_count++ < 10)
        expect_true(0, "round(%a) = %a, libm %a", x, a, b);
}

static void test_round(void) {
    worst_count = 0;
    const double fixed[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994,
                            -0.49999999999999994, 0x1p52, 0x1p52 + 1, 0x1p52 - 0.5, 0x1p53,
                            -0x1p52 + 0.5, 0x1p-1074, -0x1p-1074, 1e300, INFINITY, -INFINITY, NAN,
                            4503599627370495.5, -4503599627370495.5};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_round(fixed[i]);
    for (int i = 0; i < SAMPLES; i++) {
        check_round(of_bits(next64()));
        check_round(uniform(-1e6, 1e6));
        double half = (double)(int64_t)uniform(-1e9, 1e9) + 0.5;
        check_round(half);
        check_round(nextafter(half, 0.0));
        check_round(nextafter(half, INFINITY));
    }
}

/* The library's DT_NEEDED entries must not name libm. */
static void check_needed(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    expect_true(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
    if (fd < 0) return;
    const unsigned char *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    expect_true(img != MAP_FAILED && memcmp(img, ELFMAG, SELFMAG) == 0, "%s is ELF", path);
    if (img == MAP_FAILED) return;
    const Elf64_Ehdr *eh = (const void *)img;
    const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
    int needed = 0, libm = 0;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNAMIC) continue;
        const char *str = (const char *)img + sh[sh[i].sh_link].sh_offset;
        const Elf64_Dyn *d = (const void *)(img + sh[i].sh_offset);
        for (; d->d_tag != DT_NULL; d++) {
            if (d->d_tag != DT_NEEDED) continue;
            needed++;
            if (strncmp(str + d->d_un.d_val, "libm.so", 7) == 0) libm = 1;
        }
    }
    munmap((void *)img, (size_t)st.st_size);
    expect_true(needed > 0, "%s has DT_NEEDED entries (libc at least)", path);
    expect_true(!libm, "%s does not need libm", path);
}

static const char *lib_path;
static void test_library_needs_no_libm(void) { check_needed(lib_path); }

int main(void) {
    RUN(test_log_specials);
    RUN(test_log_domain);
    RUN(test_exp_specials);
    RUN(test_exp_domain);
    RUN(test_round);
    lib_path = getenv("JEMATH_LIBRARY");
    if (lib_path) RUN(test_library_needs_no_libm);
    return harness_finish();
}
