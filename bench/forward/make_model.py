#!/usr/bin/env python3
"""A random LLaVA-1.5 checkpoint of realistic widths for bench/forward (fp32, llava-hf layout):
LLaMA width 4096 / 32 heads / MLP 11008 / vocab 32064 with LAYERS layers, CLIP-L (width 1024,
16 heads, MLP 4096, 336 px, patch 14) with VLAYERS layers. SEED draws the language model and
projector; the vision tower is the same for every SEED, as in LLaVA fine-tunes (the candidates
of scripts/device/gpu-cli-checks.sh differ by it).   make_model.py OUT [LAYERS] [VLAYERS] [SEED]"""
import sys
from pathlib import Path

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration

out = Path(sys.argv[1])
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
vlayers = int(sys.argv[3]) if len(sys.argv) > 3 else 4
if (out / "config.json").exists():
    sys.exit(0)
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
cfg = LlavaConfig(
    text_config=dict(model_type="llama", hidden_size=4096, num_hidden_layers=layers, num_attention_heads=32,
                     num_key_value_heads=32, intermediate_size=11008, vocab_size=32064, rms_norm_eps=1e-5,
                     max_position_embeddings=4096),
    vision_config=dict(model_type="clip_vision_model", hidden_size=1024, num_hidden_layers=vlayers,
                       num_attention_heads=16, intermediate_size=4096, image_size=336, patch_size=14),
    image_token_index=32000)
with torch.device("meta"):
    model = LlavaForConditionalGeneration(cfg)
model = model.to_empty(device="cpu")
tower, rest = torch.Generator().manual_seed(0), torch.Generator().manual_seed(seed)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.normal_(0, 0.02, generator=tower if "vision_tower" in name else rest)
model.eval().save_pretrained(out, max_shard_size="2GB")
print(f"saved {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters to {out}")
