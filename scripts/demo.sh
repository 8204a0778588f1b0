#!/usr/bin/env bash
# Runs uqmerge on the built-in demo. Installs missing dependencies and builds first.
#
# Until the demo world and its model zoo land (issue #7) and the merge driver (issue #5), this
# runs the largest end-to-end path that exists: it saves tiny LLaVA checkpoints with
# transformers in every supported layout under runs/demo/, validates each with
# `uqmerge inspect`, and asks one of them a multiple-choice question about an image with
# `uqmerge answer` (tokenizer, image preprocessing, vision tower, projector, LLaMA).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
cmake -S . -B "$UQMERGE_BUILD" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" >/dev/null
cmake --build "$UQMERGE_BUILD" -j"$(nproc)" --target uqmerge
out=runs/demo
bin=$UQMERGE_BUILD/src/uqmerge
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
echo "[demo] done: outputs in $out (the full demo, with the model zoo and merging, arrives with issues #5 and #7)"
