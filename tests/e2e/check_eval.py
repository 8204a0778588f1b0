#!/usr/bin/env python3
"""Checks `uqmerge eval` against transformers + PIL: for every row of the unpadded dataset
("Plain"), the letter transformers' LlavaForConditionalGeneration prefers on the unperturbed
llava_v1 prompt (extras appended, LLaVA "pad" preprocessing: tests/lib/uqtest.py's reference)
must be eval.h5's prediction, and the accuracy must follow.   check_eval.py EVAL_H5 CASE_DIR"""
import base64
import io
import sys
from pathlib import Path

import h5py
from transformers import LlamaTokenizer, LlavaForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, option_logits, summary, text  # noqa: E402

h5, case = h5py.File(sys.argv[1], "r"), Path(sys.argv[2])
lines = (case / "data.tsv").read_text().splitlines()
header = lines[0].split("\t")
rows = [dict(zip(header, l.split("\t"))) for l in lines[1:]]
for key in sorted(h5["eval"]):
    g = h5["eval"][key]
    name = text(g.attrs["name"])
    model = LlavaForConditionalGeneration.from_pretrained(case / name).eval()
    tok = LlamaTokenizer.from_pretrained(case / name)
    preds = []
    for r in rows:
        opts = [r[c] for c in "ABCD" if r.get(c)]
        src = r["image"] if len(r["image"]) > 64 else next(x["image"] for x in rows if x["index"] == r["image"])
        image = io.BytesIO(base64.b64decode(src))
        _, _, _, logits = option_logits(model, tok, image, r["question"], opts, r["hint"])
        preds.append(int(logits.argmax()))
    got = list(g["Plain/predicted"][()])
    check(got == preds, f"{name}: predictions {got} vs transformers {preds}")
    answers = [ord(r["answer"]) - 65 for r in rows]
    acc = 100.0 * sum(p == a for p, a in zip(preds, answers)) / len(rows)
    check(abs(g["Plain"].attrs["accuracy"] - acc) < 1e-9, f"{name}: accuracy {g['Plain'].attrs['accuracy']:.2f} vs {acc:.2f}")
sys.exit(summary())
