#!/usr/bin/env bash
# Runs one libFuzzer target as a suite: first every checked-in regression input
# (tests/fuzz/regress/<target>/, one result each), then a fuzzing session of a
# bounded time over the working corpus (build/fuzz/<target>/corpus, seeded from
# tests/fuzz/corpus/<target>/).  With -o N the session is repeated until the
# target has run at least N operations (fuzz_alloc prints its count) or, for
# targets that print none, N executions.
# A crash, a leak, a timeout or a broken check fails the suite; the input that
# caused it is copied to OUT's directory as fuzz-<target>-crash-* with the
# command that replays it, to be checked in under tests/fuzz/regress/<target>/.
# The last line of OUT is "<suite>: N passed, N failed".
#
# Usage: run_fuzz.sh [-t SECONDS] [-o MIN_OPS] OUT SUITE BINARY TARGET WORKDIR
set -u

seconds=30 min_ops=0
while getopts "t:o:" opt; do
    case $opt in
    t) seconds=$OPTARG ;;
    o) min_ops=$OPTARG ;;
    *) echo "usage: run_fuzz.sh [-t SECONDS] [-o MIN_OPS] OUT SUITE BINARY TARGET WORKDIR" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 5 ] || { echo "usage: run_fuzz.sh [-t SECONDS] [-o MIN_OPS] OUT SUITE BINARY TARGET WORKDIR" >&2; exit 2; }
out=$1 suite=$2 bin=$3 target=$4 work=$5
here=$(cd "$(dirname "$0")" && pwd)
regress=$here/regress/$target seeds=$here/corpus/$target
outdir=$(dirname "$out")
mkdir -p "$outdir" "$work/corpus" "$work/artifacts"
: >"$out"
passed=0 failed=0
say() { echo "$*" | tee -a "$out"; }

# The sanitizers stop at the first report; libFuzzer turns it into a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
flags=(-timeout=20 -rss_limit_mb=4096 -max_len=4096 -len_control=0 -print_final_stats=1)
[ -f "$here/$target.dict" ] && flags+=(-dict="$here/$target.dict")

keep_artifacts() {
    local n=0 f
    for f in "$work"/artifacts/*; do
        [ -e "$f" ] || continue
        local dest="$outdir/fuzz-$target-$(basename "$f")"
        cp "$f" "$dest"
        say "    input kept: $dest"
        say "    replay: $bin $dest; check it in: cp $dest tests/fuzz/regress/$target/"
        n=$((n + 1))
    done
    rm -f "$work"/artifacts/*
}

# ---- the regression inputs ------------------------------------------------------
if [ -d "$regress" ]; then
    for f in "$regress"/*; do
        [ -f "$f" ] || continue
        name=$(basename "$f")
        if timeout -k 5 120 "$bin" "${flags[@]}" "$f" >"$work/regress.log" 2>&1; then
            say "ok regression input $target/$name"
            passed=$((passed + 1))
        else
            say "FAIL regression input $target/$name (exit status $?)"
            grep -E "^fuzz_[a-z]+:|ERROR|SUMMARY|runtime error" "$work/regress.log" | head -n 8 | sed 's/^/    | /' | tee -a "$out"
            failed=$((failed + 1))
        fi
    done
fi

# ---- the fuzzing sessions ----------------------------------------------------------
total_runs=0 total_ops=0 sessions=0 elapsed=0 bad=0
start=$(date +%s)
while :; do
    sessions=$((sessions + 1))
    log=$work/session.log
    seed_dirs=()
    [ -d "$seeds" ] && seed_dirs+=("$seeds")
    timeout -k 10 $((seconds + 120)) "$bin" "${flags[@]}" -max_total_time="$seconds" \
        -artifact_prefix="$work/artifacts/" "$work/corpus" "${seed_dirs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+).*/\1/p' "$log" | tail -n 1)
    ops=$(sed -nE 's/^fuzz_[a-z]+: ([0-9]+) operations.*/\1/p' "$log" | tail -n 1)
    total_runs=$((total_runs + ${runs:-0}))
    total_ops=$((total_ops + ${ops:-0}))
    if [ $rc -ne 0 ]; then
        say "FAIL $target: fuzzing session $sessions ended with status $rc"
        grep -E "^fuzz_[a-z]+:|ERROR|SUMMARY|runtime error|deadly signal|timeout" "$log" | head -n 12 |
            sed 's/^/    | /' | tee -a "$out"
        keep_artifacts
        bad=1
        break
    fi
    count=$total_ops
    [ -z "$ops" ] && count=$total_runs
    [ "$count" -ge "$min_ops" ] && break
done
elapsed=$(($(date +%s) - start))
corpus=$(find "$work/corpus" -type f | wc -l)
detail="$total_runs executions"
[ "$total_ops" -gt 0 ] && detail="$detail, $total_ops operations"
detail="$detail in $sessions session(s), $elapsed s; corpus $corpus inputs"
if [ $bad -eq 0 ]; then
    say "ok $target: $detail"
    passed=$((passed + 1))
else
    say "    ($detail)"
    failed=$((failed + 1))
fi
if [ "$min_ops" -gt 0 ] && [ $bad -eq 0 ]; then
    count=$total_ops
    [ "$count" -eq 0 ] && count=$total_runs
    if [ "$count" -ge "$min_ops" ]; then
        say "ok $target: at least $min_ops operations ($count)"
        passed=$((passed + 1))
    else
        say "FAIL $target: $count operations, fewer than $min_ops"
        failed=$((failed + 1))
    fi
fi
say "$suite: $passed passed, $failed failed"
[ $failed -eq 0 ]
