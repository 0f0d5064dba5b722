#!/usr/bin/env bash
# check-jemath (tests/jemath.mk): the math functions against libm and the
# library's DT_NEEDED (one program, tests/jemath/test_jemalloc_math.c), then a workload on the jemalloc backend
# with heap profiling on, the only jemalloc code that calls log, exp and round:
# same output as under glibc, and a final heap profile whose accumulated bytes
# (sampled every 1 KiB on average, unbiased with exp) are of the order of what
# the program allocated.
# Usage: run.sh OUT TEST_BINARY LIBRARY WORKLOAD jemalloc|native
set -u
out=$1 bin=$2 lib=$3 work=$4 backend=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash tests/run_suite.sh -e JEMATH_LIBRARY="$lib" "$tmp/unit.txt" jemath "$bin" >/dev/null
cat "$tmp/unit.txt" | tee "$out"
line=$(tail -n 1 "$tmp/unit.txt")
passed=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
failed=$(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")
if [ "$backend" = jemalloc ]; then
    want=$("$work")
    got=$(env LD_PRELOAD="$lib" MEMBUDGET_BACKEND=jemalloc \
        MALLOC_CONF="prof:true,lg_prof_sample:10,prof_accum:true,prof_final:true,prof_prefix:$tmp/jeprof" \
        "$work" 2>"$tmp/err")
    bytes=$(sed -nE 's/.* bytes=([0-9]+) .*/\1/p' <<<"$want")
    prof=$(ls "$tmp"/jeprof.*.heap 2>/dev/null | head -n 1)
    # line 2 of the profile: "t*: curobjs: curbytes [accumobjs: accumbytes]"
    accum=$( [ -n "$prof" ] && sed -n 2p "$prof" | sed -nE 's/^ *t\*: [0-9]+: [0-9]+ \[[0-9]+: ([0-9]+)\]$/\1/p')
    if [ "$got" = "$want" ] && [ -n "$accum" ] && [ "$accum" -ge $((bytes / 4)) ] &&
        [ "$accum" -le $((bytes * 4)) ]; then
        passed=$((passed + 1))
        echo "ok   profiled jemalloc backend: same output, profile accumulates $accum bytes (program $bytes+)" | tee -a "$out"
    else
        failed=$((failed + 1))
        echo "FAIL profiled jemalloc backend: output '$got' (want '$want'), profile '${prof:-none}' accum '${accum:-none}' for $bytes bytes" | tee -a "$out"
        cat "$tmp/err" | tee -a "$out"
    fi
else
    echo "skip profiled jemalloc backend: this build has no jemalloc backend" | tee -a "$out"
fi
echo "jemath: $passed passed, $failed failed" | tee -a "$out"
[ "$failed" -eq 0 ]
