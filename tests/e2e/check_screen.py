#!/usr/bin/env python3
"""Checks `uqmerge run` with selection.screen on the hand-made candidates of make_uq_case.py
(good_a/b/c, constant, blind) against transformers + PIL and numpy:
  - every candidate's unperturbed option distribution with the real image and with the blank
    one (CLIP mean colour: pixel values 0) equals transformers' LlavaForConditionalGeneration
    on the same prompt;
  - mode share, image sensitivity, consensus agreement, the medians and the flags, recomputed in
    numpy from transformers' distributions, equal results.h5's;
  - the constant and the blind candidate are flagged (by construction), the good ones are not,
    and Algorithm 1's order holds exactly the kept ones.
    check_screen.py CASE_DIR"""
import base64
import io
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from transformers import LlamaTokenizer, LlavaForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, expand_image_token, llava_v1_prompt, pad_preprocess, summary, text  # noqa: E402

case = Path(sys.argv[1])
h5 = h5py.File(case / "run_screen" / "results.h5", "r")
lines = (case / "data.tsv").read_text().splitlines()
header = lines[0].split("\t")
rows = [dict(zip(header, l.split("\t"))) for l in lines[1:]]
paths = {"good_a": "good_a", "good_b": "good_b", "good_c": "good_c", "constant": "constant", "blind": "blind"}


def distributions(name):
    """transformers' option distributions [rows, K] with the real and with the blank image."""
    model = LlavaForConditionalGeneration.from_pretrained(case / paths[name]).eval()
    tok = LlamaTokenizer.from_pretrained(case / paths[name])
    cfg = model.config
    size, patch = cfg.vision_config.image_size, cfg.vision_config.patch_size
    K = max(len([c for c in "ABCD" if r.get(c)]) for r in rows) + 2
    real, blank = np.zeros((len(rows), K)), np.zeros((len(rows), K))
    for i, r in enumerate(rows):
        opts = [r[c] for c in "ABCD" if r.get(c)]
        prompt, letters = llava_v1_prompt(r["question"], opts, r["hint"])
        ids = torch.tensor([expand_image_token(tok(prompt).input_ids, cfg.image_token_index, (size // patch) ** 2)])
        letter_ids = [tok(l).input_ids[-1] for l in letters]
        src = r["image"] if len(r["image"]) > 64 else next(x["image"] for x in rows if x["index"] == r["image"])
        px = pad_preprocess(io.BytesIO(base64.b64decode(src)), size)
        with torch.no_grad():
            for out, pixels in ((real, px), (blank, torch.zeros_like(px))):
                logits = model(input_ids=ids, pixel_values=pixels).logits[0, -1, letter_ids].double()
                out[i, : len(letters)] = torch.softmax(logits, 0).numpy()
    return real, blank


g = h5["screen"]
models = sorted(k for k in g if k.startswith("model_"))
names = [text(g[m].attrs["name"]) for m in models]
check(names == list(paths), f"screen candidates {names}")
n_opts = [len([c for c in "ABCD" if r.get(c)]) + 2 for r in rows]
ref = {}
for m, name in zip(models, names):
    real, blank = distributions(name)
    ref[name] = (real, blank)
    d = g[m]["Plain"]
    for key, want in (("p_clean", real), ("p_blank", blank)):
        got = d[key][()]
        diff = float(np.abs(got - want).max())
        check(got.shape == want.shape and diff < 2e-5, f"{name}: {key} vs transformers, max |diff| {diff:.2e}")


def argmax(p, n):
    return np.array([int(np.argmax(p[i, : n[i]])) for i in range(len(n))])


M = len(names)
preds = {n: argmax(ref[n][0], n_opts) for n in names}
stats = {}
for n in names:
    real, blank = ref[n]
    pred = preds[n]
    mode = np.bincount(pred).max() / len(pred)
    tv = float(np.mean([0.5 * np.abs(real[i, : n_opts[i]] - blank[i, : n_opts[i]]).sum() for i in range(len(rows))]))
    # consensus: the others' plurality vote; ties to the larger summed probability, then the earlier letter
    others = [o for o in names if o != n]
    cons = []
    for i in range(len(rows)):
        votes = np.bincount([preds[o][i] for o in others], minlength=n_opts[i])[: n_opts[i]]
        summed = sum(ref[o][0][i, : n_opts[i]] for o in others)
        cons.append(min(range(n_opts[i]), key=lambda k: (-votes[k], -summed[k], k)))
    agree = float(np.mean(np.array(cons) == pred))
    stats[n] = (mode, tv, agree)
    got = g[models[names.index(n)]]["Plain"]
    check(list(got["predicted"][()]) == list(pred), f"{n}: predicted {list(got['predicted'][()])} vs transformers {list(pred)}")
    for k, (attr, want) in enumerate((("mode_share", mode), ("image_sensitivity", tv), ("agreement", agree))):
        have = float(g[attr][names.index(n)])
        check(abs(have - want) < 1e-4, f"{n}: {attr} {have:.5f} vs numpy {want:.5f}")
med_s = float(np.median([s[1] for s in stats.values()]))
med_a = float(np.median([s[2] for s in stats.values()]))
check(abs(g.attrs["median_sensitivity"] - med_s) < 1e-4, f"median sensitivity {g.attrs['median_sensitivity']:.5f} vs {med_s:.5f}")
check(abs(g.attrs["median_agreement"] - med_a) < 1e-4, f"median agreement {g.attrs['median_agreement']:.5f} vs {med_a:.5f}")
want_flags = [int(s[0] >= 0.9 or s[1] < 0.25 * med_s or s[2] < 0.5 * med_a) for s in stats.values()]
flags = [int(x) for x in g["flagged"][()]]
check(flags == want_flags, f"flags {flags} vs numpy {want_flags}")
check(flags == [0, 0, 0, 1, 1], f"constant and blind flagged, the good ones kept: {flags}")
check(stats["constant"][0] == 1.0, f"the constant candidate answers A to every row: mode share {stats['constant'][0]}")
check(stats["blind"][1] == 0.0, f"the blind candidate's answers do not move with the image: {stats['blind'][1]}")
check("one answer" in text(g["model_003"].attrs["reasons"]), f"constant's reasons: {text(g['model_003'].attrs['reasons'])}")
check("ignores the image" in text(g["model_004"].attrs["reasons"]), f"blind's reasons: {text(g['model_004'].attrs['reasons'])}")
order = sorted(int(x) for x in h5["run/order"][()])
check(order == [0, 1, 2], f"Algorithm 1 ordered the kept candidates only: {order}")
check(list(h5["baselines/merge_all/members"][()].ravel()) != [] and h5["baselines/merge_all/members"].shape[1] == M,
      "merge_all still merges every candidate")
card = (case / "run_screen" / "merged" / "README.md").read_text() if (case / "run_screen" / "merged" / "README.md").exists() else ""
check("Left out by selection.screen" in card and "blind (" in card, "the merged model's card names the left-out candidates")
sys.exit(summary())
