#!/usr/bin/env bash
# UQ-stage benchmark of issue #4: vision passes for 1 vs 3 models (the frozen tower's features
# are computed once per run), 1 vs 2 MPI ranks (1 thread each, and 1 rank x 2 threads for
# context), and evaluations ((sample, j) forwards) per second.
# Usage: bench/uq/run.sh [BUILD_DIR] [WORK_DIR] [ROWS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
build=${1:-$UQMERGE_BUILD}
work=${2:-/tmp/uqmerge-bench-uq}
rows=${3:-32}
py=$UQMERGE_VENV/bin/python
export HF_HUB_OFFLINE=1
mkdir -p "$work"
[ -d "$work/tok" ] || "$py" tests/reference/make_tokenizer_cases.py "$work/tok" >/dev/null 2>&1
[ -d "$work/img" ] || "$py" tests/reference/make_image_cases.py "$work/img" >/dev/null 2>&1
"$py" bench/uq/make_case.py "$work/case" "$work/tok/tok_legacy_false" "$work/img" 3 "$rows" 2>/dev/null
config() {  # NAME MODELS THREADS
  {
    echo "output_dir: $1"; echo "seed: 1"; echo "threads: $3"; echo "candidates:"
    for k in $(seq 0 $(($2 - 1))); do echo "  - model: cand_$k"; done
    echo "uq: {perturbations: 4, batch_size: 4, datasets: [{name: Bench, path: data.tsv}]}"
  } >"$work/case/$1.yaml"
}
run() {  # NAME MODELS THREADS RANKS
  config "$1" "$2" "$3"
  (cd "$work/case" && mpirun -np "$4" "$(realpath "$OLDPWD/$build/src/uqmerge")" uq -c "$1.yaml" >/dev/null 2>&1)
  "$py" - "$work/case/$1/results.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
ms = [f["uq"][k] for k in sorted(f["uq"])]
ev = sum(int(m.attrs["evaluations"]) for m in ms)
vp = [int(m.attrs["vision_passes"]) for m in ms]
t = float(f["timing"].attrs["total_seconds"])
print(f"{t:.2f} {ev} {ev / t:.1f} {'+'.join(map(str, vp))}")
PY
}
echo "workload: $rows samples x J=4, LLaMA 512 x 4 layers + CLIP 256 x 4 layers (112 px), batch 4"
echo
echo "| run | models | ranks x threads | seconds | evaluations | evaluations/s | vision passes per model |"
echo "|---|---|---|---|---|---|---|"
declare -A T
for spec in "m1_r1:1:1:1" "m3_r1:3:1:1" "m3_r2:3:1:2" "m3_r1t2:3:2:1"; do
  IFS=: read -r name models threads ranks <<<"$spec"
  read -r s ev rate vp <<<"$(run "$name" "$models" "$threads" "$ranks")"
  T[$name]=$s
  echo "| $name | $models | $ranks x $threads | $s | $ev | $rate | $vp |"
done
echo
echo "2 ranks vs 1 rank (1 thread each, 3 models): $(awk -v a="${T[m3_r1]}" -v b="${T[m3_r2]}" 'BEGIN{printf "%.2f", a/b}')x"
echo "2 ranks x 1 thread vs 1 rank x 2 threads: $(awk -v a="${T[m3_r1t2]}" -v b="${T[m3_r2]}" 'BEGIN{printf "%.2f", a/b}')x"
