#!/usr/bin/env python3
"""LLaMA-shaped fp16 checkpoints for bench/merge: a base and N fine-tunes (base + noise) of
~1.07 GB each (width 2048, 8 layers, MLP 5504, vocab 32000).   make_models.py OUT N"""
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

out, n = Path(sys.argv[1]), int(sys.argv[2])
if (out / f"m{n - 1}" / "config.json").exists():
    sys.exit(0)
torch.manual_seed(0)
cfg = LlamaConfig(hidden_size=2048, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16,
                  intermediate_size=5504, vocab_size=32000, torch_dtype="float16")
with torch.device("meta"):
    model = LlamaForCausalLM(cfg)
model = model.to_empty(device="cpu").to(torch.float16)
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.02)
model.save_pretrained(out / "base", max_shard_size="600MB")
base = {}
for f in sorted((out / "base").glob("*.safetensors")):
    base.update(load_file(str(f)))
for k in range(n):
    d = out / f"m{k}"
    d.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(k + 1)
    for f in sorted((out / "base").glob("*")):
        if f.suffix == ".safetensors":
            sd = load_file(str(f))
            sd = {name: (t.float() + torch.randn(t.shape, generator=g) * 0.002).to(torch.float16) for name, t in sd.items()}
            save_file(sd, str(d / f.name), metadata={"format": "pt"})
        else:
            (d / f.name).write_bytes(f.read_bytes())
print(f"{n} candidates + base in {out}")
