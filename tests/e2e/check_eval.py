#!/usr/bin/env python3
"""Checks `uqmerge eval` against transformers + PIL: for every row of the unpadded dataset
("Plain"), the letter transformers' LlavaForConditionalGeneration prefers on the unperturbed
llava_v1 prompt (extras appended, LLaVA "pad" preprocessing) must be eval.h5's prediction, and
the accuracy must follow.   check_eval.py EVAL_H5 CASE_DIR"""
import base64
import io
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from transformers import LlamaTokenizer, LlavaForConditionalGeneration

h5, case = h5py.File(sys.argv[1], "r"), Path(sys.argv[2])
lines = (case / "data.tsv").read_text().splitlines()
header = lines[0].split("\t")
rows = [dict(zip(header, l.split("\t"))) for l in lines[1:]]
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the human's questions.")
passed = failed = 0
for key in sorted(h5["eval"]):
    g = h5["eval"][key]
    name = g.attrs["name"]
    name = name.decode() if isinstance(name, bytes) else name
    model = LlavaForConditionalGeneration.from_pretrained(case / name).eval()
    tok = LlamaTokenizer.from_pretrained(case / name)
    size = model.config.vision_config.image_size
    P = (size // model.config.vision_config.patch_size) ** 2
    preds = []
    for r in rows:
        opts = [r[c] for c in "ABCD" if r.get(c)] + ["I don't know", "None of the above"]
        letters = [chr(65 + i) for i in range(len(opts))]
        text = (r["hint"] + "\n" if r["hint"] else "") + r["question"] + "\n"
        text += "".join(f"{l}. {o}\n" for l, o in zip(letters, opts)) + "Answer with the option's letter from the given choices directly."
        prompt = SYSTEM + " USER: <image>\n" + text + " ASSISTANT:"
        ids = []
        for t in tok(prompt).input_ids:
            ids.extend([900] * P if t == 900 else [t])
        src = r["image"] if len(r["image"]) > 64 else next(x["image"] for x in rows if x["index"] == r["image"])
        im = Image.open(io.BytesIO(base64.b64decode(src))).convert("RGB")
        side = max(im.size)
        sq = Image.new("RGB", (side, side), tuple(int(x * 255) for x in MEAN))
        sq.paste(im, ((side - im.size[0]) // 2, (side - im.size[1]) // 2))
        a = (np.asarray(sq.resize((size, size), Image.BICUBIC), dtype=np.float64) / 255 - MEAN) / STD
        px = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)).unsqueeze(0)
        rows_ids = [tok(l).input_ids[-1] for l in letters]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), pixel_values=px).logits[0, -1, rows_ids]
        preds.append(int(logits.argmax()))
    got = list(g["Plain/predicted"][()])
    ok = got == preds
    print(("ok   " if ok else "FAIL ") + f"{name}: predictions {got} vs transformers {preds}")
    passed += ok
    failed += not ok
    answers = [ord(r["answer"]) - 65 for r in rows]
    acc = 100.0 * sum(p == a for p, a in zip(preds, answers)) / len(rows)
    ok = abs(g["Plain"].attrs["accuracy"] - acc) < 1e-9
    print(("ok   " if ok else "FAIL ") + f"{name}: accuracy {g['Plain'].attrs['accuracy']:.2f} vs {acc:.2f}")
    passed += ok
    failed += not ok
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
