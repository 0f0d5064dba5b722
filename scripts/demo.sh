#!/usr/bin/env bash
# make demo: a real program (python3 with every object allocation going through
# malloc) runs its workload once on the C library's allocator and once under
# libmembudget.so, and the library reports what it committed.
set -euo pipefail
lib=$(realpath "${1:?usage: demo.sh LIB}")
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # label, then the environment to add
    local label=$1; shift
    rm -rf "$work/run" && mkdir "$work/run"
    local start end
    start=$EPOCHREALTIME
    env "$@" bash "$here/tests/programs/workloads/python3.sh" "$work/run" >"$work/$label.out" 2>"$work/$label.err"
    end=$EPOCHREALTIME
    awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%-28s %6.2f s\n", l, e - s }'
}

echo "== python3 (PYTHONMALLOC=malloc): dicts, JSON, big lists, strings"
run "glibc malloc" MEMBUDGET_VERBOSE=0
run "membudget (LD_PRELOAD)" LD_PRELOAD="$lib" MEMBUDGET_VERBOSE=1
if cmp -s "$work/glibc malloc.out" "$work/membudget (LD_PRELOAD).out"; then
    echo "output: identical ($(wc -l <"$work/glibc malloc.out") lines)"
else
    echo "output: DIFFERENT"; diff "$work/glibc malloc.out" "$work/membudget (LD_PRELOAD).out" | head; exit 1
fi
echo "== the library's summary at exit (MEMBUDGET_VERBOSE=1):"
grep '(python3' "$work/membudget (LD_PRELOAD).err" | grep '^membudget:' || {
    echo "no summary line"; cat "$work/membudget (LD_PRELOAD).err"; exit 1; }
