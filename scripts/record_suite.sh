#!/usr/bin/env bash
# Runs one test suite and keeps its lines in RESULTS/NAME.txt for
# scripts/summary.sh.  A suite that stops before its closing "N passed,
# N failed" line (a crash, a missing program) still leaves a failing result
# there, with its exit status, so that the summary counts it and says why.
#
#   scripts/record_suite.sh RESULTS NAME COMMAND [ARG]...
set -u
results=${1:?usage: record_suite.sh RESULTS NAME COMMAND...}
name=${2:?usage: record_suite.sh RESULTS NAME COMMAND...}
shift 2
mkdir -p "$results"
out="$results/$name.txt"
"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && ! grep -qE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$out"; then
    { echo "FAIL $name: exit status $rc before its closing line"
      echo "$name: 0 passed, 1 failed"; } | tee -a "$out"
fi
exit "$rc"
