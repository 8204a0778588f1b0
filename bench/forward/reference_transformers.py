#!/usr/bin/env python3
"""transformers' LlavaForConditionalGeneration on the bench inputs, two ways:
  best     batch of B, inference_mode, SDPA attention, logits_to_keep=1 (as well as a user can)
  release  one sample at a time, full logits (how the released UQ-Merge pipeline calls it)
Inputs are made exactly as bench_forward.cpp makes them (see make_inputs). Prints key value lines.
  reference_transformers.py MODEL_DIR BATCH THREADS REPS"""
import sys
import time

import torch
from transformers import LlavaForConditionalGeneration

d, B, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = LlavaForConditionalGeneration.from_pretrained(d, dtype=torch.float32, attn_implementation="sdpa").eval()
cfg = model.config
P = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2


def make_inputs():
    # Text lengths 60, 70, 80, 90 (+P image tokens after 35 text tokens), ids (7 i + 13 b) mod 31000 + 100.
    seqs = []
    for b in range(B):
        n = 60 + 10 * (b % 4)
        ids = [(7 * i + 13 * b) % 31000 + 100 for i in range(n)]
        seqs.append(ids[:35] + [cfg.image_token_index] * P + ids[35:])
    T = max(len(s) for s in seqs)
    input_ids = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, s in enumerate(seqs):
        input_ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(B, 3, cfg.vision_config.image_size, cfg.vision_config.image_size, generator=g)
    return input_ids, mask, pixels, [len(s) for s in seqs]


ids, mask, px, lens = make_inputs()
rows = [319, 350, 315, 360, 382, 383]  # any fixed option rows
with torch.inference_mode():
    out = model(input_ids=ids, attention_mask=mask, pixel_values=px, logits_to_keep=0)  # warm-up + check values
    last = torch.stack([out.logits[b, lens[b] - 1, rows] for b in range(B)])
    print("checksum " + " ".join(f"{v:.6f}" for v in last.flatten().tolist()))
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        # Same tokens and cost as uqmerge's batch; logits_to_keep=1 keeps one position per row.
        model(input_ids=ids, attention_mask=mask, pixel_values=px, logits_to_keep=1)
        t.append(time.perf_counter() - a)
    print(f"best_seconds {min(t):.4f}")
    t = []
    for _ in range(max(1, reps // 2)):
        a = time.perf_counter()
        for b in range(B):
            n = lens[b]
            model(input_ids=ids[b:b + 1, :n], pixel_values=px[b:b + 1])
        t.append(time.perf_counter() - a)
    print(f"release_seconds {min(t):.4f}")
