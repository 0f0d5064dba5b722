#!/usr/bin/env bash
# valgrind --tool=memcheck over:
#  - the unit and threaded tests built in linked mode (the allocator's sources
#    compiled into the program, -DMBTEST_LINKED -DMB_NO_EXPORTS, no preload):
#    memcheck sees the allocator's own code read and write its mappings;
#  - the CLI (`membudget limits`, `membudget report` with --svg, --folded and
#    --json) and the report tool, on a report written by a real budget death,
#    when they are built (CLI and REPORT name them; "" or a missing file skips).
# A case passes when memcheck reports no error (--error-exitcode) and the
# program itself succeeds.  The last line of OUT is "valgrind: N passed, N failed".
#
# Usage: run_valgrind.sh OUT SUPPRESSIONS LIB LOAD CLI REPORT TEST_BINARY...
set -u
out=$1 supp=$2 lib=$3 load=$4 cli=$5 report=$6
shift 6
mkdir -p "$(dirname "$out")"
: >"$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
say() { echo "$*" | tee -a "$out"; }
VG=(valgrind --tool=memcheck --error-exitcode=99 --suppressions="$supp" -q)

# $1 name, $2 time limit, then the command.
case_run() {
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout -k 10 "$limit" "${VG[@]}" "$@" >"$tmp/log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ] && ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' "$tmp/log"; then
        say "ok valgrind $name ($((SECONDS - start)) s)"
        passed=$((passed + 1))
    else
        case $rc in
        99) why="memcheck reported errors" ;;
        124 | 137) why="timed out after $limit s" ;;
        *) why="exit status $rc" ;;
        esac
        say "FAIL valgrind $name: $why"
        grep -E '^==[0-9]+== [A-Z]|^==[0-9]+==    (at|by)|FAIL' "$tmp/log" | head -n 16 | sed 's/^/    | /' | tee -a "$out"
        failed=$((failed + 1))
    fi
}

for bin in "$@"; do
    name=$(basename "$bin")
    # Threads run one at a time under valgrind: the threaded tests at a
    # twentieth of their size.
    scale=1
    [ "$name" != test_api ] && scale=0.05
    MBTEST_SCALE=$scale case_run "$name (linked, MBTEST_SCALE=$scale)" 600 "$bin"
done

if [ -n "$cli" ] && [ -x "$cli" ]; then
    # (through timeout, so the shell does not announce the intended SIGABRT)
    timeout 120 env -u LD_PRELOAD MEMBUDGET_LIMIT=32M MEMBUDGET_REPORT="$tmp/death.json" LD_PRELOAD="$lib" \
        "$load" 2 $((64 << 20)) 0 0 1 >/dev/null 2>&1
    if [ -s "$tmp/death.json" ]; then
        case_run "membudget limits" 120 "$cli" limits
        case_run "membudget report DUMP --svg FILE" 300 "$cli" report "$tmp/death.json" --svg "$tmp/t.svg"
        case_run "membudget report DUMP --folded" 300 "$cli" report "$tmp/death.json" --folded
        case_run "membudget report DUMP --json" 300 "$cli" report "$tmp/death.json" --json
        if [ -n "$report" ] && [ -x "$report" ]; then
            case_run "membudget-report DUMP" 300 "$report" "$tmp/death.json"
        else
            say "skip valgrind membudget-report: not built"
            skipped=$((skipped + 1))
        fi
    else
        say "FAIL valgrind of the tools: no report from a budget death to read"
        failed=$((failed + 1))
    fi
else
    say "skip valgrind of the CLI and the report tool: not built"
    skipped=$((skipped + 1))
fi
say "valgrind: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
