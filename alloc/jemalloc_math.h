/* The three functions of the C math library that jemalloc's heap profiler calls
 * (log and exp for its sampling intervals and unbiasing, round for its unbias
 * table), renamed in its objects to these (alloc/jemalloc.syms) so that the
 * library does not link libm: every process would otherwise map it, and its
 * IFUNC resolvers fault in ~300 KB at load for a backend most processes never
 * start.  Same results as the C library's to within one unit in the last place
 * (round: exactly), including NaN, infinities, zeros and subnormals. */
#ifndef MEMBUDGET_ALLOC_JEMALLOC_MATH_H
#define MEMBUDGET_ALLOC_JEMALLOC_MATH_H

double mbje_log(double x);
double mbje_exp(double x);
double mbje_round(double x);

#endif
