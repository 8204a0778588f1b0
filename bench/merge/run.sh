#!/usr/bin/env bash
# Merge benchmark of issue #5: uqmerge merge beside mergekit-yaml on the same YAML and the same
# 4 LLaMA-shaped fp16 candidates of ~1.07 GB each (page cache warm), wall time and peak RSS
# (GNU time), plus this machine's memory copy bandwidth measured in the same run, and the
# linear merge's bytes moved per second in one process (bench_merge.cpp).
# Usage: bench/merge/run.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
build=$(realpath "${1:-$UQMERGE_BUILD}")
work=${2:-/tmp/uqmerge-bench-merge}
py=$UQMERGE_VENV/bin/python
mkdir -p "$work"
"$py" bench/merge/make_models.py "$work" 4 2>/dev/null
cd "$work"
cat base/*.safetensors m*/*.safetensors >/dev/null  # warm
members='  - model: m0
    parameters: {weight: 0.25, density: 0.5}
  - model: m1
    parameters: {weight: 0.25, density: 0.5}
  - model: m2
    parameters: {weight: 0.25, density: 0.5}
  - model: m3
    parameters: {weight: 0.25, density: 0.5}'
printf 'merge_method: linear\nmodels:\n%s\ndtype: float16\n' "$(sed 's/, density: 0.5//' <<<"$members")" >linear.yml
for m in ties dare_ties della; do
  printf 'merge_method: %s\nbase_model: base\nmodels:\n%s\ndtype: float16\n' "$m" "$members" >"$m.yml"
done
sed -i 's/density: 0.5}/density: 0.5, epsilon: 0.1}/' della.yml
measure() {  # prints "seconds peak_rss_mb"
  /usr/bin/time -f "%e %M" -o t.txt "$@" >/dev/null 2>&1 || { echo "fail fail"; return; }
  awk '{printf "%s %.0f", $1, $2 / 1024}' t.txt
}
bw=$("$py" - <<'PY'
import time, numpy as np
a = np.ones(1 << 28, dtype=np.uint8); b = np.empty_like(a)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); np.copyto(b, a); best = min(best, time.perf_counter() - t)
print(f"{2 * a.nbytes / best / 1e9:.2f}")
PY
)
echo "4 candidates of $(du -sh m0 | cut -f1) (fp16); memory copy bandwidth (read + write) $bw GB/s"
echo
echo "| method | uqmerge s | mergekit s | time ratio (uqmerge / mergekit) | uqmerge peak RSS MB | mergekit peak RSS MB | RSS ratio |"
echo "|---|---|---|---|---|---|---|"
for m in ${METHODS:-linear ties dare_ties della}; do
  rm -rf "uq_$m"  # as for mergekit below: deleting the previous output is not part of the merge
  read -r us ur <<<"$(measure "$build/src/uqmerge" merge "$m.yml" -o "uq_$m")"
  rm -rf "mk_$m"
  read -r ks kr <<<"$(HF_HUB_OFFLINE=1 measure "$UQMERGE_VENV/bin/mergekit-yaml" "$m.yml" "mk_$m" --no-copy-tokenizer --no-write-model-card)"
  echo "| $m | $us | $ks | $(awk -v a="$us" -v b="$ks" 'BEGIN{printf "%.2f", a/b}') | $ur | $kr | $(awk -v a="$ur" -v b="$kr" 'BEGIN{printf "%.2f", a/b}') |"
done
in_bytes=$(cat m[0-9]*/*.safetensors | wc -c)
out_bytes=$(cat uq_linear/*.safetensors 2>/dev/null | wc -c)
echo
echo "linear, uqmerge merge (whole command, process start to exit): $(awk -v a="$in_bytes" -v b="$out_bytes" 'BEGIN{printf "%.2f", (a+b)/1e9}') GB moved (inputs read + output written)"
# The linear merge's data movement inside one process, as `uqmerge run` merges between
# evaluations (bench_merge.cpp): inputs from the page cache (pread) or resident in memory,
# against memcpy and page-cache read bandwidth measured in the same process.
threads=$(nproc)
"$build/bench/uqmerge_bench_merge" "$threads" 10 m0 m1 m2 m3 >bench_merge.txt
kv() { awk -v k="$1" '$1 == k { print $2 }' bench_merge.txt; }
echo
echo "linear merge in memory ($(kv kernel_path), $threads threads, $(kv mapped_gb_moved) GB moved per merge, best of 10):"
echo
echo "| inputs | seconds | GB/s moved | vs memcpy (${threads} threads, $(kv copy_gbs_threads) GB/s) | vs page-cache read ($(kv pagecache_read_gbs) GB/s) |"
echo "|---|---|---|---|---|"
for mode in resident mapped; do
  echo "| $mode | $(kv ${mode}_seconds) | $(kv ${mode}_gbs) | $(awk -v a="$(kv ${mode}_gbs)" -v b="$(kv copy_gbs_threads)" 'BEGIN{printf "%.0f %%", 100*a/b}') | $(awk -v a="$(kv ${mode}_gbs)" -v b="$(kv pagecache_read_gbs)" 'BEGIN{printf "%.0f %%", 100*a/b}') |"
done
echo "(memcpy on 1 thread: $(kv copy_gbs_1thread) GB/s)"
