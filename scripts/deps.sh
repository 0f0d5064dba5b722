#!/usr/bin/env bash
# What each make target needs from Debian 12, and what to do when some of it is
# missing.
#
#   deps.sh [--install|--check] PROFILE
#
# PROFILE is what the target does:
#   build  the library, the command and the report tool (make, make install)
#   demo   build, and python3 to run under the budget (make demo)
#   bench  build, the peer allocators and the real programs (make bench)
#   check  everything the suites use (make check)
#   macos  build, and what builds and checks the macOS port without a Mac
#          (make check-macos MACOS_SDK=DIR; not part of check)
#
# --check prints one line naming the missing packages and the command that
# installs them, and fails.  --install (the default) installs them with apt-get
# when run as root (or with a password-less sudo), else fails with the same one
# line.  MEMBUDGET_NO_APT=1 turns --install into --check.  Every probe is a file
# or a command, so the answer costs no dpkg query; MB_DEPS_ROOT (for the tests)
# is put before every file probe and hides every command probe, as on a machine
# where nothing is installed.
set -euo pipefail

mode=install
case "${1:-}" in
    --install) mode=install; shift ;;
    --check) mode=check; shift ;;
esac
profile=${1:-check}
[ "${MEMBUDGET_NO_APT:-0}" = 1 ] && mode=check

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
lib=/usr/lib/$multiarch

# "package probe": a probe is cmd:NAME (on PATH) or a file that the package
# installs.
build=(
    "gcc              cmd:gcc"
    "make             cmd:make"
    "binutils         cmd:objcopy"
    "libunwind-dev    /usr/include/$multiarch/libunwind.h"
    "libdw-dev        /usr/include/elfutils/libdwfl.h"
    "libjansson-dev   /usr/include/jansson.h"
    "libjemalloc-dev  /usr/include/jemalloc/jemalloc.h"
    "libjemalloc-dev  $lib/libjemalloc_pic.a"
)
demo=("${build[@]}" "python3 cmd:python3")
programs=(
    "python3          cmd:python3"
    "sqlite3          cmd:sqlite3"
    "perl             cmd:perl"
    "git              cmd:git"
    "default-jdk-headless cmd:javac"
    "nodejs           cmd:node"
    "g++              cmd:g++"
)
peers=(
    "libjemalloc2     $lib/libjemalloc.so.2"
    "libmimalloc2.0   $lib/libmimalloc.so.2"
    "libtcmalloc-minimal4 $lib/libtcmalloc_minimal.so.4"
)
bench=("${build[@]}" "${programs[@]}" "${peers[@]}")
check=(
    "${build[@]}" "${programs[@]}" "${peers[@]}"
    "clang            cmd:clang"
    "libclang-rt-14-dev /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
    "chromium         cmd:chromium"
    "libpython3.11-testsuite /usr/lib/python3.11/test/test_dict.py"
    "valgrind         cmd:valgrind"
    "coreutils        cmd:timeout"
    "tmux             cmd:tmux"
    "pkgconf          cmd:pkg-config"
    "groff-base       cmd:groff"
    "util-linux       cmd:setpriv"
    "python3-prometheus-client /usr/lib/python3/dist-packages/prometheus_client/parser.py"
    "python3.11-dbg   /usr/bin/python3.11d"
    "dwz              cmd:dwz"
    "gdb              cmd:gdb"
)
macos=(
    "${build[@]}"
    "clang            cmd:clang"
    "lld              /usr/bin/ld.lld"
    "llvm             /usr/bin/llvm-nm"
    "python3-yaml     /usr/lib/python3/dist-packages/yaml/__init__.py"
)
case "$profile" in
    build) needs=("${build[@]}") ;;
    macos) needs=("${macos[@]}") ;;
    demo) needs=("${demo[@]}") ;;
    bench) needs=("${bench[@]}") ;;
    check) needs=("${check[@]}") ;;
    *) echo "deps.sh: unknown profile '$profile' (build, demo, bench, check or macos)" >&2; exit 2 ;;
esac

present() {
    case "$1" in
        cmd:*) [ -z "${MB_DEPS_ROOT:-}" ] && command -v "${1#cmd:}" >/dev/null 2>&1 ;;
        *) [ -e "${MB_DEPS_ROOT:-}$1" ] ;;
    esac
}

missing=()
for line in "${needs[@]}"; do
    read -r package probe <<<"$line"
    present "$probe" && continue
    case " ${missing[*]:-} " in *" $package "*) ;; *) missing+=("$package") ;; esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
case "$profile" in build) what="building membudget" ;; *) what="make $profile" ;; esac

say_missing() {
    echo "membudget: $what needs Debian packages that are missing: ${missing[*]};" \
        "install them with: sudo apt-get install ${missing[*]} (or run make deps as root)" >&2
    exit 1
}
[ "$mode" = check ] && say_missing
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        say_missing
    fi
fi
command -v apt-get >/dev/null 2>&1 || say_missing
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" apt-get -y -qq -o Dpkg::Use-Pty=0)
# The package lists of a fresh machine may be empty or old: update once and
# try again when the first install fails.
if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: installed ${missing[*]}"
