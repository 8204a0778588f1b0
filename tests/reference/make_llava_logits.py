#!/usr/bin/env python3
"""Reference logits from transformers' LlavaForConditionalGeneration for tiny random models.

For each case writes OUT/<case>/ (the checkpoint, in the case's layout) and
OUT/<case>/reference.safetensors with:
  pixel_values  [N, 3, S, S] fp32       input images (already normalised)
  input_ids     [B, T] int64            right-padded; image tokens expanded (llava-hf style)
  lengths       [B] int64               real tokens per row
  image_rows    [B] int64               which pixel_values row each sequence shows
  vision        [N, P, Hv] fp32         CLIP hidden state vision_feature_layer, CLS dropped
  image_embeds  [N, P, Ht] fp32         after the projector
  logits        [B, T, V] fp32          transformers' logits (eval mode, fp32 compute)
OUT/cases.json lists the cases with their layout and the image token id.
The C++ test (test_reference_model.cpp) must match logits within 1e-4 (fp32 compute).
"""
import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import LlavaConfig, LlavaForConditionalGeneration

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
cases = {}


def text(**kw):
    d = dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
             intermediate_size=128, vocab_size=200, rms_norm_eps=1e-5, max_position_embeddings=256)
    d.update(kw)
    return d


def vision(**kw):
    d = dict(model_type="clip_vision_model", hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
             intermediate_size=64, image_size=28, patch_size=14)
    d.update(kw)
    return d


def rename(sd, rules):
    out = {}
    for k, v in sd.items():
        for pat, rep in rules:
            if re.match(pat, k):
                k = re.sub(pat, rep, k)
                break
        out[k] = v.contiguous()
    return out


NEW_NAMES = [(r"^language_model\.model\.", "model.language_model."), (r"^language_model\.lm_head\.", "lm_head."),
             (r"^vision_tower\.", "model.vision_tower.vision_model."),
             (r"^multi_modal_projector\.", "model.multi_modal_projector.")]


def make_case(name, tcfg, vcfg, layout="legacy", dtype=torch.float32, seed=0, extra=None):
    torch.manual_seed(seed)
    img_tok = tcfg["vocab_size"] - 1
    cfg = LlavaConfig(text_config=tcfg, vision_config=vcfg, image_token_index=img_tok, **(extra or {}))
    model = LlavaForConditionalGeneration(cfg).eval()
    # Larger-than-init weights so every layer matters in the comparison.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    d = OUT / name
    model.to(dtype).save_pretrained(d)  # transformers 5 writes language_model.model.* names
    if dtype != torch.float32:
        # Reference compute in fp32 from the bf16-rounded weights, loaded afresh so buffers
        # (RoPE inv_freq) are fp32 as in any fp32 run, not bf16 casts.
        model = LlavaForConditionalGeneration.from_pretrained(d, dtype=torch.float32).eval()
    if layout == "new":
        f = d / "model.safetensors"
        save_file(rename(load_file(str(f)), NEW_NAMES), str(f), metadata={"format": "pt"})
    elif layout == "original":
        sd = load_file(str(d / "model.safetensors"))
        lm, clip = {}, {}
        for k, v in sd.items():
            if k.startswith("vision_tower."):
                clip["vision_model." + k[len("vision_tower."):]] = v
            elif k.startswith("multi_modal_projector.linear_1."):
                lm["model.mm_projector.0." + k.split(".")[-1]] = v
            elif k.startswith("multi_modal_projector.linear_2."):
                lm["model.mm_projector.2." + k.split(".")[-1]] = v
            elif k.startswith("language_model.model."):
                lm["model." + k[len("language_model.model."):]] = v
            elif k == "language_model.lm_head.weight":
                lm["lm_head.weight"] = v
        save_file(lm, str(d / "model.safetensors"), metadata={"format": "pt"})
        (d / "clip").mkdir(exist_ok=True)
        save_file(clip, str(d / "clip" / "model.safetensors"), metadata={"format": "pt"})
        (d / "clip" / "config.json").write_text(json.dumps(dict(cfg.vision_config.to_dict(), model_type="clip_vision_model")))
        t = cfg.text_config.to_dict()
        t.update(architectures=["LlavaLlamaForCausalLM"], model_type="llava_llama", mm_vision_tower="clip",
                 mm_hidden_size=vcfg["hidden_size"], mm_projector_type="mlp2x_gelu", mm_vision_select_layer=-2,
                 mm_vision_select_feature="patch", image_aspect_ratio="pad")
        (d / "config.json").write_text(json.dumps(t))
    # Inputs: 3 sequences of different lengths, each with one image somewhere after some text.
    g = torch.Generator().manual_seed(seed + 1)
    S = vcfg["image_size"]
    P = (S // vcfg["patch_size"]) ** 2
    pixels = torch.randn(2, 3, S, S, generator=g)
    rows = [0, 1, 0]
    seqs = []
    for pre, post in [(3, 7), (1, 2), (5, 11)]:
        ids = torch.randint(0, img_tok, (pre + post,), generator=g).tolist()
        seqs.append(ids[:pre] + [img_tok] * P + ids[pre:])
    T = max(len(s) for s in seqs)
    input_ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, s in enumerate(seqs):
        input_ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    with torch.no_grad():
        vt = model.model.vision_tower(pixels, output_hidden_states=True)
        vis = vt.hidden_states[cfg.vision_feature_layer][:, 1:]
        emb = model.model.multi_modal_projector(vis)
        out = model(input_ids=input_ids, attention_mask=mask, pixel_values=pixels[rows])
    save_file({"pixel_values": pixels.contiguous(), "input_ids": input_ids, "lengths": mask.sum(1),
               "image_rows": torch.tensor(rows), "vision": vis.contiguous(), "image_embeds": emb.contiguous(),
               "logits": out.logits.float().contiguous()}, str(d / "reference.safetensors"))
    cases[name] = {"layout": layout, "image_token": img_tok, "image_tokens": P,
                   "vision_tower": "clip" if layout == "original" else None}


make_case("mha_legacy", text(), vision())
make_case("gqa_new_names", text(num_attention_heads=8, num_key_value_heads=2, num_hidden_layers=3, rope_theta=500000.0,
                                hidden_size=64, intermediate_size=96),
          vision(image_size=42, patch_size=14, num_hidden_layers=4, hidden_size=48, num_attention_heads=4), layout="new", seed=1)
make_case("tied_headdim", text(tie_word_embeddings=True, head_dim=32, num_attention_heads=4, num_key_value_heads=2),
          vision(image_size=32, patch_size=8), seed=2, extra={"tie_word_embeddings": True})
make_case("bf16_storage", text(), vision(), dtype=torch.bfloat16, seed=3)
make_case("original_layout", text(num_key_value_heads=2), vision(), layout="original", seed=4)
(OUT / "cases.json").write_text(json.dumps(cases, indent=1))
print(f"wrote {len(cases)} reference cases to {OUT}")
