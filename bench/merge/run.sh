#!/usr/bin/env bash
# Merge benchmark of issue #5: uqmerge merge beside mergekit-yaml on the same YAML and the same
# 4 LLaMA-shaped fp16 candidates of ~1.07 GB each (page cache warm), wall time and peak RSS
# (GNU time), plus this machine's memory copy bandwidth measured in the same run.
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
  read -r us ur <<<"$(measure "$build/src/uqmerge" merge "$m.yml" -o "uq_$m" --overwrite)"
  rm -rf "mk_$m"
  read -r ks kr <<<"$(HF_HUB_OFFLINE=1 measure "$UQMERGE_VENV/bin/mergekit-yaml" "$m.yml" "mk_$m" --no-copy-tokenizer --no-write-model-card)"
  echo "| $m | $us | $ks | $(awk -v a="$us" -v b="$ks" 'BEGIN{printf "%.2f", a/b}') | $ur | $kr | $(awk -v a="$ur" -v b="$kr" 'BEGIN{printf "%.2f", a/b}') |"
done
in_bytes=$(cat m[0-9]*/*.safetensors | wc -c)
echo
echo "linear: input bytes read $(awk -v b="$in_bytes" 'BEGIN{printf "%.2f", b/1e9}') GB"
