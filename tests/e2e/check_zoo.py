#!/usr/bin/env python3
"""Checks a zoo built by `uqmerge zoo` against independent readers (transformers, sentencepiece,
PIL, the csv module), not against uqmerge's own output.

  check_zoo.py ZOO_DIR UQMERGE_BINARY N_CANDIDATES

1. Layout: zoo.json (schema, every model, families), quality.md, base/, N candidate dirs,
   data/<family>_test.tsv for 6 families and <family>_uq.tsv for the 4 held-in ones.
2. Datasets: VLMEvalKit columns; every image a base64 PNG that PIL decodes to 64x64 RGB; the
   answer letter names one of the row's options; distractors are real answers of the family;
   correct letters spread over the options (no letter > 50 % of a 4-option family).
3. Tokenizer: transformers' LlamaTokenizer (sentencepiece) loads it; option letters are single
   tokens; "<image>" is the added token at config.image_token_index.
4. Checkpoints: transformers loads base and every candidate as LlavaForConditionalGeneration;
   the vision tower is bit-identical across all of them; candidates differ from the base in the
   language model.
5. Logits: transformers' option logits for a colour_test row equal `uqmerge answer --json`'s
   (max |diff| <= 1e-4, same answer), built from the files alone.
"""
import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, option_logits, summary  # noqa: E402

zoo, binary, n_cand = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

# 1. layout
man = json.loads((zoo / "zoo.json").read_text())
check(man["schema"] == "uqmerge-zoo" and man["candidates"] == n_cand, "zoo.json schema and candidate count")
check(len(man["models"]) == n_cand + 1 and man["models"][0]["name"] == "base", "zoo.json lists base + every candidate")
fams = [f["name"] for f in man["families"]]
check(fams == ["colour", "shape", "count", "exists", "position", "mixed"], "six families in order")
check((zoo / "quality.md").read_text().startswith("# Demo zoo quality"), "quality.md written")
cands = [zoo / m["path"] for m in man["models"][1:]]
check(all((c / "config.json").is_file() for c in [zoo / "base"] + cands), "every model directory complete")
check(not any(p.name.endswith((".tmp", ".partial")) for p in zoo.iterdir()), "no temporary entries left")

# 2. datasets
from PIL import Image

csv.field_size_limit(1 << 30)
for f in fams:
    for split in ("test", "uq") if f in ("colour", "shape", "count", "exists") else ("test",):
        path = zoo / "data" / f"{f}_{split}.tsv"
        rows = list(csv.DictReader(path.open(newline=""), delimiter="\t"))
        letters = [c for c in "ABCDEFGH" if c in rows[0]]
        ok_img = all(Image.open(io.BytesIO(base64.b64decode(r["image"]))).convert("RGB").size == (64, 64) for r in rows[:20])
        ok_ans = all(r["answer"] in letters and r[r["answer"]] != "" for r in rows)
        answers = {r[r["answer"]] for r in rows}
        options = {r[c] for r in rows for c in letters if r[c] != ""}
        counts = np.array([sum(r["answer"] == c for r in rows) for c in letters], dtype=float)
        spread = counts.max() / counts.sum() <= (0.5 if len(letters) >= 4 else 0.75)
        check(ok_img and ok_ans and len(rows) >= 8, f"{path.name}: {len(rows)} rows, PNG 64x64, answers valid")
        check(options <= answers or f == "mixed", f"{path.name}: every option is some row's answer (distractors are real answers)")
        check(spread, f"{path.name}: correct letters spread {counts.astype(int).tolist()}")

# 3. tokenizer, 4. checkpoints
import torch
from safetensors.torch import load_file
from transformers import LlamaTokenizer, LlavaForConditionalGeneration

tok = LlamaTokenizer.from_pretrained(cands[0])
cfg = json.loads((cands[0] / "config.json").read_text())
check(all(len(tok(l).input_ids) == 2 for l in "ABCDEF"), "option letters A-F are single tokens")
check(tok.convert_tokens_to_ids("<image>") == cfg["image_token_index"], "<image> is the added token at image_token_index")

def tensors(d):
    return load_file(str(d / "model.safetensors"))

base = tensors(zoo / "base")
vis = {k: v for k, v in base.items() if "vision_tower" in k}
check(len(vis) > 0, "base has a vision tower")
same_vision, lm_moved = True, True
for c in cands:
    t = tensors(c)
    same_vision &= all(torch.equal(t[k], v) for k, v in vis.items())
    lm_moved &= any(not torch.equal(t[k], base[k]) for k in base if "language_model" in k)
check(same_vision, "vision tower bit-identical in base and every candidate")
check(lm_moved, "every candidate's language model differs from the base")

# The merging regime's numbers in zoo.json, recomputed from the files: ||tau|| / ||base|| and
# the pairwise cosines of tau = candidate - base over the projector and the language model.
trained = [k for k in base if "multi_modal_projector" in k or "language_model" in k]
flat = lambda t: torch.cat([t[k].double().reshape(-1) for k in trained])  # noqa: E731
b = flat(base)
taus = [flat(tensors(c)) - b for c in cands]
reg = man["regime"]
norm_err = max(abs(float(tau.norm() / b.norm()) - reg["task_vector_relative_norm"][m["name"]])
               for tau, m in zip(taus, man["models"][1:]))
cos_err = max(abs(float(taus[i] @ taus[j] / (taus[i].norm() * taus[j].norm())) - reg["task_vector_cosine"][i][j])
              for i in range(len(taus)) for j in range(len(taus)))
check(norm_err <= 1e-9 and cos_err <= 1e-9, f"zoo.json's task-vector norms and cosines recomputed from the files "
      f"(max error {norm_err:.1e}, {cos_err:.1e})")
check(man["cpu_capability"] == "AVX2", f"training ran torch's AVX2 kernels (zoo.json: {man['cpu_capability']})")
models = {}
for d in [zoo / "base"] + cands:
    try:
        models[d] = LlavaForConditionalGeneration.from_pretrained(d, dtype=torch.float32).eval()
        ok = True
    except Exception as e:  # noqa: BLE001 - report which directory failed
        print(e)
        ok = False
    check(ok, f"transformers loads {d.name}")

# 5. logits on one colour_test row
row = next(csv.DictReader((zoo / "data" / "colour_test.tsv").open(newline=""), delimiter="\t"))
opts = [row[c] for c in "ABCD"]
img_path = zoo.parent / "zoo_check_image.png"
img_path.write_bytes(base64.b64decode(row["image"]))
prompt, L, rows_, ref = option_logits(models[cands[0]], tok, img_path, row["question"], opts)
cmd = [binary, "answer", "--model", str(cands[0]), "--image", str(img_path), "--question", row["question"], "--json"]
for o in opts:
    cmd += ["--option", o]
got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
check(got["prompt"] == prompt, "uqmerge builds the same prompt")
check([o["token"] for o in got["options"]] == rows_, "same option tokens as transformers' tokenizer")
diff = float(np.max(np.abs(np.array([o["logit"] for o in got["options"]]) - ref.numpy())))
check(diff <= 1e-4 and got["answer"] == L[int(ref.argmax())], f"uqmerge answer logits vs transformers: max |diff| {diff:.2e}")

sys.exit(summary())
