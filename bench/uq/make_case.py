#!/usr/bin/env python3
"""A mid-size uq workload for bench/uq: NMODELS candidates of one random LLaVA (LLaMA width 512,
4 layers; CLIP width 256, 4 layers, 112 px / patch 14 = 64 image tokens) sharing the vision
tower, the reference tokenizer, and a VLMEvalKit TSV of ROWS rows (the reference images, cycled).
  make_case.py OUT TOKENIZER_DIR IMAGE_DIR NMODELS ROWS"""
import base64
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import LlavaConfig, LlavaForConditionalGeneration

out, tok, images, n, rows = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if (out / "data.tsv").exists():
    sys.exit(0)
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(3)
cfg = LlavaConfig(text_config=dict(model_type="llama", hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                                   num_key_value_heads=8, intermediate_size=1376, vocab_size=1000, rms_norm_eps=1e-5),
                  vision_config=dict(model_type="clip_vision_model", hidden_size=256, num_hidden_layers=4,
                                     num_attention_heads=4, intermediate_size=1024, image_size=112, patch_size=14),
                  image_token_index=900)
model = LlavaForConditionalGeneration(cfg).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.03)
model.save_pretrained(out / "cand_0")
for f in ("tokenizer.model", "tokenizer_config.json"):
    shutil.copy(tok / f, out / "cand_0" / f)
for k in range(1, n):
    shutil.copytree(out / "cand_0", out / f"cand_{k}")
    f = out / f"cand_{k}" / "model.safetensors"
    sd = load_file(str(f))
    g = torch.Generator().manual_seed(k)
    for name, v in sd.items():
        if name.startswith("language_model."):
            sd[name] = (v + torch.randn(v.shape, generator=g) * 0.02).contiguous()
    save_file(sd, str(f), metadata={"format": "pt"})
pngs = sorted(images.glob("img_*.png"))
lines = ["index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage"]
for r in range(rows):
    img = base64.b64encode(pngs[r % len(pngs)].read_bytes()).decode()
    lines.append(f"{r}\tWhat colour is object {r}?\t\tred\tgreen\tblue\tpurple\tA\tbench\t{img}")
(out / "data.tsv").write_text("\n".join(lines) + "\n")
