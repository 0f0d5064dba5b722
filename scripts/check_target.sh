#!/usr/bin/env bash
# make check's runner for one check target: runs it and, when it fails without
# any suite having recorded a failure in RESULTS (the target stopped before its
# suite ran: a test program that did not build, a missing tool), records one in
# RESULTS/make-TARGET.txt with the exit status and the last lines of its
# output, so that scripts/summary.sh counts it and says why.  A suite that ran
# and failed has its own lines already: nothing is added to them.
#
#   scripts/check_target.sh RESULTS TARGET COMMAND [ARG]...
set -u
results=${1:?usage: check_target.sh RESULTS TARGET COMMAND...}
target=${2:?usage: check_target.sh RESULTS TARGET COMMAND...}
shift 2
mkdir -p "$results"
stamp=$(mktemp "$results/.stamp.XXXXXX")
log=$(mktemp)
trap 'rm -f "$stamp" "$log"' EXIT
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0
# Result files written since the target started, and whether one of them
# counts a failure.
recorded=0
while IFS= read -r -d '' f; do
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$f" | tail -n 1)
    n=$(sed -nE 's/.*\b([0-9]+) failed.*/\1/p' <<<"$line")
    [ "${n:-0}" -gt 0 ] && recorded=1
done < <(find "$results" -maxdepth 1 -name '*.txt' -newer "$stamp" -print0)
if [ "$recorded" -eq 0 ]; then
    { echo "FAIL make $target: exit status $rc, and no suite recorded a failure (it stopped before its suite ran, or after it passed); its last lines:"
      grep -v '^[[:space:]]*$' "$log" | tail -n 5 | sed 's/^/    | /'
      echo "make-$target: 0 passed, 1 failed"; } >"$results/make-$target.txt"
fi
exit "$rc"
