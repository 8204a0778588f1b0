#!/usr/bin/env bash
# Regenerates docs/demo.md: builds the zoo when absent (runs/demo/zoo), runs Algorithm 1 with
# linear (configs/demo.yaml) and TIES (configs/demo-ties.yaml) merging on 2 MPI ranks for each
# seed of DEMO_SEEDS (default "1234 1235 1236": other perturbation and random-k draws; the first
# is the configs' own), then analysis/demo_report.py writes the report and its plots (docs/demo/).
# A seed's run resumes from its saved state when its config is unchanged (DEMO_FRESH=1 starts
# every run over).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bin=$(realpath "$UQMERGE_BUILD")/src/uqmerge
mpi=(mpirun -np 2 --oversubscribe)
seeds=${DEMO_SEEDS:-1234 1235 1236}
[[ -f runs/demo/zoo/zoo.json ]] || "${mpi[@]}" "$bin" zoo --out runs/demo/zoo --overwrite
mkdir -p runs/demo/seeds
args=()
for method in linear ties; do
  config=configs/demo.yaml
  [[ $method == ties ]] && config=configs/demo-ties.yaml
  for seed in $seeds; do
    # The config with another seed and output directory, beside the runs (paths one level up).
    out=runs/demo/seeds/${method}_s$seed
    cfg=runs/demo/seeds/${method}_s$seed.yaml
    # The report's extra baselines: random-k at sizes 3 and 6, and the accuracy-guided oracle.
    sed -e "s|^seed: .*|seed: $seed|" -e "s|^output_dir: .*|output_dir: ${method}_s$seed|" -e "s|\.\./runs/demo/|../|g" \
      -e 's|^  random_k: {repeats: 5, k: 0}|  random_k: {repeats: 5, k: 0, sweep: [3, 6]}|' \
      -e 's|^  ascending: true$|  ascending: true\n  accuracy_guided: true|' "$config" >"$cfg"
    echo "=== $method, seed $seed"
    # Resumes from the run's state when it was made by the same config and uqmerge version.
    "${mpi[@]}" "$bin" run -c "$cfg" --overwrite ${DEMO_FRESH:+--restart}
    args+=(--run "$method=$out/results.h5")
  done
done
"$UQMERGE_VENV/bin/python" analysis/demo_report.py --zoo runs/demo/zoo "${args[@]}" --out docs/demo.md --figures docs/demo
