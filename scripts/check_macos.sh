#!/usr/bin/env bash
# make check-macos: builds membudget for macOS against an SDK, with Debian's
# clang, ld64.lld and llvm tools, and checks what can be checked without a Mac
# (tests/macos.mk).  One line per check, "ok ..." or "FAIL ...", then
# "N passed, N failed".
#
#   check_macos.sh SDK LLVM_BIN LINUX_LIB BUILD_ROOT [JANSSON_SRC]
#
# For x86_64-apple-macos11 and arm64-apple-macos11: the library, the command
# and the report tool compiled with -Werror (the Makefile's darwin block, run in
# a sub-make with CC set to the target), libmembudget.dylib linked by ld64.lld
# against the SDK's libSystem stubs, then scripts/check_macos.py on it; last,
# one universal file made by llvm-lipo and read back.  The tools read JSON with
# jansson, which the SDK lacks: with JANSSON_SRC (a source tree of jansson,
# e.g. v2.14, Debian 12's) it is compiled for each architecture first, else the
# tools are not built and one check says so.
set -u
sdk=${1:?usage: check_macos.sh SDK LLVM_BIN LINUX_LIB BUILD_ROOT}
bin=${2:?}
linux_lib=${3:?}
root=${4:?}
jansson=${5:-}
passed=0
failed=0
skipped=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
# The last lines of a log, indented, after a failure.
tail_log() { grep -v '^[[:space:]]*$' "$1" | grep -v '^clang ' | tail -n 8 | sed 's/^/    | /'; }

if [ ! -e "$sdk/usr/lib/libSystem.tbd" ] && [ ! -e "$sdk/usr/lib/libSystem.B.tbd" ]; then
    echo "FAIL MACOS_SDK=$sdk: no usr/lib/libSystem.tbd there; give the SDK's root directory (the one holding usr/ and System/)"
    echo "0 passed, 1 failed"
    exit 1
fi
for t in clang ld64.lld llvm-lipo llvm-nm llvm-objdump llvm-ar; do
    if [ ! -x "$bin/$t" ]; then
        echo "FAIL $bin/$t is missing: install clang, lld and llvm (scripts/deps.sh macos)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
export MACOS_LLVM_BIN=$bin
# -fuse-ld=lld: clang (of $bin) runs ld64.lld, the darwin flavour, from its own directory.
ldflags="-fuse-ld=lld -Wl,-platform_version,macos,11.0,12.0"
# jansson for one architecture: DIR/include and DIR/lib/libjansson.a, from
# its autotools templates (a static library: the tools link it in).
build_jansson() {
    local cc=$1 dir=$2 src=$jansson/src
    mkdir -p "$dir/include" "$dir/lib" "$dir/obj"
    sed -e 's/@json_inline@/inline/' -e 's/@json_have_long_long@/1/' \
        -e 's/@json_have_localeconv@/1/' -e 's/@json_have_atomic_builtins@/1/' \
        -e 's/@json_have_sync_builtins@/1/' "$src/jansson_config.h.in" >"$dir/include/jansson_config.h"
    cp "$src/jansson.h" "$dir/include/"
    printf '%s\n' '#define HAVE_STDINT_H 1' '#define HAVE_UNISTD_H 1' '#define HAVE_FCNTL_H 1' \
        '#define HAVE_SCHED_H 1' '#define HAVE_SYS_TIME_H 1' '#define HAVE_SYS_TYPES_H 1' \
        '#define HAVE_SYS_STAT_H 1' '#define HAVE_SYS_PARAM_H 1' '#define HAVE_CLOSE 1' \
        '#define HAVE_GETPID 1' '#define HAVE_GETTIMEOFDAY 1' '#define HAVE_OPEN 1' \
        '#define HAVE_READ 1' '#define HAVE_SCHED_YIELD 1' '#define HAVE_ATOMIC_BUILTINS 1' \
        '#define HAVE_SYNC_BUILTINS 1' '#define HAVE_LOCALE_H 1' '#define HAVE_SETLOCALE 1' \
        '#define USE_URANDOM 1' '#define INITIAL_HASHTABLE_ORDER 3' \
        >"$dir/include/jansson_private_config.h"
    local f objs=()
    for f in "$src"/*.c; do
        $cc -std=c99 -O2 -w -DHAVE_CONFIG_H -I"$dir/include" -I"$src" -c "$f" \
            -o "$dir/obj/$(basename "$f" .c).o" || return 1
        objs+=("$dir/obj/$(basename "$f" .c).o")
    done
    rm -f "$dir/lib/libjansson.a"
    "$bin/llvm-ar" rcs "$dir/lib/libjansson.a" "${objs[@]}"
}

# The command and the report tool for one architecture, linked against the
# SDK and jansson; their undefined symbols must all be libSystem's or libc++'s.
check_tools() {
    local arch=$1 out=$2 cc=$3 log=$2-tools.log
    if [ -z "$jansson" ]; then
        # Compiled against Debian's jansson headers (the same for every
        # 64-bit target), not linked: there is no jansson for macOS to link.
        mkdir -p "$out/jansson-headers"
        cp /usr/include/jansson.h /usr/include/jansson_config.h "$out/jansson-headers/" 2>"$log"
        if make --no-print-directory -j2 MB_DEPS_DONE=1 MB_OS=darwin CC="$cc" \
            BUILD_ROOT="$out" MACOS_JANSSON_CFLAGS="-I$out/jansson-headers" \
            tool-objs report-tool-objs >>"$log" 2>&1; then
            ok "$arch: tools: membudget ($(grep -c -- ' -o [^ ]*/tools/obj/' "$log") files) and membudget-report ($(grep -c -- ' -o [^ ]*/report/obj/' "$log") files) compiled with -Werror"
            echo "skip $arch: tools not linked: give MACOS_JANSSON=DIR, a jansson source tree (e.g. v2.14 of github.com/akheron/jansson), which the SDK lacks"
            skipped=$((skipped + 1))
        else
            fail "$arch: the tools did not compile (log: $log):"
            tail_log "$log"
        fi
        return
    fi
    if ! build_jansson "$cc" "$out/jansson" >"$log" 2>&1; then
        fail "$arch: jansson did not build from $jansson (log: $log):"
        tail_log "$log"
        return
    fi
    if make --no-print-directory -j2 MB_DEPS_DONE=1 MB_OS=darwin CC="$cc" \
        MACOS_LDFLAGS="$ldflags" BUILD_ROOT="$out" \
        MACOS_JANSSON_CFLAGS="-I$out/jansson/include" \
        MACOS_JANSSON_LDFLAGS="-L$out/jansson/lib" \
        "$out/membudget" "$out/membudget-report" >>"$log" 2>&1; then
        ok "$arch: tools: membudget ($(grep -c -- ' -o [^ ]*/tools/obj/' "$log") files) and membudget-report compiled with -Werror, linked by ld64.lld with jansson $(sed -n 's/.*JANSSON_VERSION *"\(.*\)".*/\1/p' "$jansson/src/jansson.h")"
        local t
        for t in membudget membudget-report; do
            python3 scripts/check_macos.py --tool "$sdk" "$arch" "$out/$t" >"$out.$t.checks" 2>&1
            passed=$((passed + $(grep -c '^ok ' "$out.$t.checks")))
            failed=$((failed + $(grep -c '^FAIL ' "$out.$t.checks")))
            grep -q '^\(ok\|FAIL\) ' "$out.$t.checks" || failed=$((failed + 1))
            cat "$out.$t.checks"
        done
    else
        fail "$arch: the tools did not build (log: $log):"
        tail_log "$log"
    fi
}

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
    check_tools "$arch" "$out" "$cc"
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
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
