#!/usr/bin/env bash
# Runs uqmerge on the built-in demo (docs/demo.md). Installs missing dependencies and builds
# first, then:
#   1. `uqmerge zoo` on 2 MPI ranks -> runs/demo/zoo (the synthetic world's datasets, a tokenizer,
#      a pretrained vision tower, a base and 10 instruction-tuned LLaVA candidates, trained here
#      on the CPU); skipped when runs/demo/zoo/zoo.json exists (delete the directory to rebuild);
#   2. `uqmerge run -c configs/demo.yaml` on 2 MPI ranks: every candidate's uncertainty, the
#      incremental merges in descending order, the lowest-uncertainty merge, the baselines
#      (merge-all, random-k x 5, ascending) and held-out accuracy -> runs/demo/linear;
#   3. the analysis table (analysis/report.py) and the merge-curve plot (analysis/plot.py).
# DEMO_METHOD=ties runs configs/demo-ties.yaml instead of the linear config.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
mkdir -p "$UQMERGE_BUILD"
# torch's CMake package warns about CUDA settings a CPU build does not use: keep its output in a
# log and show it only when configuring fails.
cmake -S . -B "$UQMERGE_BUILD" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" >"$UQMERGE_BUILD/configure.log" 2>&1 ||
  { cat "$UQMERGE_BUILD/configure.log"; exit 1; }
cmake --build "$UQMERGE_BUILD" -j"$(nproc)" --target uqmerge
bin=$(realpath "$UQMERGE_BUILD")/src/uqmerge
py=$UQMERGE_VENV/bin/python
zoo=runs/demo/zoo
config=configs/demo.yaml
out=runs/demo/linear
if [[ "${DEMO_METHOD:-linear}" == ties ]]; then config=configs/demo-ties.yaml; out=runs/demo/ties; fi
mpi=(mpirun -np 2 --oversubscribe)
start=$SECONDS
if [[ ! -f $zoo/zoo.json ]]; then
  echo "=== ${mpi[*]} uqmerge zoo --out $zoo   (the world, the tokenizer and 11 models, trained on this CPU)"
  "${mpi[@]}" "$bin" zoo --out "$zoo" --overwrite
else
  echo "=== $zoo/zoo.json exists: reusing the zoo (quality table: $zoo/quality.md)"
fi
zoo_s=$((SECONDS - start))
echo "=== ${mpi[*]} uqmerge run -c $config"
"${mpi[@]}" "$bin" run -c "$config" --overwrite --restart
run_s=$((SECONDS - start - zoo_s))
echo "=== analysis/report.py $out/results.h5"
"$py" analysis/report.py "$out/results.h5" --bootstrap 200
"$py" analysis/plot.py "$out/results.h5" -o "$out/merge_curve.png"
echo "[demo] zoo ${zoo_s} s, run ${run_s} s, total $((SECONDS - start)) s; merged model: $out/merged, numbers: $out/results.h5, plot: $out/merge_curve.png"
