#!/usr/bin/env bash
# Every target the README names, on a machine where the Debian packages are
# missing: it stops before compiling anything, with one line that names the
# packages and the command that installs them (scripts/deps.sh).  The missing
# machine is simulated by MB_DEPS_ROOT (every file probe under a directory that
# does not exist, every command probe failing) with MEMBUDGET_NO_APT=1, so that
# nothing is installed or removed here.  Last, on this machine, where make
# check installed everything, the check finds nothing missing.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; sed 's/^/    | /' "$work/err" | head -n 8; }

# The outer make's variables (MB_DEPS_DONE among them) must not reach these.
clean_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MB_DEPS_DONE \
        MB_DEPS_ROOT=/nonexistent-root MEMBUDGET_NO_APT=1 \
        make --no-print-directory -C "$here" BUILD_ROOT="$work/build" "$@"
}

for target in all lib demo bench check install; do
    name="make $target without the -dev packages stops with one line"
    rm -rf "$work/build"
    if clean_make "$target" DESTDIR="$work/dest" >"$work/out" 2>"$work/err"; then
        fail "$name" "it succeeded"; continue
    fi
    lines=$(grep -c '^membudget: ' "$work/err")
    line=$(grep '^membudget: ' "$work/err")
    if [ "$lines" != 1 ]; then
        fail "$name" "expected one 'membudget:' line, got $lines"
    elif ! grep -q 'libunwind-dev' <<<"$line" || ! grep -q 'libdw-dev' <<<"$line" ||
        ! grep -q 'apt-get install' <<<"$line"; then
        fail "$name" "the line does not name the packages and the install command: $line"
    elif [ -e "$work/build/obj" ] || [ -e "$work/build/tools" ] || [ -e "$work/dest" ] ||
        grep -q '^cc \|^gcc ' "$work/out"; then
        fail "$name" "something was compiled or installed before the check"
    else
        ok "$name"
    fi
done

name="make bench names the peer allocators it compares"
clean_make bench >"$work/out" 2>"$work/err"
if grep -q 'libmimalloc2.0' "$work/err" && grep -q 'libtcmalloc-minimal4' "$work/err"; then
    ok "$name"
else
    fail "$name" "missing libmimalloc2.0 or libtcmalloc-minimal4"
fi

name="an unknown profile is refused with one line"
if bash "$here/scripts/deps.sh" --check nonsense >"$work/out" 2>"$work/err" ||
    ! grep -q "unknown profile 'nonsense'" "$work/err"; then
    fail "$name" "not refused"
else
    ok "$name"
fi

for profile in build demo bench check; do
    name="after make deps nothing of profile $profile is missing"
    if bash "$here/scripts/deps.sh" --check "$profile" >"$work/out" 2>"$work/err"; then
        ok "$name"
    else
        fail "$name" "still missing"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
