#!/usr/bin/env bash
# Runs uqmerge on the built-in demo. Installs missing dependencies and builds first.
#
# Until the demo world and its model zoo land (issue #7), this runs the smallest end-to-end
# path that exists: it saves a few tiny LLaVA checkpoints with transformers (both llava-hf
# tensor-name generations, bf16 sharded, original LLaVA with a separate CLIP directory)
# under runs/demo/ and validates each with `uqmerge inspect`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
bash scripts/setup.sh
cmake -S . -B "$UQMERGE_BUILD" -G Ninja -DUQMERGE_PYTHON="$UQMERGE_VENV/bin/python" >/dev/null
cmake --build "$UQMERGE_BUILD" -j"$(nproc)" --target uqmerge
out=runs/demo
mkdir -p "$out"
HF_HUB_OFFLINE=1 "$UQMERGE_VENV/bin/python" tests/reference/make_checkpoints.py "$out/checkpoints" 2>/dev/null
for m in llava_hf llava_hf_legacy llava_hf_bf16_sharded; do
  echo "=== uqmerge inspect $out/checkpoints/$m"
  "$UQMERGE_BUILD/src/uqmerge" inspect "$out/checkpoints/$m"
done
echo "=== uqmerge inspect $out/checkpoints/llava_original --vision-tower $out/checkpoints/clip_vision"
"$UQMERGE_BUILD/src/uqmerge" inspect "$out/checkpoints/llava_original" --vision-tower "$out/checkpoints/clip_vision"
echo "[demo] done: checkpoints in $out/checkpoints (the full demo, with merging, arrives with issue #7)"
