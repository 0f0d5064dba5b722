#!/usr/bin/env bash
# make demo: the whole story in well under a minute.  A real program (python3,
# every object allocation going through malloc) runs under
# `membudget run --limit 64M`: its cache shrinks as the policy moves
# Unrestricted -> Conservative -> Strict, its working set keeps growing, the
# budget stops it with one line and a report, and the report tool summarizes
# the report and draws the footprint timeline.  Last, the same python3
# workload runs with and without the library and must print the same bytes.
# What the demo writes stays in build/demo/.
#
# Usage: demo.sh LIB [MEMBUDGET]   (the library, and the membudget command,
# by default beside the library)
set -euo pipefail
lib=$(realpath "${1:?usage: demo.sh LIB [MEMBUDGET]}")
here=$(cd "$(dirname "$0")/.." && pwd)
tool=$(realpath "${2:-$(dirname "$lib")/membudget}")
out=$here/build/demo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out" && mkdir -p "$out"
python=$(command -v python3) || { echo "demo: python3 is needed (apt-get install python3)"; exit 1; }
report_tool=$(dirname "$tool")/membudget-report

section() { printf '\n== %s\n' "$*"; }

section "1/3 The budget: \`membudget limits --limit 64M\` (each number and where it comes from)"
"$tool" limits --limit 64M | awk 'NR == 2 || /^(kill threshold|conservative|strict)/'

section "2/3 python3 under \`membudget run --limit 64M\`: a cache that shrinks, a working set that grows"
echo "\$ PYTHONMALLOC=malloc membudget run --limit 64M -- python3 scripts/demo_cache.py"
status=0
PYTHONMALLOC=malloc DEMO_MEMBUDGET_TOOL="$tool" \
    "$tool" run --limit 64M --report "$out/membudget.%p.json" -- \
    "$python" "$here/scripts/demo_cache.py" 2>&1 || status=$?
echo "exit status $status (121: stopped by its budget; membudget run says why on the line above)"
dump=$(ls "$out"/membudget.*.json 2>/dev/null | head -n 1 || true)
if [ -z "$dump" ]; then
    echo "demo: no report was written"
    exit 1
fi

if [ ! -x "$report_tool" ]; then
    # The report tool's summary lists the policy history; without it, read the
    # report directly.
    echo "the report tool is not built yet (make report-tool); the policy history from $dump:"
    "$python" - "$dump" <<'PY'
import json, sys
dump = json.load(open(sys.argv[1]))
for e in dump["policy"]["events"]:
    at = "%.1f MiB at %.2f s" % (e["footprint_bytes"] / 2**20, e["time_ns"] / 1e9)
    if e["kind"] == "policy":
        print("  %s -> %s (%s)" % (e["from"], e["to"], at))
    else:
        print("  %s (%s)" % (e["kind"], at))
PY
fi

section "3/3 The footprint timeline: \`membudget report DUMP --svg FILE\`"
if [ -x "$report_tool" ]; then
    "$tool" report "$dump" --svg "$out/timeline.svg" >/dev/null
    echo "timeline: $out/timeline.svg (open it in a browser)"
else
    echo "no SVG timeline: the report tool is not built yet (make report-tool)"
fi

section "The same python3 workload with glibc's malloc and with membudget: same output?"
run() { # label, then the environment to add
    local label=$1; shift
    rm -rf "$work/run" && mkdir "$work/run"
    local start end
    start=$EPOCHREALTIME
    env "$@" bash "$here/tests/programs/workloads/python3.sh" "$work/run" >"$work/$label.out" 2>"$work/$label.err"
    end=$EPOCHREALTIME
    awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%-28s %6.2f s\n", l, e - s }'
}
run "glibc malloc" MEMBUDGET_VERBOSE=0
run "membudget (LD_PRELOAD)" LD_PRELOAD="$lib" MEMBUDGET_VERBOSE=1
if cmp -s "$work/glibc malloc.out" "$work/membudget (LD_PRELOAD).out"; then
    echo "output: identical ($(wc -l <"$work/glibc malloc.out") lines)"
else
    echo "output: DIFFERENT"; diff "$work/glibc malloc.out" "$work/membudget (LD_PRELOAD).out" | head; exit 1
fi
grep '(python3' "$work/membudget (LD_PRELOAD).err" | grep '^membudget:' || {
    echo "no summary line"; cat "$work/membudget (LD_PRELOAD).err"; exit 1; }
