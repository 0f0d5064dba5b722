#!/usr/bin/env bash
# Sums the closing "N passed, N failed[, N skipped]" line of every result file in
# the directory given, prints one line per suite and the total as the last line.
set -u
dir=${1:?usage: summary.sh RESULTS_DIR}
total_p=0; total_f=0; total_s=0; missing=0
for f in "$dir"/*.txt; do
    [ -e "$f" ] || continue
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$f" | tail -n 1)
    name=$(basename "$f" .txt)
    if [ -z "$line" ]; then
        echo "suite $name: no result line (it crashed or did not run)"
        missing=$((missing + 1))
        continue
    fi
    p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
    fl=$(sed -E 's/.*\b([0-9]+) failed.*/\1/' <<<"$line")
    s=0; grep -q skipped <<<"$line" && s=$(sed -E 's/.*\b([0-9]+) skipped.*/\1/' <<<"$line")
    printf 'suite %-24s %5d passed, %3d failed, %3d skipped\n' "$name" "$p" "$fl" "$s"
    total_p=$((total_p + p)); total_f=$((total_f + fl)); total_s=$((total_s + s))
done
total_f=$((total_f + missing))
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
