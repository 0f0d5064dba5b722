#!/usr/bin/env bash
# How make check records results (scripts/check_target.sh, record_suite.sh and
# summary.sh): a suite that fails keeps its own lines and is counted once; a
# check target that fails before its suite runs leaves a failing line that says
# why; a suite that stops before its closing line leaves one too; a target that
# passes adds nothing.  Fake targets and suites, in a results directory of
# their own.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; for f in "$work"/r/*.txt "$work/summary"; do
    [ -e "$f" ] && sed "s|^|    | $(basename "$f"): |" "$f"; done | head -n 12; }
fresh() { rm -rf "$work/r" && mkdir -p "$work/r"; }
target() { bash "$here/scripts/check_target.sh" "$work/r" "$@" >"$work/out" 2>&1; }
summary() { bash "$here/scripts/summary.sh" "$work/r" >"$work/summary"; }

# A suite that ran and failed: its lines stand alone.
fresh
name="a failing suite keeps its lines and is counted once"
target check-fake bash -c "printf 'ok a\nFAIL b: why\n1 passed, 1 failed\n' | tee $work/r/fake.txt; exit 1"
rc=$?
summary
if [ $rc -eq 0 ] || [ -e "$work/r/make-check-fake.txt" ] || ! grep -q '^FAIL b: why' "$work/r/fake.txt" \
        || [ "$(tail -n 1 "$work/summary")" != "1 passed, 1 failed, 0 skipped" ] \
        || grep -q 'no result line' "$work/summary"; then
    fail "$name" "exit $rc, $(ls "$work/r")"
else
    ok "$name"
fi

# A target that stops before its suite runs (a test program that does not build).
fresh
name="a target that fails before its suite runs leaves a failing line that says why"
target check-fake bash -c "echo 'cc: error: grow.c: No such file or directory' >&2; exit 2"
rc=$?
summary
f="$work/r/make-check-fake.txt"
if [ $rc -ne 2 ] || [ ! -e "$f" ] || ! grep -q '^FAIL make check-fake: exit status 2' "$f" \
        || ! grep -q 'grow.c: No such file' "$f" \
        || [ "$(tail -n 1 "$work/summary")" != "0 passed, 1 failed, 0 skipped" ] \
        || grep -q 'no result line' "$work/summary"; then
    fail "$name" "exit $rc"
else
    ok "$name"
fi

# A suite that passed, then a failure after it (the target's own last step).
fresh
name="a target that fails after its suite passed is counted as failing"
target check-fake bash -c "printf 'ok a\n1 passed, 0 failed\n' > $work/r/fake.txt; exit 1"
rc=$?
summary
if [ $rc -ne 1 ] || [ ! -e "$work/r/make-check-fake.txt" ] \
        || [ "$(tail -n 1 "$work/summary")" != "1 passed, 1 failed, 0 skipped" ]; then
    fail "$name" "exit $rc"
else
    ok "$name"
fi

# A target that passes adds nothing.
fresh
name="a passing target adds no line"
target check-fake bash -c "printf 'ok a\n1 passed, 0 failed\n' > $work/r/fake.txt"
rc=$?
summary
if [ $rc -ne 0 ] || [ "$(ls "$work/r")" != "fake.txt" ] \
        || [ "$(tail -n 1 "$work/summary")" != "1 passed, 0 failed, 0 skipped" ]; then
    fail "$name" "exit $rc, $(ls "$work/r")"
else
    ok "$name"
fi

# A suite that crashes before its closing line (record_suite.sh, as with_jemalloc runs it).
fresh
name="a suite that stops before its closing line leaves a failing line"
bash "$here/scripts/record_suite.sh" "$work/r" fake-jemalloc \
    bash -c "echo 'ok a'; echo 'Traceback (most recent call last):'; exit 1" >"$work/out" 2>&1
rc=$?
summary
f="$work/r/fake-jemalloc.txt"
if [ $rc -ne 1 ] || ! grep -q '^ok a' "$f" || ! grep -q '^FAIL fake-jemalloc: exit status 1 before its closing line' "$f" \
        || [ "$(tail -n 1 "$work/summary")" != "0 passed, 1 failed, 0 skipped" ]; then
    fail "$name" "exit $rc"
else
    ok "$name"
fi

# A suite that fails with its closing line keeps it as it is.
fresh
name="a failing suite's closing line is kept as it is"
bash "$here/scripts/record_suite.sh" "$work/r" fake-jemalloc \
    bash -c "printf 'FAIL x: y\n0 passed, 1 failed\n'; exit 1" >"$work/out" 2>&1
rc=$?
summary
if [ $rc -ne 1 ] || [ "$(cat "$work/r/fake-jemalloc.txt")" != "$(printf 'FAIL x: y\n0 passed, 1 failed')" ] \
        || [ "$(tail -n 1 "$work/summary")" != "0 passed, 1 failed, 0 skipped" ]; then
    fail "$name" "exit $rc"
else
    ok "$name"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
