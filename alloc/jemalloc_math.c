/* log, exp and round for the jemalloc backend (alloc/jemalloc_math.h).
 *
 * exp: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, the first with
 * 21 significant bits so that k times it is exact), exp(r) from its Taylor
 * series to r^14 / 14! (the rest is below 2^-60 of the result), then scaled by
 * 2^k through the exponent.  log: x = 2^k m with m in [sqrt(2)/2, sqrt(2)),
 * f = m - 1 exact, log(1 + f) = 2 atanh(s), s = f / (2 + f), from its series
 * to s^23 (|s| < 0.172), written f - s (f - ...) so that the rounding of s
 * weighs on a term of order f^2 only.  Both within one unit in the last place
 * of the C library's; errno is not set (jemalloc does not look at it).  Pure
 * arithmetic on the argument: no state, no allocation. */
#include "alloc/jemalloc_math.h"

#include <math.h> /* INFINITY and NAN only: nothing here calls libm */
#include <stdint.h>
#include <string.h>

static uint64_t bits_of(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double double_of(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ln 2 = LN2_HI + LN2_LO to 2^-75: LN2_HI has its low 32 bits zero. */
static const double LN2_HI = 0x1.62e42p-1;
static const double LN2_LO = 0x1.fdf473de6af28p-22;
static const double LN2 = 0x1.62e42fefa39efp-1;

/* y * 2^k for y near 1 and a k that keeps the result finite; a result below
 * 2^-1022 goes through 2^-1000 so that it is rounded once, at the end. */
static double times_pow2(double y, int k) {
    if (k >= -1021) return y * double_of((uint64_t)(k + 1023) << 52);
    return y * double_of((uint64_t)(k + 1000 + 1023) << 52) * 0x1p-1000;
}

double mbje_exp(double x) {
    if (x != x) return x + x;
    if (x > 0x1.62e42fefa39efp+9) return INFINITY; /* above log(DBL_MAX) */
    if (x < -0x1.74910d52d3052p+9) return 0.0;     /* below log of half the least subnormal */
    int k = (int)(x / LN2 + (x < 0 ? -0.5 : 0.5));
    double r = (x - k * LN2_HI) - k * LN2_LO;
    /* 1/n! for n = 2..14, Horner from the top. */
    static const double inverse_factorial[15] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
        1.0 / 87178291200.0};
    double p = inverse_factorial[14];
    for (int n = 13; n >= 2; n--) p = p * r + inverse_factorial[n];
    double y = 1.0 + (r + r * r * p); /* exp(r), in [0.7, 1.42] */
    if (k > 1023) return times_pow2(y * 2.0, k - 1);
    return times_pow2(y, k);
}

double mbje_log(double x) {
    if (x != x) return x + x;
    if (x < 0) return NAN;
    if (x == 0) return -INFINITY;
    if (x == INFINITY) return x;
    int k = 0;
    if (x < 0x1p-1022) { /* subnormal: make it normal */
        x *= 0x1p54;
        k = -54;
    }
    uint64_t u = bits_of(x);
    k += (int)((u >> 52) & 0x7ff) - 1023;
    double m = double_of((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
    if (m > 0x1.6a09e667f3bcdp+0) { /* over sqrt(2) */
        m *= 0.5;
        k++;
    }
    double f = m - 1.0; /* exact */
    double s = f / (2.0 + f), z = s * s;
    /* q = sum over odd n >= 3 of (2/n) z^((n-3)/2), to n = 23. */
    double q = 0;
    for (int n = 23; n >= 3; n -= 2) q = q * z + 2.0 / n;
    /* 2 atanh(s) = 2s + s z q, and 2s = f - s f. */
    double log1pf = f - s * (f - z * q);
    return k * LN2_HI + (log1pf + k * LN2_LO);
}

/* Nearest integer, halfway cases away from zero; keeps the sign of zero. */
double mbje_round(double x) {
    uint64_t u = bits_of(x);
    int exponent = (int)((u >> 52) & 0x7ff) - 1023;
    if (exponent >= 52) return x; /* already an integer, or inf or NaN */
    uint64_t sign = u & 0x8000000000000000ull;
    if (exponent < -1) return double_of(sign); /* |x| < 0.5 */
    double t = (double)(int64_t)x; /* truncated: exact, |x| < 2^52 */
    double d = x - t;               /* exact */
    if (d >= 0.5) t += 1.0;
    else if (d <= -0.5) t -= 1.0;
    return double_of(bits_of(t) | sign);
}
