#!/usr/bin/env bash
# Scaling benchmark of issue #6: the cost of every stage of Algorithm 1 (start-up, validation,
# model load, vision + host image work, language-model forwards, merge steps, checkpoint write),
# measured at 1 and 2 MPI ranks; the constants of bench/scaling/model.py's cost model calibrated
# on separate 1-rank runs; the model's prediction of both Algorithm 1 runs beside what was
# measured; its projection for LLaVA-1.5-7B on 1, 4 and 16 nodes of 8 A100-80GB. docs/scaling.md
# explains every figure.
#
# Workload: bench/uq's generator (LLaMA 512 x 4 layers, CLIP 256 x 4 layers at 112 px = 64 image
# tokens, fp32, 70 MB per checkpoint, the reference images at their own sizes), 4 candidates,
# ROWS samples x J = 4, batch 4, 1 thread per rank. About 4 minutes on 2 cores; run it with
# nothing else on the machine (this project: `flock /tmp/uqmerge-cpu.lock bench/scaling/run.sh`).
# Needs a binary whose `run` resumes from its state (the second calibration run relies on it).
# Usage: bench/scaling/run.sh [BUILD_DIR] [WORK_DIR] [ROWS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/env.sh
repo=$(pwd)
build=$(realpath "${1:-$UQMERGE_BUILD}")
work=${2:-/tmp/uqmerge-bench-scaling}
rows=${3:-24}
uqm=$build/src/uqmerge
py=$UQMERGE_VENV/bin/python
export HF_HUB_OFFLINE=1 NO_COLOR=1
mkdir -p "$work"
work=$(realpath "$work")
[ -d "$work/tok" ] || "$py" tests/reference/make_tokenizer_cases.py "$work/tok" >/dev/null 2>&1
[ -d "$work/img" ] || "$py" tests/reference/make_image_cases.py "$work/img" >/dev/null 2>&1
case=$work/case_$rows
"$py" bench/uq/make_case.py "$case" "$work/tok/tok_legacy_false" "$work/img" 4 "$rows" 2>/dev/null
runs=$case/runs
rm -rf "$runs"
mkdir -p "$runs"
cd "$case"

config() {  # NAME MODELS EXTRA_UQ_KEYS
  {
    echo "output_dir: runs/$1"; echo "seed: 1"; echo "threads: 1"; echo "candidates:"
    for k in $(seq 0 $(($2 - 1))); do echo "  - model: cand_$k"; done
    echo "merge: {method: linear}"
    echo "uq: {perturbations: 4, batch_size: 4, $3datasets: [{name: Bench, path: data.tsv}]}"
  } >"scaling_$1.yaml"
}
timed() {  # NAME CMD... : wall clock in runs/NAME.wall, stderr in runs/NAME.err
  local name=$1
  shift
  local s e
  s=$(date +%s.%N)
  "$@" >"runs/$name.out" 2>"runs/$name.err" || { echo "FAILED: $* (see $runs/$name.err)" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$s $e" >"runs/$name.wall"
}
run_cfg() {  # NAME CONFIG RANKS SUBCOMMAND [ARGS...]: results.h5 kept as runs/NAME.h5 (mtime too)
  local name=$1 cfg=$2 ranks=$3
  shift 3
  timed "$name" mpirun -np "$ranks" "$uqm" "$@" -c "scaling_$cfg.yaml"
  cp -p "runs/$cfg/results.h5" "runs/$name.h5"
}

# Process start-up alone (headers of one checkpoint), three times.
for k in 1 2 3; do timed "start_$k" "$uqm" inspect cand_0; done
# Calibration (1 rank): Algorithm 1 on 2 candidates (the first candidate pays decoding, AugMix
# and the vision tower, the second and the merge only the language model; one merge step), the
# same run resumed from its state (no evaluation runs) with --save-all-steps, whose extra time is
# the step's merge + checkpoint write, and `uq` on the 2 with AugMix and attention dropout off.
# Algorithm 1 on 4 candidates at 1 and 2 ranks: the runs the model predicts. Everything twice,
# interleaved; measure.py keeps the faster of the two (a shared machine only ever adds time).
config calib_run 2 ""
config calib_bare 2 "attention_dropout: 0.0, image_perturbation: false, "
config alg1_r1 4 ""
config alg1_r2 4 ""
for rep in 1 2; do
  rm -rf runs/calib_run runs/calib_bare runs/alg1_r1 runs/alg1_r2
  mkdir -p runs/calib_run runs/calib_bare runs/alg1_r1 runs/alg1_r2  # run saves its state before creating output_dir
  run_cfg "calib_run_$rep" calib_run 1 run
  run_cfg "calib_run_resume_$rep" calib_run 1 run --overwrite --save-all-steps
  run_cfg "calib_bare_$rep" calib_bare 1 uq
  run_cfg "alg1_r1_$rep" alg1_r1 1 run
  run_cfg "alg1_r2_$rep" alg1_r2 2 run
done
# Memory copy bandwidth (read + write), the stand-in for an in-memory allgather on one node.
"$py" - >runs/memcpy.txt <<'PY'
import time, numpy as np
a = np.ones(1 << 27, dtype=np.uint8); b = np.empty_like(a)
best = 1e9
for _ in range(5):
    t = time.perf_counter(); np.copyto(b, a); best = min(best, time.perf_counter() - t)
print(f"{2 * a.nbytes / best / 1e9:.3f}")
PY
cd "$repo"
git_rev="$(git describe --always --dirty 2>/dev/null || echo unknown), binary $(date -r "$uqm" +%FT%T) $(sha256sum "$uqm" | cut -c1-12)"
"$py" bench/scaling/measure.py "$runs" --rows "$rows" --rev "$git_rev" --out "$runs/measured.json"
echo
"$py" bench/scaling/model.py check "$runs/measured.json"
echo
"$py" bench/scaling/model.py project "$runs/measured.json"
