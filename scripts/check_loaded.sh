#!/usr/bin/env bash
# make check-loaded: `make check` three times in a row in a fresh clone of this
# tree's HEAD, while one busy loop per core keeps every core busy, as on a
# shared CI machine.  Prints each run's closing line and exits non-zero when
# any run failed.  Not part of make check (it is three of them).
#
#   scripts/check_loaded.sh [RUNS]        (default 3; LOAD_PER_CORE=N loops a core)
set -u
runs=${1:-3}
per_core=${LOAD_PER_CORE:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/membudget-loaded.XXXXXX")
# Open to others, as a CI checkout is: suites run some programs as nobody.
chmod 755 "$work"
loaders=()
cleanup() {
    [ ${#loaders[@]} -gt 0 ] && kill "${loaders[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git clone -q "$here" "$work/clone" || exit 1
echo "check-loaded: $(git -C "$work/clone" log --oneline -1)"
cores=$(nproc)
for ((i = 0; i < cores * per_core; i++)); do
    bash -c 'while :; do :; done' &
    loaders+=($!)
done
echo "check-loaded: ${#loaders[@]} busy loops on $cores cores"

status=0
summaries=()
for ((r = 1; r <= runs; r++)); do
    start=$SECONDS
    # The outer make's variables must not reach the clone's make.
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MB_DEPS_DONE \
        make -C "$work/clone" check >"$work/run$r.log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/run$r.log" | tail -n 1)
    summaries+=("run $r: ${line:-no summary line} (exit $rc, $((SECONDS - start)) s)")
    echo "${summaries[-1]}"
    if [ $rc -ne 0 ]; then
        status=1
        grep -E '^(FAIL|suite .*no result)' "$work/run$r.log" | head -n 20
        mkdir -p "$here/build"
        cp "$work/run$r.log" "$here/build/check-loaded.run$r.log"
        echo "  (log: build/check-loaded.run$r.log)"
    fi
done
printf '%s\n' "${summaries[@]}"
exit $status
