#!/usr/bin/env bash
# uqmerge uq on bad input: each case must fail with exit 2 and one ERROR line naming the file
# (or model, dataset and row) and the problem, and leave no results.h5 behind.
#   test_uq_bad_input.sh UQMERGE_BINARY UQ_CASE_DIR PYTHON
set -u
bin=$1
case_dir=$2
py=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
run() {  # NAME PATTERN: runs uq on $work/c/config.yaml
  local name=$1 pattern=$2
  (cd "$work/c" && "$bin" uq -c config.yaml) >"$work/out" 2>"$work/err"
  local rc=$? errs
  errs=$(grep -c "ERROR" "$work/err")
  if [ "$rc" -ne 2 ] || [ "$errs" -ne 1 ] || ! grep -Eq -- "$pattern" "$work/err" || [ -e "$work/c/run/results.h5" ]; then
    echo "FAIL $name: exit $rc, $errs ERROR lines"; grep ERROR "$work/err" | head -3; fail=$((fail + 1))
  else
    echo "ok   $name"; pass=$((pass + 1))
  fi
}
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
run nan-logits "cand_b: non-finite option logits on dataset 'Shapes' row '0'"

fresh
printf 'index\tquestion\thint\tA\tB\tC\tD\tanswer\timage_path\n1\tQ?\t\ta\tb\tc\td\tA\tmissing.png\n' >"$work/c/data.tsv"
run missing-image-file "data.tsv:2 \(row '1'\): image file .*missing.png is missing or unreadable"

fresh
printf 'index\tquestion\thint\tA\tB\tC\tD\tanswer\timage\n1\tQ?\t\ta\tb\tc\td\tA\t%s\n' "$(head -c 120 /dev/zero | tr '\0' '!')" >"$work/c/data.tsv"
run undecodable-base64 "data.tsv:2 \(row '1'\): image is not valid base64"

fresh
printf 'index\tquestion\thint\tA\tB\tanswer\timage\n1\tQ?\t\ta\t\t\tx.png\n' >"$work/c/data.tsv"
run one-option "data.tsv:2: row '1' has 1 options; at least 2 are needed"

fresh
sed -i 's/perturbations: 3/perturbations: 0/' "$work/c/config.yaml"
run bad-config "config.yaml: uq.perturbations: must be in 1..1024"

fresh
sed -i 's/  batch_size: 2/  batch_size: 2\n  colour: red/' "$work/c/config.yaml"
run unknown-key "config.yaml: uq.colour: unknown key \(valid: "

fresh
rm "$work/c/cand_b/tokenizer.model"
run missing-tokenizer "cand_b/tokenizer.model: missing"

fresh
rm "$work/c/cand_a/config.json"
run missing-config "candidate 'cand_a': .*cand_a/config.json: missing"

# Run-only keys are validated by every command that reads the config.
fresh
printf 'baselines: {accuracy_guided: true}\n' >>"$work/c/config.yaml"
run accuracy-guided-without-labels "config.yaml: baselines.accuracy_guided: needs labelled data: add evaluation.datasets"
fresh
printf 'baselines: {random_k: {repeats: 3, k: 9}}\n' >>"$work/c/config.yaml"
run random-k-too-large "config.yaml: baselines.random_k.k: must be in 0..2"
# A GPU demanded where there is none (this CPU build or machine): refused, not silently on the CPU.
fresh
printf 'device: cuda\n' >>"$work/c/config.yaml"
run gpu-absent "device: cuda requested but .*(no GPU support|no GPU is visible).*set device: auto"
# device: auto falls back to the CPU with a warning and completes.
fresh
printf 'device: auto\n' >>"$work/c/config.yaml"
if (cd "$work/c" && "$bin" uq -c config.yaml) >"$work/out" 2>"$work/err" && grep -q "computing on the CPU" "$work/err" &&
   [ -e "$work/c/run/results.h5" ]; then
  echo "ok   gpu-auto-fallback"; pass=$((pass + 1))
else
  echo "FAIL gpu-auto-fallback"; head -3 "$work/err"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
