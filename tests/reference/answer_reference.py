#!/usr/bin/env python3
"""`uqmerge answer` end to end against transformers + PIL.

  answer_reference.py make OUT TOKENIZER_DIR IMAGE
      saves a tiny LlavaForConditionalGeneration (vocab 1000, <image> = 900, 56 px / patch 14)
      with the reference tokenizer, and OUT/expected.json: the option logits transformers gives
      for the llava_v1 prompt (built here), the tokenizer's ids with the image token expanded,
      and PIL's "pad" preprocessing of IMAGE.
  answer_reference.py expect OUT IMAGE
      writes OUT/expected.json for an existing model directory OUT (e.g. a merged model).
  answer_reference.py check OUT UQMERGE_BINARY IMAGE
      runs `uqmerge answer --json` and compares (max |logit diff| <= 1e-4, same answer).
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, option_logits, summary  # noqa: E402  (the prompt and image reference)

QUESTION, HINT = "What colour is the circle left of the square?", "The picture shows shapes."
OPTIONS = ["red", "green", "blue", "purple"]


def make(out, tok_dir, image):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import LlamaTokenizer, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(5)
    cfg = LlavaConfig(text_config=dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, intermediate_size=128, vocab_size=1000, rms_norm_eps=1e-5),
                      vision_config=dict(model_type="clip_vision_model", hidden_size=32, num_hidden_layers=3,
                                         num_attention_heads=2, intermediate_size=64, image_size=56, patch_size=14),
                      image_token_index=900)
    model = LlavaForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(Path(tok_dir) / f, out / f)
    expect(out, image, model)


def expect(out, image, model=None):
    import torch
    from transformers import LlamaTokenizer, LlavaForConditionalGeneration

    if model is None:
        model = LlavaForConditionalGeneration.from_pretrained(out, dtype=torch.float32).eval()
    # LlamaTokenizer explicitly: AutoTokenizer maps model_type "llava" to a generic tokenizer
    # when the directory has no tokenizer.json (real llava-hf checkpoints ship one).
    tok = LlamaTokenizer.from_pretrained(out)
    prompt, letters, rows, logits = option_logits(model, tok, image, QUESTION, OPTIONS, HINT)
    probs = torch.softmax(logits, 0)
    (out / "expected.json").write_text(json.dumps({
        "prompt": prompt, "letters": letters, "tokens": rows, "logits": logits.tolist(), "probabilities": probs.tolist(),
        "answer": letters[int(probs.argmax())]}, indent=1))
    print(f"wrote {out}")


def check_cli(out, binary, image):
    exp = json.loads((out / "expected.json").read_text())
    cmd = [binary, "answer", "--model", str(out), "--image", image, "--question", QUESTION, "--hint", HINT, "--json"]
    for o in OPTIONS:
        cmd += ["--option", o]
    got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    check(got["prompt"] == exp["prompt"], "uqmerge answer builds transformers' prompt"
          + ("" if got["prompt"] == exp["prompt"] else f": {got['prompt']!r} vs {exp['prompt']!r}"))
    check([o["token"] for o in got["options"]] == exp["tokens"], "same option tokens")
    diff = max(abs(o["logit"] - e) for o, e in zip(got["options"], exp["logits"]))
    pdiff = max(abs(o["probability"] - e) for o, e in zip(got["options"], exp["probabilities"]))
    check(diff <= 1e-4 and got["answer"] == exp["answer"],
          f"uqmerge answer vs transformers: max |logit diff| {diff:.2e}, max |prob diff| {pdiff:.2e}, "
          f"answer {got['answer']} vs {exp['answer']}")
    return summary()


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "make":
        sys.exit(make(out, sys.argv[3], sys.argv[4]))
    if mode == "expect":
        sys.exit(expect(out, sys.argv[3]))
    sys.exit(check_cli(out, sys.argv[3], sys.argv[4]))
