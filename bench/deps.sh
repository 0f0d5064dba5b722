#!/usr/bin/env bash
# Installs the Debian packages of the allocators the benchmark compares, only those
# that are missing; runs apt-get update first only when the package lists are empty
# or an install from the current lists fails.  Anything missing after this is
# reported by bench/run.py and skipped.
set -u
pkgs=(libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4)
missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)
    [ "${status:0:2}" = "ii" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "bench: no apt-get; not installing ${missing[*]} (those allocators are skipped)" >&2
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "bench: not root; not installing ${missing[*]} (those allocators are skipped)" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" apt-get -y -q -o Dpkg::Use-Pty=0)
echo "bench: installing ${missing[*]}"
if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
    "${apt[@]}" update >/dev/null
fi
if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null; then
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null ||
        echo "bench: could not install ${missing[*]} (those allocators are skipped)" >&2
fi
exit 0
