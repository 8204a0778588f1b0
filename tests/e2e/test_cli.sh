#!/usr/bin/env bash
# The uqmerge CLI on good and bad checkpoints: exit codes (0 ok, 2 bad input, 3 not
# implemented), exactly one error line on stderr naming the file and the problem.
#   test_cli.sh UQMERGE_BINARY REFERENCE_DATA_DIR PYTHON_WITH_SAFETENSORS
# (REFERENCE_DATA_DIR: what tests/reference/*.py made: checkpoints/, answer/, image/)
set -u
bin=$1
data=$2
ref=$data/checkpoints
py=$3
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
source "$(dirname "$0")/../lib/testlib.sh"
testlib_work

fresh() {  # fresh copy of a reference checkpoint
  rm -rf "$work/$1"
  cp -r "$ref/$1" "$work/$1"
  echo "$work/$1"
}

expect help -- "$bin" --help
expect version -- "$bin" --version
expect unknown-option --exit 2 --one-line -- "$bin" inspect --bogus x
expect zoo-without-out --exit 2 --one-line --err "--out is required" -- "$bin" zoo

d=$(fresh llava_hf)
expect inspect-valid --out "problems      none" -- "$bin" inspect "$d"
d=$(fresh llava_hf_bf16_sharded)
expect inspect-sharded -- "$bin" inspect "$d"

d=$(fresh llava_hf)
f="$d/model.safetensors"
head -c $(( $(stat -c %s "$f") - 100 )) "$f" >"$f.x" && mv "$f.x" "$f"
expect truncated --exit 2 --one-line --err "$f: tensor '.*' ends at data byte .* truncated" -- "$bin" inspect "$d"

d=$(fresh llava_hf)
f="$d/model.safetensors"
printf '\x80\xf0\xfa\x02\x00\x00\x00\x00' | dd of="$f" conv=notrunc status=none  # 50,000,000
expect header-too-long --exit 2 --one-line --err "$f: header length 50000000 larger than the file" -- "$bin" inspect "$d"

d=$(fresh llava_hf)
f="$d/model.safetensors"
printf 'X' | dd of="$f" bs=1 seek=8 conv=notrunc status=none
expect header-not-json --exit 2 --one-line --err "$f: header is not a JSON object" -- "$bin" inspect "$d"

d=$(fresh llava_hf)
f="$d/model.safetensors"
python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = open(p, 'rb').read()
open(p, 'wb').write(b.replace(b'"F32"', b'"Q32"', 1))  # same length: header stays valid JSON
PY
expect unknown-dtype --exit 2 --one-line --err "$f: tensor '.*': unknown dtype 'Q32'" -- "$bin" inspect "$d"

d=$(fresh llava_hf_bf16_sharded)
rm "$d/model-00002-of-00005.safetensors"
expect missing-shard --exit 2 --one-line --err "model.safetensors.index.json: names shard 'model-00002-of-00005.safetensors' .* does not exist" -- "$bin" inspect "$d"

d=$(fresh llava_hf_bf16_sharded)
# Shard 2 gains a copy of one of shard 1's tensors (the index still assigns it to shard 1).
"$py" - "$d" <<'PY'
import sys
from safetensors.torch import load_file, save_file
d = sys.argv[1]
one = load_file(f"{d}/model-00001-of-00005.safetensors")
two = load_file(f"{d}/model-00002-of-00005.safetensors")
name = sorted(one)[0]
two[name] = one[name]
save_file(two, f"{d}/model-00002-of-00005.safetensors", metadata={"format": "pt"})
PY
expect tensor-in-two-shards --exit 2 --one-line --err "model-00002-of-00005.safetensors: holds tensor '.*' that the index assigns to shard 'model-00001-of-00005.safetensors': the same tensor in two shards" -- "$bin" inspect "$d"

d=$(fresh llava_hf)
rm "$d/config.json"
expect missing-config --exit 2 --one-line --err "$d/config.json: missing" -- "$bin" inspect "$d"

d=$(fresh llava_hf)
sed -i 's/"LlavaForConditionalGeneration"/"Qwen2VLForConditionalGeneration"/' "$d/config.json"
expect unsupported-arch --exit 2 --one-line --err "unsupported architecture 'Qwen2VLForConditionalGeneration'" -- "$bin" inspect "$d"

d=$(fresh llava_original)
expect original-without-clip --exit 2 --one-line --err "--vision-tower" -- "$bin" inspect "$d"
expect original-with-clip -- "$bin" inspect "$d" --vision-tower "$ref/clip_vision"

d=$(fresh llava_hf)
sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$d/config.json"
expect config-mismatch --exit 2 --one-line --err "missing tensor 'model.language_model.layers.2.*and [0-9]+ more problems" -- "$bin" inspect "$d"

expect not-a-directory --exit 2 --one-line --err "/nonexistent: not a directory" -- "$bin" inspect /nonexistent

# ---- uqmerge answer ------------------------------------------------------------------------
img=$data/image/img_1.png
ans() { "$bin" answer --model "$1" --image "${2:-$img}" --question "What colour?" --option red --option blue "${@:3}"; }
cp -r "$data/answer" "$work/answer"
expect answer-ok -- ans "$work/answer"
printf 'not an image' >"$work/bad.png"
expect answer-unreadable-image --exit 2 --one-line --err "$work/bad.png: not a readable image" -- ans "$work/answer" "$work/bad.png"
expect answer-missing-image --exit 2 --one-line --err "/nonexistent.png: cannot open image file" -- ans "$work/answer" /nonexistent.png
expect answer-bad-aspect --exit 2 --one-line --err "image_aspect_ratio: 'anyres' is not supported" -- ans "$work/answer" "$img" --image-aspect anyres
expect answer-many-options --exit 2 --one-line --err "option letter '.' is [0-9]+ tokens, not one" -- \
  "$bin" answer --model "$work/answer" --image "$img" --question q --option a --option b --option c --option d \
  --option e --option f --option g --option h --option i --option j --option k --option l
d=$(fresh llava_original)
expect answer-original-without-clip --exit 2 --one-line --err "--vision-tower" -- ans "$d"
cp -r "$data/answer" "$work/ans_long"
sed -i 's/"max_position_embeddings": [0-9]*/"max_position_embeddings": 40/' "$work/ans_long/config.json"
expect answer-prompt-too-long --exit 2 --one-line --err "prompt: sequence of [0-9]+ tokens .* exceeds max_position_embeddings 40" -- ans "$work/ans_long"
cp -r "$data/answer" "$work/ans_act"
sed -i 's/"projector_hidden_act": "gelu"/"projector_hidden_act": "relu"/' "$work/ans_act/config.json"
expect answer-projector-activation --exit 2 --one-line --err "projector: activation 'relu' is not supported" -- ans "$work/ans_act"
cp -r "$data/answer" "$work/ans_notok"
rm "$work/ans_notok/tokenizer.model"
expect answer-no-tokenizer --exit 2 --one-line --err "tokenizer.model: missing" -- ans "$work/ans_notok"
cp -r "$data/answer" "$work/ans_missing"
"$py" - "$work/ans_missing/model.safetensors" <<'PY'
import sys
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1])
del sd["language_model.model.layers.1.mlp.up_proj.weight"]
save_file(sd, sys.argv[1], metadata={"format": "pt"})
PY
expect answer-missing-tensor --exit 2 --one-line --err "missing tensor 'language_model.model.layers.1.mlp.up_proj.weight' \(expected \[128, 64\]\)" -- ans "$work/ans_missing"
cp -r "$data/answer" "$work/ans_shape"
sed -i 's/"intermediate_size": 128/"intermediate_size": 96/' "$work/ans_shape/config.json"
expect answer-shape-mismatch --exit 2 --one-line --err "has shape \[128, 64\], config.json implies \[96, 64\]" -- ans "$work/ans_shape"

testlib_summary
