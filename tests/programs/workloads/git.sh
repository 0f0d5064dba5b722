#!/usr/bin/env bash
# git workload: init a repository in WORKDIR, commit a few thousand files over many
# commits, read the history back (log with patches and stats, blame, diff), then gc
# (repack with delta search, prune) and fsck. Fixed names, dates and config make
# every object hash deterministic; nothing that depends on pack layout or thread
# scheduling (pack sizes) is printed.
# Usage: git.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: git.sh WORKDIR}
cd "$workdir"
export LC_ALL=C TZ=UTC HOME=$workdir
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME='Ada Tester' GIT_AUTHOR_EMAIL='ada@example.org'
export GIT_COMMITTER_NAME='Ada Tester' GIT_COMMITTER_EMAIL='ada@example.org'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES

git init -q -b main repo
cd repo
git config gc.auto 0            # no background gc between commits
git config maintenance.auto false
git config core.pager cat
git config advice.detachedHead false

ndirs=40 nfiles=60 ncommits=30
# Commit 0: ndirs*nfiles files of ~40 lines each.
awk -v nd="$ndirs" -v nf="$nfiles" 'BEGIN {
    for (d = 0; d < nd; d++) {
        system("mkdir -p src/d" d)
        for (f = 0; f < nf; f++) {
            path = sprintf("src/d%d/f%03d.txt", d, f)
            for (l = 0; l < 40; l++)
                printf "line %d of file %d/%d: %s\n", l, d, f, substr("abcdefghijklmnopqrstuvwxyz", 1 + (l * f + d) % 26) > path
            close(path)
        }
    }
}'
export GIT_AUTHOR_DATE='1600000000 +0000' GIT_COMMITTER_DATE='1600000000 +0000'
git add -A
git commit -q -m 'initial import'

# Later commits: each rewrites a deterministic subset of files and adds a few.
for ((c = 1; c <= ncommits; c++)); do
    awk -v nd="$ndirs" -v nf="$nfiles" -v c="$c" 'BEGIN {
        for (k = 0; k < 80; k++) {
            d = (c * 7 + k * 3) % nd; f = (c * 13 + k * 11) % nf
            path = sprintf("src/d%d/f%03d.txt", d, f)
            for (l = 0; l < 40 + c; l++)
                printf "line %d of file %d/%d: %s rev %d\n", l, d, f, (l % (c + 2) == 0 ? "changed" : "same"), (l % 3 ? c : 0) > path
            close(path)
        }
        for (k = 0; k < 10; k++) {
            path = sprintf("src/d%d/new-%02d-%02d.txt", (c + k) % nd, c, k)
            for (l = 0; l < 20; l++) printf "new file %d %d line %d\n", c, k, l > path
            close(path)
        }
    }'
    if ((c % 10 == 0)); then git rm -q "src/d$((c % ndirs))/f00$((c % 10)).txt"; fi
    ts=$((1600000000 + c * 3600))
    GIT_AUTHOR_DATE="$ts +0000" GIT_COMMITTER_DATE="$ts +0000" git add -A
    GIT_AUTHOR_DATE="$ts +0000" GIT_COMMITTER_DATE="$ts +0000" git commit -q -m "change $c"
done
GIT_COMMITTER_DATE='1600200000 +0000' git tag -a -m 'release' v1.0 HEAD~5

echo "head $(git rev-parse HEAD)"
echo "tree $(git rev-parse 'HEAD^{tree}')"
echo "commits $(git rev-list --count HEAD) files $(git ls-files | wc -l)"
echo "log $(git log --format='%H %an %ad %s' --date=raw | sha256sum | cut -d' ' -f1)"
echo "log-patch $(git log -p --stat --format='%H %s' | sha256sum | cut -d' ' -f1)"
echo "diff $(git diff --stat v1.0 HEAD | tail -n 1)"
echo "blame $(git blame --porcelain HEAD -- src/d7/f013.txt | sha256sum | cut -d' ' -f1)"
echo "grep $(git grep -c changed HEAD -- src | wc -l)"

git gc -q --prune=now
git fsck --full --strict --no-progress --no-dangling
echo "after-gc loose $(git count-objects -v | sed -n 's/^count: //p') in-pack $(git count-objects -v | sed -n 's/^in-pack: //p')"
echo "verify $(git rev-list --objects --all | sort | sha256sum | cut -d' ' -f1)"
echo "describe $(git describe --tags HEAD)"
