#!/usr/bin/env bash
# Benchmark: `gantry check` on a generated stack of N services (default 10000,
# about 50,000 dependency edges). Builds gantry in release, generates the file
# into a temporary directory, times several runs and prints the median.
#
#   bench/check/run.sh                 # 10,000 services, 15 runs
#   N=20000 RUNS=5 bench/check/run.sh
#
# Uses hyperfine when installed, else a loop timed with `date +%s%N`.
set -euo pipefail

N="${N:-10000}"
RUNS="${RUNS:-15}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

cargo build --release -p gantry-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release/gantry"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
file="$tmp/gantry.toml"
stats="$(python3 bench/check/gen.py --services "$N" -o "$file" 2>&1)"
edges="$(sed -n 's/.*edges=\([0-9]*\).*/\1/p' <<<"$stats")"
bytes="$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$stats")"

# The file must be valid, or we would be timing the error path.
if ! summary="$("$bin" check -f "$file" 2>&1)"; then
    echo "$summary" | tail -20 >&2
    echo "bench: the generated file does not pass gantry check" >&2
    exit 1
fi
echo "$summary"

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 2 --runs "$RUNS" --export-json "$tmp/hyperfine.json" \
        "$bin check -f $file" >&2
    median_ms="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % (r["median"]*1000))' "$tmp/hyperfine.json")"
    tool="hyperfine"
else
    "$bin" check -f "$file" >/dev/null 2>&1 # warm the page cache
    times=()
    for _ in $(seq "$RUNS"); do
        start=$(date +%s%N)
        "$bin" check -f "$file" >/dev/null 2>&1
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    median_us="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}')"
    median_ms="$(awk -v us="$median_us" 'BEGIN {printf "%.1f", us/1000}')"
    min_ms="$(printf '%s\n' "${times[@]}" | sort -n | head -1 | awk '{printf "%.1f", $1/1000}')"
    max_ms="$(printf '%s\n' "${times[@]}" | sort -n | tail -1 | awk '{printf "%.1f", $1/1000}')"
    tool="date loop, min $min_ms ms, max $max_ms ms"
fi

echo "gantry check: $N services, $edges edges, $bytes bytes: median $median_ms ms over $RUNS runs ($tool)"
