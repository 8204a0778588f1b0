#!/usr/bin/env bash
# uqmerge uq on bad input: each case must fail with exit 2 and one ERROR line naming the file
# (or model, dataset and row) and the problem, and leave no results.h5 behind.
#   test_uq_bad_input.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON
set -u
bin=$1
case_dir=$2
py=$3
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$(dirname "$0")/../lib/testlib.sh"
testlib_work
uq() { (cd "$work/c" && "$bin" uq -c config.yaml); }  # uq on $work/c/config.yaml
refused=(--exit 2 --one-error --nothing-complete "$work/c/run/results.h5")
fresh() {
  rm -rf "$work/c"
  cp -r "$case_dir" "$work/c"
  rm -rf "$work/c"/run_np*
  sed 's/output_dir: run_np1/output_dir: run/' "$work/c/config_np1.yaml" >"$work/c/config.yaml"
}

fresh
"$py" - "$work/c/cand_b/model.safetensors" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1])
sd["language_model.lm_head.weight"][:] = float("nan")
save_file(sd, sys.argv[1], metadata={"format": "pt"})
PY
expect nan-logits "${refused[@]}" --err "cand_b: non-finite option logits on dataset 'Shapes' row '0'" -- uq

fresh
printf 'index\tquestion\thint\tA\tB\tC\tD\tanswer\timage_path\n1\tQ?\t\ta\tb\tc\td\tA\tmissing.png\n' >"$work/c/data.tsv"
expect missing-image-file "${refused[@]}" --err "data.tsv:2 \(row '1'\): image file .*missing.png is missing or unreadable" -- uq

fresh
printf 'index\tquestion\thint\tA\tB\tC\tD\tanswer\timage\n1\tQ?\t\ta\tb\tc\td\tA\t%s\n' "$(head -c 120 /dev/zero | tr '\0' '!')" >"$work/c/data.tsv"
expect undecodable-base64 "${refused[@]}" --err "data.tsv:2 \(row '1'\): image is not valid base64" -- uq

fresh
printf 'index\tquestion\thint\tA\tB\tanswer\timage\n1\tQ?\t\ta\t\t\tx.png\n' >"$work/c/data.tsv"
expect one-option "${refused[@]}" --err "data.tsv:2: row '1' has 1 options; at least 2 are needed" -- uq

fresh
sed -i 's/perturbations: 3/perturbations: 0/' "$work/c/config.yaml"
expect bad-config "${refused[@]}" --err "config.yaml: uq.perturbations: must be in 1..1024" -- uq

fresh
sed -i 's/  batch_size: 2/  batch_size: 2\n  augmix: {chain_depth: 11}/' "$work/c/config.yaml"
expect augmix-depth "${refused[@]}" --err "config.yaml: uq.augmix.chain_depth: must be at most 10" -- uq

fresh
sed -i 's/  batch_size: 2/  batch_size: 2\n  colour: red/' "$work/c/config.yaml"
expect unknown-key "${refused[@]}" --err "config.yaml: uq.colour: unknown key \(valid: " -- uq

fresh
rm "$work/c/cand_b/tokenizer.model"
expect missing-tokenizer "${refused[@]}" --err "cand_b/tokenizer.model: missing" -- uq

fresh
rm "$work/c/cand_a/config.json"
expect missing-config "${refused[@]}" --err "candidate 'cand_a': .*cand_a/config.json: missing" -- uq

# Run-only keys are validated by every command that reads the config.
fresh
printf 'baselines: {accuracy_guided: true}\n' >>"$work/c/config.yaml"
expect accuracy-guided-without-labels "${refused[@]}" --err "config.yaml: baselines.accuracy_guided: needs labelled data: add evaluation.datasets" -- uq
fresh
printf 'baselines: {random_k: {repeats: 3, k: 9}}\n' >>"$work/c/config.yaml"
expect random-k-too-large "${refused[@]}" --err "config.yaml: baselines.random_k.k: must be in 0..2" -- uq
# A GPU demanded where there is none (this CPU build or machine): refused, not silently on the CPU.
fresh
printf 'device: cuda\n' >>"$work/c/config.yaml"
expect gpu-absent "${refused[@]}" --err "device: cuda requested but .*(no GPU support|no GPU is visible).*set device: auto" -- uq
# device: auto falls back to the CPU with a warning and completes.
fresh
printf 'device: auto\n' >>"$work/c/config.yaml"
expect gpu-auto-fallback --err "computing on the CPU" -- uq
expect "gpu-auto-fallback: results.h5 written" -- test -e "$work/c/run/results.h5"
# backend: NCCL demanded without a GPU (or in a build without NCCL): refused naming what is
# missing, never a silent MPI run; auto (the default) is MPI on the CPU.
fresh
printf 'backend: nccl\n' >>"$work/c/config.yaml"
expect nccl-without-gpu "${refused[@]}" --err "config.yaml: backend: nccl, but (this uqmerge was built without NCCL|no GPU is visible).*or use backend: auto or mpi" -- uq
fresh
printf 'backend: gloo\n' >>"$work/c/config.yaml"
expect backend-unknown "${refused[@]}" --err "config.yaml: backend: 'gloo' \(valid: auto, mpi, nccl\)" -- uq
fresh
printf 'watchdog: {stale_s: 1}\n' >>"$work/c/config.yaml"
expect watchdog-stale-too-short "${refused[@]}" --err "config.yaml: watchdog.stale_s: must be 0 \(off\) or at least 3 x watchdog.heartbeat_s" -- uq
fresh
printf 'watchdog: {timeout: 5}\n' >>"$work/c/config.yaml"
expect watchdog-unknown-key "${refused[@]}" --err "config.yaml: watchdog.timeout: unknown key \(valid: heartbeat_s, stale_s, timeout_s\)" -- uq
fresh
expect backend-auto-default --err "backend mpi on cpu; watchdog: heartbeat 2 s, stale 30 s, collective timeout 1800 s" -- uq
expect "backend-auto-default: no heartbeat files left" -- test ! -e "$work/c/run/.uqmerge-heartbeat"
testlib_summary
