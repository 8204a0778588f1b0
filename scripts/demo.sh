#!/usr/bin/env bash
# Runs uqmerge on the built-in demo. Installs missing dependencies and builds first.
#
# Until the demo world and its trained model zoo land (issue #7), this runs the whole pipeline
# on tiny random models under runs/demo/: checkpoints saved by transformers in every supported
# layout, validated with `uqmerge inspect`; `uqmerge answer` on an image; and Algorithm 1
# (`uqmerge run` on 2 MPI ranks: uncertainty of two candidates, incremental merge, selection).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
cmake -S . -B "$UQMERGE_BUILD" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" >/dev/null
cmake --build "$UQMERGE_BUILD" -j"$(nproc)" --target uqmerge
out=runs/demo
bin=$(realpath "$UQMERGE_BUILD")/src/uqmerge
py=$UQMERGE_VENV/bin/python
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
"$py" tests/reference/make_checkpoints.py "$out/checkpoints" 2>/dev/null
"$py" tests/reference/make_tokenizer_cases.py "$out/tokenizer" 2>/dev/null
"$py" tests/reference/make_image_cases.py "$out/images" 2>/dev/null
"$py" tests/reference/answer_reference.py make "$out/answer_model" "$out/tokenizer/tok_legacy_false" "$out/images/img_1.png" 2>/dev/null
for m in llava_hf llava_hf_legacy llava_hf_bf16_sharded; do
  echo "=== uqmerge inspect $out/checkpoints/$m"
  "$bin" inspect "$out/checkpoints/$m"
done
echo "=== uqmerge inspect $out/checkpoints/llava_original --vision-tower $out/checkpoints/clip_vision"
"$bin" inspect "$out/checkpoints/llava_original" --vision-tower "$out/checkpoints/clip_vision"
echo "=== uqmerge answer (a random tiny model: the distribution is meaningless, the pipeline is real)"
"$bin" answer --model "$out/answer_model" --image "$out/images/img_1.png" \
  --question "What colour is the circle left of the square?" --hint "The picture shows shapes." \
  --option red --option green --option blue --option purple
"$py" tests/e2e/make_uq_case.py "$out/uq" "$out/answer_model" "$out/images" >/dev/null 2>&1
echo "=== mpirun -np 2 uqmerge run -c $out/uq/config_run.yaml"
(cd "$out/uq" && mpirun -np 2 "$bin" run -c config_run.yaml --overwrite)
echo "[demo] done: outputs in $out; Algorithm 1's merged model and results.h5 in $out/uq/run_alg1 (the trained demo zoo arrives with issue #7)"
