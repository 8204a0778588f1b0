#!/usr/bin/env bash
# Regenerates docs/demo.md: builds the zoo when absent (runs/demo/zoo), runs Algorithm 1 with
# linear (configs/demo.yaml) and TIES (configs/demo-ties.yaml) merging on 2 MPI ranks, then
# analysis/demo_report.py writes the report and its plots (docs/demo/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bin=$(realpath "$UQMERGE_BUILD")/src/uqmerge
mpi=(mpirun -np 2 --oversubscribe)
[[ -f runs/demo/zoo/zoo.json ]] || "${mpi[@]}" "$bin" zoo --out runs/demo/zoo --overwrite
"${mpi[@]}" "$bin" run -c configs/demo.yaml --overwrite --restart
"${mpi[@]}" "$bin" run -c configs/demo-ties.yaml --overwrite --restart
"$UQMERGE_VENV/bin/python" analysis/demo_report.py --zoo runs/demo/zoo --run linear=runs/demo/linear/results.h5 \
  --run ties=runs/demo/ties/results.h5 --out docs/demo.md --figures docs/demo
