#!/usr/bin/env bash
# Runs test binaries one after another as one suite and writes their output to a
# result file whose last line is the suite's total, "SUITE: N passed, N failed".
# A binary that crashes, hangs (timeout), or exits non-zero after reporting no
# failed test (a sanitizer report at exit, say) counts as one failed test.
#
# Usage: run_suite.sh [-e VAR=VALUE]... [-w WRAPPER] [-t SECONDS] OUT SUITE BINARY...
#   -e  environment for the binaries only (LD_PRELOAD, MBTEST_SCALE, *SAN_OPTIONS)
#   -w  a command prefix for the binaries (e.g. "setarch x86_64 -R")
#   -t  time limit per binary (default 300)
set -u

envs=() wrap="" limit=300
while getopts "e:w:t:" opt; do
    case $opt in
    e) envs+=("$OPTARG") ;;
    w) wrap=$OPTARG ;;
    t) limit=$OPTARG ;;
    *) echo "usage: run_suite.sh [-e VAR=VALUE]... [-w WRAPPER] [-t SECONDS] OUT SUITE BINARY..." >&2
       exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { echo "usage: run_suite.sh [options] OUT SUITE BINARY..." >&2; exit 2; }
out=$1 suite=$2
shift 2

mkdir -p "$(dirname "$out")"
: >"$out"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

total_p=0 total_f=0
for bin in "$@"; do
    name=$(basename "$bin")
    echo "== $suite: $name" | tee -a "$out"
    # shellcheck disable=SC2086 # the wrapper is a command prefix, split on purpose
    timeout -k 10 "$limit" env "${envs[@]}" $wrap "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    cat "$log" >>"$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
    else
        p=0 f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        case $rc in
        124 | 137) why="timed out after ${limit} s" ;;
        *) if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"; else why="exit status $rc"; fi ;;
        esac
        if [ -n "$line" ]; then
            echo "FAIL $name: $why after reporting no failed test" | tee -a "$out"
        else
            echo "FAIL $name: $why before its closing line" | tee -a "$out"
        fi
        f=1
    fi
    total_p=$((total_p + p)) total_f=$((total_f + f))
done
echo "$suite: $total_p passed, $total_f failed" | tee -a "$out"
[ "$total_f" -eq 0 ]
