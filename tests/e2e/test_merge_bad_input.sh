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
testlib_summary
