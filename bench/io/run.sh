#!/usr/bin/env bash
# Checkpoint I/O benchmarks of issue #2, each beside its reference, printed as a markdown table:
#  1. opening a sharded checkpoint reads headers only: uqmerge vs Python safetensors, 100 MB
#     vs 2 GB checkpoints (time must not grow with size);
#  2. touching every tensor (sum of all elements) vs `cat shards > /dev/null`, page cache warm,
#     in the same run; RSS growth with and without releasing pages after each tensor.
# Usage: bench/io/run.sh [BUILD_DIR] [WORK_DIR]   (needs ~2.2 GB free in WORK_DIR)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
build=${1:-$UQMERGE_BUILD}
work=${2:-/tmp/uqmerge-bench-io}
bin=$build/bench/uqmerge_bench_io
py=$UQMERGE_VENV/bin/python
mkdir -p "$work"
get() { awk -v k="$1" '$1 == k { print $2 }'; }

for mb in 100 2048; do
  [ -d "$work/ck$mb" ] || "$bin" make "$work/ck$mb" "$mb" >/dev/null
done

echo "| checkpoint | shards | tensors | uqmerge open (median ms) | Python safetensors open (ms) | ratio (Python / uqmerge) | pages touched per open |"
echo "|---|---|---|---|---|---|---|"
for mb in 100 2048; do
  d=$work/ck$mb
  cat "$d"/*.safetensors >/dev/null  # warm
  u=$("$bin" open "$d" 200)
  r=$("$py" bench/io/reference_open.py "$d" 50)
  um=$(get open_median_ms <<<"$u"); rm_=$(get open_median_ms <<<"$r")
  echo "| $(du -sh "$d" | cut -f1) | $(ls "$d"/*.safetensors | wc -l) | $(get tensors <<<"$u") | $um | $rm_ | $(awk -v a="$rm_" -v b="$um" 'BEGIN{printf "%.1f", a/b}') | $(get pages_touched_per_open <<<"$u") |"
done
echo

d=$work/ck2048
echo "| run (2 GB, page cache warm) | seconds | GB/s | ratio to cat | RSS growth (MB) | peak RSS growth (MB) |"
echo "|---|---|---|---|---|---|"
for i in 1 2 3; do
  cat "$d"/*.safetensors >/dev/null
  s=$(date +%s.%N); cat "$d"/*.safetensors >/dev/null; e=$(date +%s.%N)
  bytes=$(cat "$d"/*.safetensors | wc -c)
  cat_gbps=$(awk -v b="$bytes" -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", b/(e-s)/1e9}')
  t=$("$bin" touch "$d" release)
  k=$("$bin" touch "$d")
  echo "| cat > /dev/null (run $i) | $(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}') | $cat_gbps | 1.00 | | |"
  for row in "touch+release:$t" "touch (keep pages):$k"; do
    name=${row%%:*}; out=${row#*:}
    g=$(get gbps <<<"$out")
    echo "| uqmerge $name (run $i) | $(get seconds <<<"$out") | $g | $(awk -v a="$g" -v b="$cat_gbps" 'BEGIN{printf "%.2f", a/b}') | $(get rss_growth_mb <<<"$out") | $(get rss_peak_growth_mb <<<"$out") |"
  done
done
