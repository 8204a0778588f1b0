#!/usr/bin/env python3
"""Image preprocessing references from PIL (what LLaVA and transformers' slow CLIP processor use).

Writes OUT/img_<k>.png (random structured RGB images; one RGBA, one grayscale) and
OUT/reference.safetensors with, per image k:
  resize_<k>_<w>x<h>  uint8 [h, w, 3]   PIL Image.resize((w, h), BICUBIC)
  twopass_<k>_<w>x<h> uint8 [h, w, 3]   PIL's horizontal-only resize, then vertical-only: the
                                        classic Pillow two-pass order (Pillow 13 may reorder)
  pad_<k>             fp32 [3, S, S]     LLaVA "pad": expand2square with the CLIP mean colour,
                                        resize to S, /255, normalise
  crop_<k>            fp32 [3, S, S]     shortest edge -> S (int of the scaled long edge),
                                        centre crop, /255, normalise
OUT/cases.json: image sizes, resize targets, S.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
S = 336
rng = np.random.default_rng(3)


def image(w, h):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 256], -1)
    noise = rng.integers(-40, 40, (h, w, 3))
    blocks = ((xx // 7 + yy // 5) % 2 * 90)[..., None]
    return np.clip(base + noise + blocks, 0, 255).astype(np.uint8)


def normalise(img):
    a = np.asarray(img, dtype=np.float64) / 255.0
    return torch.from_numpy(((a - MEAN) / STD).transpose(2, 0, 1).astype(np.float32).copy())


sizes = [(640, 480), (333, 500), (336, 336), (100, 57), (1024, 1023), (17, 300), (800, 600)]
targets = [(336, 336), (224, 224), (50, 30), (400, 401), (13, 7)]
tensors, cases = {}, []
for k, (w, h) in enumerate(sizes):
    arr = image(w, h)
    im = Image.fromarray(arr)
    if k == 5:
        im = im.convert("L")  # grayscale file
    if k == 6:
        im = im.convert("RGBA")
        im.putalpha(Image.fromarray(arr[..., 0]))  # alpha is dropped by convert("RGB")
    im.save(OUT / f"img_{k}.png")
    rgb = Image.open(OUT / f"img_{k}.png").convert("RGB")
    for tw, th in targets:
        tensors[f"resize_{k}_{tw}x{th}"] = torch.from_numpy(np.asarray(rgb.resize((tw, th), Image.BICUBIC)).copy())
        two = rgb.resize((tw, h), Image.BICUBIC) if tw != w else rgb
        two = two.resize((tw, th), Image.BICUBIC) if th != h else two
        tensors[f"twopass_{k}_{tw}x{th}"] = torch.from_numpy(np.asarray(two).copy())
    # pad: LLaVA's expand2square then resize
    bg = tuple(int(x * 255) for x in MEAN)
    side = max(w, h)
    sq = Image.new("RGB", (side, side), bg)
    sq.paste(rgb, ((side - w) // 2, (side - h) // 2))
    tensors[f"pad_{k}"] = normalise(sq.resize((S, S), Image.BICUBIC))
    # crop: shortest edge -> S, centre crop S
    short, long_ = min(w, h), max(w, h)
    nl = int(S * long_ / short)
    rw, rh = (nl, S) if w >= h else (S, nl)
    r = rgb.resize((rw, rh), Image.BICUBIC)
    top, left = (rh - S) // 2, (rw - S) // 2
    tensors[f"crop_{k}"] = normalise(r.crop((left, top, left + S, top + S)))
    cases.append({"k": k, "w": w, "h": h})
save_file({n: t.contiguous() for n, t in tensors.items()}, str(OUT / "reference.safetensors"))
(OUT / "cases.json").write_text(json.dumps({"images": cases, "targets": targets, "size": S}))
print(f"wrote {len(cases)} images, {len(tensors)} references to {OUT}")
