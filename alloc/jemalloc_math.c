/* log, exp and round for the jemalloc backend (alloc/jemalloc_math.h).  log and
 * exp follow fdlibm's e_log.c and e_exp.c (range reduction to a small interval,
 * a minimax polynomial there, the result rebuilt from the exponent), whose
 * notice is kept as it asks:
 *
 *   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
 *   Developed at SunPro, a Sun Microsystems, Inc. business.
 *   Permission to use, copy, modify, and distribute this software is freely
 *   granted, provided that this notice is preserved.
 *
 * Error below one unit in the last place; errno is not set (jemalloc does not
 * look at it).  Pure arithmetic on the argument: no state, no allocation. */
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

/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11. */
static const double LN2_HI = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
static const double LN2_LO = 1.90821492927058770002e-10; /* 0x3dea39ef35793c76 */

/* log(1+f) = f - s*(f - R(s*s)), s = f/(2+f), on sqrt(2)/2 < 1+f < sqrt(2). */
static const double LG1 = 6.666666666666735130e-01, LG2 = 3.999999999940941908e-01,
                    LG3 = 2.857142874366239149e-01, LG4 = 2.222219843214978396e-01,
                    LG5 = 1.818357216161805012e-01, LG6 = 1.531383769920937332e-01,
                    LG7 = 1.479819860511658591e-01;

/* log(1+f) for |f| < 2^-20, k the binary exponent. */
static double log_tiny_f(double f, int k) {
    double dk = (double)k;
    if (f == 0.0) return k == 0 ? 0.0 : dk * LN2_HI + dk * LN2_LO;
    double r = f * f * (0.5 - 0.33333333333333333 * f);
    if (k == 0) return f - r;
    return dk * LN2_HI - ((r - dk * LN2_LO) - f);
}

double mbje_log(double x) {
    uint64_t u = bits_of(x);
    int32_t hx = (int32_t)(u >> 32);
    int k = 0;
    if (hx < 0x00100000) { /* negative, zero or subnormal */
        if ((u & 0x7fffffffffffffffull) == 0) return -INFINITY;
        if (hx < 0) return NAN; /* log of a negative number or of -NaN */
        k -= 54;
        x *= 0x1p54; /* a normal number now */
        u = bits_of(x);
        hx = (int32_t)(u >> 32);
    }
    if (hx >= 0x7ff00000) return x + x; /* +inf or NaN */
    k += (hx >> 20) - 1023;
    hx &= 0x000fffff;
    /* Normalize the mantissa into [sqrt(2)/2, sqrt(2)): 1+f, or (1+f)/2. */
    int32_t i = (hx + 0x95f64) & 0x100000;
    x = double_of(((uint64_t)(uint32_t)(hx | (i ^ 0x3ff00000)) << 32) | (u & 0xffffffffull));
    k += i >> 20;
    double f = x - 1.0;
    if ((0x000fffff & (2 + hx)) < 3) return log_tiny_f(f, k);
    double s = f / (2.0 + f), dk = (double)k, z = s * s, w = z * z;
    double t1 = w * (LG2 + w * (LG4 + w * LG6));
    double t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    double r = t2 + t1;
    i = (hx - 0x6147a) | (0x6b851 - hx);
    if (i > 0) {
        double hfsq = 0.5 * f * f;
        if (k == 0) return f - (hfsq - s * (hfsq + r));
        return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
    }
    if (k == 0) return f - s * (f - r);
    return dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f);
}

/* exp(r) = 1 + r + r*r/(2 - c) form, c = r - r^2*P(r^2), on |r| <= ln(2)/2. */
static const double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03,
                    P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
                    P5 = 4.13813679705723846039e-08;
static const double INV_LN2 = 1.44269504088896338700e+00;
static const double EXP_OVERFLOW = 7.09782712893383973096e+02;   /* above: +inf */
static const double EXP_UNDERFLOW = -7.45133219101941108420e+02; /* below: 0 */

double mbje_exp(double x) {
    if (x != x) return x + x;
    if (x > EXP_OVERFLOW) return INFINITY;
    if (x < EXP_UNDERFLOW) return 0.0;
    if (x > -3.7252902984e-09 && x < 3.7252902984e-09) return 1.0 + x; /* |x| < 2^-28 */
    /* x = k*ln2 + r, |r| <= ln(2)/2, with r carried as hi - lo. */
    int k = (int)(x * INV_LN2 + (x < 0 ? -0.5 : 0.5));
    double hi = x - k * LN2_HI, lo = k * LN2_LO, r = hi - lo;
    double t = r * r;
    double c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if (k == 0) return 1.0 - ((r * c) / (c - 2.0) - r);
    double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    /* y * 2^k: add k to y's exponent; below 2^-1021 go through 2^-1000 so that a
     * subnormal result is rounded once, by the last multiplication. */
    uint64_t yb = bits_of(y);
    if (k >= -1021) return double_of(yb + ((uint64_t)(int64_t)k << 52));
    return double_of(yb + ((uint64_t)(int64_t)(k + 1000) << 52)) * 0x1p-1000;
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
