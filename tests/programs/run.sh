#!/usr/bin/env bash
# Real programs under the preload: every workload in workloads/ runs once as it is and
# once with LD_PRELOAD=LIB, each in a fresh directory; both runs must exit 0 and print
# the same bytes on stdout. Two more cases prove the allocations went through LIB: the
# library's exit summary (MEMBUDGET_VERBOSE=1) reports a large peak for python3, and
# the brk heap ([heap] in /proc/self/maps) stays empty under the preload.
#
# Usage: run.sh LIB        e.g. bash tests/programs/run.sh build/libmembudget.so
# Environment: MB_PROGRAM_TIMEOUT (seconds per run, default 180),
#              MB_PROGRAMS (space-separated subset of workloads to run),
#              MB_TEST_BACKEND (native or jemalloc: MEMBUDGET_BACKEND of the preloaded
#              runs; with jemalloc the exit summaries must name it).
# Prints "ok NAME" / "FAIL NAME: reason" / "skip NAME: reason" per case, then
# "N passed, N failed[, N skipped]" as the last line; exits non-zero on any failure.
set -u

usage() { echo "usage: run.sh LIB (the shared library to preload)" >&2; exit 2; }
[ $# -eq 1 ] || usage
lib_arg=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workloads_dir=$here/workloads
timeout_s=${MB_PROGRAM_TIMEOUT:-180}
all_programs="python3 sqlite3 gcc perl git java node"
programs=${MB_PROGRAMS:-$all_programs}

# The smallest python3 peak (bytes) that the exit summary must report: the workload
# keeps ~200 MB live, a small interpreter alone stays under 10 MiB.
min_python_peak=$((64 * 1024 * 1024))
# [heap] sizes: the allocation below makes glibc's brk heap grow past the first; under
# the preload it must stay at or under the second (absent is 0).
heap_min_plain=$((32 * 1024 * 1024))
heap_max_preloaded=$((4 * 1024 * 1024))

passed=0 failed=0 skipped=0
ok() { echo "ok $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip $1: $2"; skipped=$((skipped + 1)); }
# Indented excerpt of a file, for the lines after a FAIL.
excerpt() { sed -n "1,${2:-15}p" "$1" | sed 's/^/    | /'; }

finish() {
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
    exit
}

if [ ! -f "$lib_arg" ]; then
    fail setup "library '$lib_arg' not found (build it first)"
    finish
fi
# Workloads change directory, so the preload path must be absolute.
lib=$(realpath "$lib_arg")
backend=${MB_TEST_BACKEND:-native}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mb-programs.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# A clean, fixed environment for both runs: nothing preloaded or configured from outside.
unset LD_PRELOAD
while IFS='=' read -r var _; do
    case $var in MEMBUDGET_*) unset "$var" ;; esac
done < <(env)
export LC_ALL=C

# pyenv and similar install python3 as a shell shim; run the interpreter itself so the
# process that allocates is the one the exit summary names.
if [ -z "${PYTHON:-}" ] && command -v python3 > /dev/null; then
    PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2> /dev/null) || PYTHON=python3
fi
export PYTHON=${PYTHON:-python3}

# Commands each workload needs; a missing one makes the case a skip.
needs() {
    case $1 in
        python3) echo "$PYTHON" ;;
        gcc) echo "gcc as ld sha256sum awk" ;;
        git) echo "git awk sha256sum" ;;
        java) echo "java javac" ;;
        *) echo "$1" ;;
    esac
}

now() { echo "${EPOCHREALTIME/[,.]/}"; }  # microseconds
secs() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1e6 }'; }

# run_workload NAME MODE -> $tmp/NAME.MODE.{out,err,rc,us}; MODE is plain or preload.
run_workload() {
    local name=$1 mode=$2 dir rc t0 t1
    dir=$(mktemp -d "$tmp/$name.$mode.XXXXXX")
    local -a envs=()
    [ "$mode" = preload ] && envs=(LD_PRELOAD="$lib" MEMBUDGET_VERBOSE=1 MEMBUDGET_BACKEND="$backend")
    t0=$(now)
    timeout -k 10 "$timeout_s" env "${envs[@]}" bash "$workloads_dir/$name.sh" "$dir" \
        < /dev/null > "$tmp/$name.$mode.out" 2> "$tmp/$name.$mode.err"
    rc=$?
    t1=$(now)
    echo "$rc" > "$tmp/$name.$mode.rc"
    echo $((t1 - t0)) > "$tmp/$name.$mode.us"
    rm -rf "$dir"
}

describe_rc() {
    case $1 in
        124) echo "timed out after ${timeout_s} s" ;;
        137) echo "killed (SIGKILL) after the timeout" ;;
        1[2-9][0-9]) echo "exit $1 (signal $(($1 - 128)), $(kill -l $(($1 - 128)) 2> /dev/null))" ;;
        *) echo "exit $1" ;;
    esac
}

# The exit summary lines the library prints with MEMBUDGET_VERBOSE=1, as
# "COMM PEAK_BYTES BACKEND" triples, from a stderr file (the line names the
# backend when it is not the native allocator).
summary_re='^membudget: pid [0-9]+ \((.*)\) at exit: committed [0-9.]+ [KMGT]?i?B \(([0-9]+)\), peak [0-9.]+ [KMGT]?i?B \(([0-9]+)\), pages [0-9]+, threads [0-9]+(, backend ([a-z]+))?$'
exit_summaries() { sed -nE "s/$summary_re/\\1 \\3 \\5/p" "$1" | awk '{ print $1, $2, ($3 == "" ? "native" : $3) }'; }

check_program() {
    local name=$1 cmd missing=""
    if [ ! -f "$workloads_dir/$name.sh" ]; then
        fail "$name" "no workload script $workloads_dir/$name.sh"
        return
    fi
    for cmd in $(needs "$name"); do
        command -v "$cmd" > /dev/null || missing="$missing $cmd"
    done
    if [ -n "$missing" ]; then
        skip "$name" "not installed:$missing"
        return
    fi

    run_workload "$name" plain
    run_workload "$name" preload
    local p="$tmp/$name.plain" l="$tmp/$name.preload" rc_p rc_l
    rc_p=$(cat "$p.rc") rc_l=$(cat "$l.rc")

    if [ "$rc_p" -ne 0 ]; then
        fail "$name" "the workload fails without the preload ($(describe_rc "$rc_p")); stderr:"
        excerpt "$p.err"
        return
    fi
    if grep -q 'cannot be preloaded' "$l.err"; then
        fail "$name" "the library was not preloaded: $(grep -m1 'cannot be preloaded' "$l.err")"
        return
    fi
    if [ "$rc_l" -ne 0 ]; then
        fail "$name" "under the preload: $(describe_rc "$rc_l") (without it: exit 0); stderr:"
        excerpt "$l.err"
        return
    fi
    if [ ! -s "$p.out" ]; then
        fail "$name" "the workload printed nothing without the preload"
        return
    fi
    if ! cmp -s "$p.out" "$l.out"; then
        fail "$name" "stdout differs under the preload ($(wc -l < "$p.out") lines without, $(wc -l < "$l.out") with); diff without/with:"
        diff "$p.out" "$l.out" | sed -n '1,20p' | sed 's/^/    | /'
        return
    fi
    ok "$name ($(wc -l < "$p.out") identical lines; $(secs "$(cat "$p.us")") s plain," \
        "$(secs "$(cat "$l.us")") s preloaded; $(exit_summaries "$l.err" | wc -l) exit summaries)"
}

# The python3 run under the preload had MEMBUDGET_VERBOSE=1: its interpreter must have
# printed the exit summary, with a peak that only the workload's data can explain.
check_python_stats() {
    local name=stats-python3 err=$tmp/python3.preload.err rc peak
    if [ ! -f "$tmp/python3.preload.rc" ]; then
        skip "$name" "the python3 workload did not run"
        return
    fi
    rc=$(cat "$tmp/python3.preload.rc")
    peak=$(exit_summaries "$err" | awk '$1 ~ /^python/ && $2 > max { max = $2 } END { print max + 0 }')
    if ! exit_summaries "$err" | grep -q '^python'; then
        fail "$name" "no exit summary from python3 on stderr with MEMBUDGET_VERBOSE=1 (expected 'membudget: pid N (python3) at exit: committed X MiB (B), peak X MiB (B), pages N, threads N'; workload exit $rc); stderr:"
        excerpt "$err" 8
        return
    fi
    if [ "$peak" -lt "$min_python_peak" ]; then
        fail "$name" "python3 peak is $peak bytes, expected at least $min_python_peak (did its allocations bypass the library?)"
        return
    fi
    if exit_summaries "$err" | awk -v b="$backend" '$1 ~ /^python/ && $3 != b { bad = 1 } END { exit !bad }'; then
        fail "$name" "an exit summary names another backend than $backend: $(exit_summaries "$err" | grep -m1 '^python')"
        return
    fi
    ok "$name (peak $((peak / 1024 / 1024)) MiB, backend $backend)"
}

# A python3 that allocates ~110 MB of small objects reports its own [heap] mapping.
check_brk_heap() {
    local name=heap-brk plain preload rc
    if ! command -v "$PYTHON" > /dev/null; then
        skip "$name" "not installed: python3"
        return
    fi
    cat > "$tmp/heap.py" <<'PY'
objs = [b"x" * 60 + i.to_bytes(4, "little") for i in range(1_000_000)]
heap = 0
with open("/proc/self/maps") as maps:
    for line in maps:
        if line.rstrip().endswith("[heap]"):
            lo, hi = line.split()[0].split("-")
            heap += int(hi, 16) - int(lo, 16)
print(len(objs), heap)
PY
    plain=$(cd "$tmp" && PYTHONMALLOC=malloc timeout -k 10 "$timeout_s" "$PYTHON" heap.py 2> "$tmp/heap.plain.err")
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "without the preload: $(describe_rc $rc)"
        excerpt "$tmp/heap.plain.err"
        return
    fi
    preload=$(cd "$tmp" && PYTHONMALLOC=malloc timeout -k 10 "$timeout_s" \
        env LD_PRELOAD="$lib" MEMBUDGET_BACKEND="$backend" "$PYTHON" heap.py 2> "$tmp/heap.preload.err")
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "under the preload: $(describe_rc $rc)"
        excerpt "$tmp/heap.preload.err"
        return
    fi
    if grep -q 'cannot be preloaded' "$tmp/heap.preload.err"; then
        fail "$name" "the library was not preloaded: $(grep -m1 'cannot be preloaded' "$tmp/heap.preload.err")"
        return
    fi
    plain=${plain#* } preload=${preload#* }
    if [ "$plain" -lt "$heap_min_plain" ]; then
        fail "$name" "the check proves nothing here: without the preload [heap] is only $plain bytes (expected at least $heap_min_plain)"
    elif [ "$preload" -gt "$heap_max_preloaded" ]; then
        fail "$name" "[heap] grew to $preload bytes under the preload (at most $heap_max_preloaded expected; $plain without): malloc still uses brk"
    else
        ok "$name ([heap] $((plain / 1024 / 1024)) MiB without the preload, $((preload / 1024)) KiB with)"
    fi
}

echo "# real programs, preloading $lib (backend $backend)"
for name in $programs; do
    check_program "$name"
done
case " $programs " in *" python3 "*) check_python_stats ;; esac
check_brk_heap
finish
