#!/usr/bin/env bash
# Installs what `make check` needs on Debian 12, only what is missing, without
# prompting.  Each line below: a Debian package and how to tell it is present
# (a command on PATH, or the package itself).  Set MEMBUDGET_NO_APT=1 to only
# report what is missing.
set -euo pipefail

needs=(
    "gcc          cmd:gcc"
    "g++          cmd:g++"
    "make         cmd:make"
    "clang        cmd:clang"
    "libclang-rt-14-dev pkg:libclang-rt-14-dev"
    "python3      cmd:python3"
    "sqlite3      cmd:sqlite3"
    "perl         cmd:perl"
    "git          cmd:git"
    "default-jdk-headless cmd:javac"
    "nodejs       cmd:node"
    "binutils     cmd:objdump"
    "libjemalloc2 file:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    "libjemalloc-dev pkg:libjemalloc-dev"
    "libmimalloc2.0 file:/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"
    "libunwind-dev pkg:libunwind-dev"
    "libdw-dev    pkg:libdw-dev"
    "libjansson-dev pkg:libjansson-dev"
    "chromium     cmd:chromium"
    "libpython3.11-testsuite file:/usr/lib/python3.11/test/test_dict.py"
    "valgrind     cmd:valgrind"
    "coreutils    cmd:timeout"
    "tmux         cmd:tmux"
    "pkgconf      cmd:pkg-config"
    "groff-base   cmd:groff"
)

missing=()
for line in "${needs[@]}"; do
    read -r package probe <<<"$line"
    case "$probe" in
        cmd:*) command -v "${probe#cmd:}" >/dev/null 2>&1 && continue ;;
        pkg:*) dpkg-query -W -f='${Status}' "${probe#pkg:}" 2>/dev/null | grep -q 'install ok installed' && continue ;;
        file:*) [ -e "${probe#file:}" ] && continue ;;
    esac
    missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: everything needed is installed"
    exit 0
fi
echo "deps: missing: ${missing[*]}"
if [ "${MEMBUDGET_NO_APT:-0}" = 1 ]; then
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
