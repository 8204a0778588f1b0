#!/usr/bin/env bash
# uqmerge merge on bad input: exit 2, one ERROR line naming the file/key and the problem, and
# no output directory that looks complete.   test_merge_bad_input.sh UQMERGE_BINARY PARITY_WORK_DIR
set -u
bin=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$(dirname "$0")/../lib/testlib.sh"
testlib_work
cp -r "$src/base" "$src/m0" "$src/m1" "$src/other" "$work/"
merge() {  # YAML [extra args]: uqmerge merge on that YAML, into $work/out
  printf '%s\n' "$1" >"$work/c.yml"
  shift
  (cd "$work" && "$bin" merge c.yml -o out "$@")
}
refused=(--exit 2 --one-line --nothing-complete "$work/out")
M2='models:
  - model: m0
    parameters: {weight: 1.0}
  - model: m1
    parameters: {weight: 1.0}'
expect no-base "${refused[@]}" --err "base_model: 'ties' works on task vectors and needs a base_model" -- merge "merge_method: ties
$M2"
expect unknown-method "${refused[@]}" --err "merge_method: unknown 'slurp' \(valid: linear, task_arithmetic, ties" -- merge "merge_method: slurp
$M2"
expect density-range "${refused[@]}" --err "density 1.500000 outside \[0, 1\]" -- merge "merge_method: ties
base_model: base
models:
  - model: m0
    parameters: {weight: 1.0, density: 1.5}
  - model: m1
    parameters: {weight: 1.0}"
expect one-model "${refused[@]}" --err "a merge needs at least 2 inputs" -- merge "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}"
expect duplicate "${refused[@]}" --err "is listed twice" -- merge "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}
  - model: m0
    parameters: {weight: 1.0}"
expect unknown-param "${refused[@]}" --err "parameters.colour: not a parameter of linear" -- merge "merge_method: linear
parameters: {colour: 1}
$M2"
expect missing-weight "${refused[@]}" --err "parameter 'weight' is required by linear" -- merge "merge_method: linear
models:
  - model: m0
  - model: m1"
# A valid candidate of another shape (intermediate size 96, not 128).
expect other-architecture "${refused[@]}" --err "other/model.safetensors: tensor 'model.layers.0.mlp.[a-z_]+.weight' has shape \[[0-9, ]+\] but \[[0-9, ]+\] in .*m0/model.safetensors" -- merge "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}
  - model: other
    parameters: {weight: 1.0}"
mkdir -p "$work/out" && touch "$work/out/keep"
expect output-exists "${refused[@]}" --err "out: output directory exists \(pass --overwrite" -- merge "merge_method: linear
$M2"
expect "output-exists: the existing directory is untouched" -- test -e "$work/out/keep"
rm -rf "$work/out"
# mergekit YAML in full: filters, gradients and the two-model methods, refused before any compute
expect filter-matches-nothing "${refused[@]}" --err "c.yml: model '.*m0': parameters.weight: filter 'vision_tower' matches no tensor of .*m0" -- merge "merge_method: linear
models:
  - model: m0
    parameters: {weight: [{filter: vision_tower, value: 0.3}, {value: 1.0}]}
  - model: m1
    parameters: {weight: 1.0}"
expect gradient-too-long "${refused[@]}" --err "c.yml: parameters.t: a gradient of 3 values for a model of 2 layers \(give at most one value per layer\)" -- merge "merge_method: slerp
base_model: m0
parameters: {t: [0.1, 0.5, 0.9]}
models:
  - model: m0
  - model: m1"
expect slerp-two-models "${refused[@]}" --err "c.yml: models: 2 model\(s\) besides the base, but slerp takes 1 \(and base_model\)" -- merge "merge_method: slerp
base_model: base
parameters: {t: 0.5}
models:
  - model: m0
  - model: m1"
expect slerp-no-t "${refused[@]}" --err "parameter 't' is required by slerp" -- merge "merge_method: slerp
base_model: m0
models:
  - model: m0
  - model: m1"
expect t-range "${refused[@]}" --err "c.yml: parameters.t: t 1.500000 outside \[0, 1\]" -- merge "merge_method: nearswap
base_model: m0
parameters: {t: 1.5}
models:
  - model: m0
  - model: m1"
expect bad-condition "${refused[@]}" --err "c.yml: models\[\].parameters.weight: condition key 'when' \(valid: filter, value\)" -- merge "merge_method: linear
models:
  - model: m0
    parameters: {weight: [{when: mlp, value: 0.3}]}
  - model: m1
    parameters: {weight: 1.0}"
expect passthrough-two "${refused[@]}" --err "passthrough takes 1" -- merge "merge_method: passthrough
models:
  - model: m0
  - model: m1"
# The collectives' backend: nccl where it cannot run is refused naming what is missing; an
# unknown one names the valid ones; a watchdog limit below three heartbeats is refused.
LIN="merge_method: linear
$M2"
expect backend-nccl "${refused[@]}" --err "--backend: backend: nccl, but (this uqmerge was built without NCCL|no GPU is visible)" -- merge "$LIN" --backend nccl
expect backend-unknown "${refused[@]}" --err "--backend: backend: 'gloo' \(valid: auto, mpi, nccl\)" -- merge "$LIN" --backend gloo
expect stale-too-short "${refused[@]}" --err "--stale-s: must be 0 \(off\) or at least 6 seconds" -- merge "$LIN" --stale-s 2
# auto merges (MPI) and leaves no heartbeat directory beside the output.
expect backend-auto-merges -- merge "$LIN"
expect "backend-auto-merges: no heartbeat directory left" -- test ! -e "$work/out.heartbeat"
testlib_summary
