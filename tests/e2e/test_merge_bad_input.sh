#!/usr/bin/env bash
# uqmerge merge on bad input: exit 2, one ERROR line naming the file/key and the problem, and
# no output directory that looks complete.   test_merge_bad_input.sh UQMERGE_BINARY PARITY_WORK_DIR
set -u
bin=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/base" "$src/m0" "$src/m1" "$src/other" "$work/"
pass=0
fail=0
expect() {  # NAME PATTERN YAML [extra args]
  local name=$1 pattern=$2
  printf '%s\n' "$3" >"$work/c.yml"
  shift 3
  (cd "$work" && "$bin" merge c.yml -o out "$@") >"$work/o" 2>"$work/e"
  local rc=$?
  if [ "$rc" -ne 2 ] || [ "$(wc -l <"$work/e")" -ne 1 ] || ! grep -Eq -- "$pattern" "$work/e" || [ -e "$work/out/config.json" ] ||
     ls "$work" | grep -q '^out.tmp'; then
    echo "FAIL $name (exit $rc)"; head -3 "$work/e"; fail=$((fail + 1))
  else
    echo "ok   $name"; pass=$((pass + 1))
  fi
}
M2='models:
  - model: m0
    parameters: {weight: 1.0}
  - model: m1
    parameters: {weight: 1.0}'
expect no-base "base_model: 'ties' works on task vectors and needs a base_model" "merge_method: ties
$M2"
expect unknown-method "merge_method: unknown 'slurp' \(valid: linear, task_arithmetic, ties" "merge_method: slurp
$M2"
expect density-range "density 1.500000 outside \[0, 1\]" "merge_method: ties
base_model: base
models:
  - model: m0
    parameters: {weight: 1.0, density: 1.5}
  - model: m1
    parameters: {weight: 1.0}"
expect one-model "a merge needs at least 2 inputs" "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}"
expect duplicate "is listed twice" "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}
  - model: m0
    parameters: {weight: 1.0}"
expect unknown-param "parameters.colour: not a parameter of linear" "merge_method: linear
parameters: {colour: 1}
$M2"
expect missing-weight "parameter 'weight' is required by linear" "merge_method: linear
models:
  - model: m0
  - model: m1"
# A valid candidate of another shape (intermediate size 96, not 128).
expect other-architecture "other/model.safetensors: tensor 'model.layers.0.mlp.[a-z_]+.weight' has shape \[[0-9, ]+\] but \[[0-9, ]+\] in .*m0/model.safetensors" "merge_method: linear
models:
  - model: m0
    parameters: {weight: 1.0}
  - model: other
    parameters: {weight: 1.0}"
mkdir -p "$work/out" && touch "$work/out/keep"
expect output-exists "out: output directory exists \(pass --overwrite" "merge_method: linear
$M2"
[ -e "$work/out/keep" ] || { echo "FAIL output-exists: the existing directory was touched"; fail=$((fail + 1)); }
rm -rf "$work/out"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
