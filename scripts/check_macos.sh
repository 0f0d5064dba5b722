#!/usr/bin/env bash
# make check-macos: builds membudget for macOS against an SDK, with Debian's
# clang, ld64.lld and llvm tools, and checks what can be checked without a Mac
# (tests/macos.mk).  One line per check, "ok ..." or "FAIL ...", then
# "N passed, N failed".
#
#   check_macos.sh SDK LLVM_BIN LINUX_LIB BUILD_ROOT
#
# For x86_64-apple-macos11 and arm64-apple-macos11: the library, the command
# and the report tool compiled with -Werror (the Makefile's darwin block, run in
# a sub-make with CC set to the target), libmembudget.dylib linked by ld64.lld
# against the SDK's libSystem stubs, then scripts/check_macos.py on it; last,
# one universal file made by llvm-lipo and read back.
set -u
sdk=${1:?usage: check_macos.sh SDK LLVM_BIN LINUX_LIB BUILD_ROOT}
bin=${2:?}
linux_lib=${3:?}
root=${4:?}
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
# The last lines of a log, indented, after a failure.
tail_log() { grep -v '^[[:space:]]*$' "$1" | grep -v '^clang ' | tail -n 8 | sed 's/^/    | /'; }

if [ ! -e "$sdk/usr/lib/libSystem.tbd" ] && [ ! -e "$sdk/usr/lib/libSystem.B.tbd" ]; then
    echo "FAIL MACOS_SDK=$sdk: no usr/lib/libSystem.tbd there; give the SDK's root directory (the one holding usr/ and System/)"
    echo "0 passed, 1 failed"
    exit 1
fi
for t in clang ld64.lld llvm-lipo llvm-nm llvm-objdump; do
    if [ ! -x "$bin/$t" ]; then
        echo "FAIL $bin/$t is missing: install clang, lld and llvm (scripts/deps.sh macos)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
export MACOS_LLVM_BIN=$bin
ldflags="-fuse-ld=$bin/ld64.lld -Wl,-platform_version,macos,11.0,12.0"
libs=()
for arch in x86_64 arm64; do
    out=$root/macos-$arch
    log=$out.log
    rm -rf "$out" && mkdir -p "$out" # every file compiled again, with -Werror
    cc="$bin/clang -target $arch-apple-macos11 -isysroot $sdk"
    # What the darwin block compiles: the count shows none was left out.
    if make --no-print-directory -j2 MB_DEPS_DONE=1 MB_OS=darwin CC="$cc" \
        MACOS_LDFLAGS="$ldflags" BUILD_ROOT="$out" lib >"$log" 2>&1; then
        n=$(grep -c -- ' -Werror .* -c ' "$log")
        ok "$arch: library: $n files compiled with -Werror by clang -target $arch-apple-macos11, linked by ld64.lld: $out/libmembudget.dylib"
        libs+=("$out/libmembudget.dylib")
        python3 scripts/check_macos.py "$sdk" "$arch" "$out/libmembudget.dylib" "$linux_lib" \
            preload/exports.map >"$out.checks" 2>&1
        passed=$((passed + $(grep -c '^ok ' "$out.checks")))
        failed=$((failed + $(grep -c '^FAIL ' "$out.checks")))
        [ -s "$out.checks" ] && ! grep -q '^\(ok\|FAIL\) ' "$out.checks" && failed=$((failed + 1))
        cat "$out.checks"
    else
        fail "$arch: the library did not build (log: $log):"
        tail_log "$log"
    fi
done

if [ ${#libs[@]} -eq 2 ]; then
    universal=$root/macos/libmembudget.dylib
    mkdir -p "$(dirname "$universal")"
    archs=
    if "$bin/llvm-lipo" -create -output "$universal" "${libs[@]}" 2>"$root/macos-lipo.log"; then
        archs=$(echo $("$bin/llvm-lipo" -archs "$universal" 2>>"$root/macos-lipo.log"))
    fi
    case "$archs" in
        "x86_64 arm64" | "arm64 x86_64")
            ok "universal: llvm-lipo made $universal, architectures: $archs" ;;
        *) fail "universal: llvm-lipo failed or gave '$archs' ($(cat "$root/macos-lipo.log"))" ;;
    esac
else
    fail "universal: not made, an architecture did not build"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
