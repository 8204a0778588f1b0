#!/usr/bin/env bash
# The main job on a GPU (issue #14 item 4), as gpu-bundle-run.sh step 5 runs it on the device
# and as it is rehearsed here on the CPU (DEVICE=cpu):
#   a. `uqmerge run` (Algorithm 1, backend auto) on the end-to-end case (tests/e2e/make_uq_case.py)
#      on the CPU and on DEVICE, results in OUT/tiny_cpu and OUT/tiny_DEVICE; compared when the
#      log comes back (tests/lib/uqtest.py compare --tol), here when DEVICE=cpu runs both twice;
#   b. `uqmerge run` on two generated candidates of LLaVA-1.5-7B widths (hidden 4096, 32 heads,
#      MLP 11008, vocab 32064; LAYERS LM layers, CLIP-L/336 with VLAYERS layers; the case's
#      tokenizer) in DTYPE on DEVICE -> OUT/w7b_DEVICE, wall time in the log;
#   c. `uqmerge merge` (linear) of the two 7B-width checkpoints -> wall time in the log.
# Each part under its own timeout; exit status = failed parts. UQMERGE_CLI_TINY_ONLY=1: part a
# only (no transformers needed: the rehearsal of the bundle).
# Usage: gpu-cli-checks.sh UQMERGE_BIN CASE_DIR OUT DEVICE [LAYERS] [VLAYERS] [DTYPE] [PYTHON]
set -u
bin=$(realpath "$1") case_dir=$(cd "$2" && pwd) out=$(mkdir -p "$3" && cd "$3" && pwd) device=$4 layers=${5:-2} vlayers=${6:-2} dtype=${7:-bfloat16} py=${8:-python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${UQMERGE_CLI_WORK:-/tmp/uqmerge-cli-checks}
mkdir -p "$out" "$work"
failed=0
t0=$(date +%s)
say() { echo "[gpu-cli $(( $(date +%s) - t0 ))s] $*"; }
part() {  # NAME TIMEOUT CMD...
  local name=$1 limit=$2; shift 2
  local s=$(date +%s)
  say "$name: $*"
  timeout -k 5 "$limit" "$@"
  local rc=$?
  say "$name: exit $rc after $(( $(date +%s) - s ))s"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  return "$rc"
}
config() {  # SRC_YAML OUTPUT_DIR DEVICE DTYPE -> a config in $work, printed path
  local f=$work/$(basename "$2").yaml
  sed -e "s|^output_dir: .*|output_dir: $2|" -e "s|^threads: .*|threads: 0|" "$1" >"$f"
  printf 'device: %s\ndtype: %s\nbackend: auto\n' "$3" "$4" >>"$f"
  # candidate and data paths relative to the case
  sed -i -e "s|model: cand_|model: $case_dir/cand_|" -e "s|path: data.tsv|path: $case_dir/data.tsv|" "$f"
  echo "$f"
}

# a. the end-to-end case on the CPU and on DEVICE
rm -rf "$out/tiny_cpu" "$out/tiny_$device"
part "tiny case, cpu" 120 "$bin" run -c "$(config "$case_dir/config_run.yaml" "$out/tiny_cpu" cpu float32)"
[ "$device" = cpu ] && dev_out=$out/tiny_cpu2 || dev_out=$out/tiny_$device
rm -rf "$dev_out"
part "tiny case, $device" 120 "$bin" run -c "$(config "$case_dir/config_run.yaml" "$dev_out" "$device" float32)"

if [ -n "${UQMERGE_CLI_TINY_ONLY:-}" ]; then say "done (part a only): $failed part(s) failed"; exit "$failed"; fi

# b. two candidates of 7B widths
for s in 0 1; do
  m=$work/w7b_${layers}_${vlayers}_$s
  if [ ! -e "$m/config.json" ]; then
    part "make 7B-width candidate $s" 300 "$py" "$here/bench/forward/make_model.py" "$m" "$layers" "$vlayers" "$s" || continue
    cp "$case_dir/cand_a/tokenizer.model" "$case_dir/cand_a/tokenizer_config.json" "$m/"
  fi
done
w=$work/w7b.yaml
cat >"$w" <<EOF
output_dir: $out/w7b_$device
seed: 3
dtype: $dtype
device: $device
backend: auto
candidates:
  - {model: $work/w7b_${layers}_${vlayers}_0, name: w0}
  - {model: $work/w7b_${layers}_${vlayers}_1, name: w1}
uq:
  perturbations: ${UQMERGE_CLI_J:-4}
  attention_dropout: 0.1
  batch_size: 8
  cache_memory_mb: 0
  datasets:
    - {name: Shapes, path: $case_dir/data.tsv, pad_options_to: 4}
merge: {method: linear}
EOF
rm -rf "$out/w7b_$device"
part "uqmerge run, 7B widths ($layers+$vlayers layers, $dtype, $device)" 300 "$bin" run -c "$w"

# c. merge of the 7B-width checkpoints
printf 'merge_method: linear\nmodels:\n  - model: %s\n    parameters: {weight: 0.5}\n  - model: %s\n    parameters: {weight: 0.5}\ndtype: float32\n' \
  "$work/w7b_${layers}_${vlayers}_0" "$work/w7b_${layers}_${vlayers}_1" >"$work/merge.yml"
rm -rf "$work/merged"
part "uqmerge merge, 7B widths" 300 "$bin" merge "$work/merge.yml" -o "$work/merged"
du -sh "$work"/w7b_*_0 "$work/merged" 2>/dev/null
rm -rf "$work/merged"
say "done: $failed part(s) failed"
exit "$failed"
