#!/usr/bin/env bash
# End-to-end `sovereign check` on generated fabrics of 1k, 10k and 100k
# declarations: wall time (best of 5) and peak memory, against the issue's
# budgets (10k <= 100 ms, 100k <= 1 s, 100k/10k <= 12x, peak <= 20x input).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p sovereign -p fabric-gen
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '| declarations | input | best wall time | peak RSS | RSS / input |\n| --- | --- | --- | --- | --- |\n'
for n in 1000 10000 100000; do
    ./target/release/fabric-gen "$n" > "$dir/f$n.kdl"
    bytes=$(stat -c %s "$dir/f$n.kdl")
    best=""
    for _ in 1 2 3 4 5; do
        start=$(date +%s%N)
        ./target/release/sovereign check "$dir/f$n.kdl" 2>/dev/null
        end=$(date +%s%N)
        ms=$(( (end - start) / 1000000 ))
        if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
    done
    rss=$( { /usr/bin/time -f '%M' ./target/release/sovereign check "$dir/f$n.kdl" 2>&1 >/dev/null; } | tail -1)
    printf '| %s | %s KB | %s ms | %s KB | %s |\n' "$n" $((bytes / 1024)) "$best" "$rss" "$(awk "BEGIN { printf \"%.1f\", $rss * 1024 / $bytes }")"
done
