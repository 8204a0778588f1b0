#!/usr/bin/env python3
"""AugMix references from torchvision.transforms.v2 (uint8 tensor kernels).

OUT/reference.safetensors:
  image                  uint8 [H, W, 3]   the input (structured random, 40 x 30)
  op_<Name>_<level>_<s>  uint8 [H, W, 3]   torchvision's op at bin `level` (0..2 = severity 3),
                                           sign s = p (positive) / n (negative), called exactly
                                           as AugMix._apply_image_or_video_transform calls it
  mix_mean, mix_std      fp32 [H2, W2, 3]  per-pixel mean / std of AugMix() over N draws of a
  small                  uint8 [H2, W2, 3] small image (16 x 12)
OUT/cases.json: op names, magnitudes per (op, level), N.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
rng = np.random.default_rng(4)


def make(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), ((xx // 4 + yy // 3) % 2) * 200 + 20], -1)
    a = a + rng.integers(-25, 25, (h, w, 3))
    return torch.from_numpy(np.clip(a, 0, 255).astype(np.uint8))


img = make(30, 40)
chw = img.permute(2, 0, 1).contiguous()
H, W = 30, 40
aug = v2.AugMix()
space = aug._AUGMENTATION_SPACE
tensors = {"image": img}
mags = {}
for name, (fn, signed) in space.items():
    m = fn(aug._PARAMETER_MAX, H, W)
    for level in range(3):
        mag = float(m[level]) if m is not None else 0.0
        mags[f"{name}_{level}"] = mag
        for s in ("p", "n") if signed else ("p",):
            out = aug._apply_image_or_video_transform(chw, name, -mag if s == "n" else mag,
                                                      interpolation=aug.interpolation, fill=aug._fill)
            tensors[f"op_{name}_{level}_{s}"] = out.permute(1, 2, 0).contiguous()

small = make(12, 16)
N = 1000
draws = torch.stack([aug(small.permute(2, 0, 1)).permute(1, 2, 0).float() for _ in range(N)])
tensors.update(small=small, mix_mean=draws.mean(0).contiguous(), mix_std=draws.std(0).contiguous())
save_file(tensors, str(OUT / "reference.safetensors"))
(OUT / "cases.json").write_text(json.dumps({"ops": list(space.keys()), "magnitudes": mags, "draws": N}))
print(f"wrote {len(tensors)} AugMix references to {OUT}")
