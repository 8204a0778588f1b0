#!/usr/bin/env python3
"""Tiny checkpoints saved by transformers itself, plus what transformers says about them.

Writes OUT/<name>/ model directories and OUT/manifest.json. For each checkpoint the manifest
holds the values transformers resolves from config.json (defaults applied), the parameter count
transformers' modules have, and the fp64 sum of a few tensors as stored on disk. The C++ tests
(tests/reference/test_reference_checkpoints.cpp) must agree with all of it.

Layouts: llava-hf as transformers 5 saves it (model.language_model.*), the older llava-hf names
(language_model.model.*: renamed the way transformers' own checkpoint conversion maps them),
original LLaVA (LlavaLlamaForCausalLM + a separate CLIP directory), a text-only LLaMA, bf16
storage, sharded with an index, and config files that lean on transformers' defaults.
"""
import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoConfig, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM,
                          LlavaConfig, LlavaForConditionalGeneration)

torch.manual_seed(0)
OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
manifest = {}

TEXT = dict(model_type="llama", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=64, vocab_size=130, rms_norm_eps=1e-5)
VISION = dict(model_type="clip_vision_model", hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
              intermediate_size=32, image_size=28, patch_size=14)


def resolved(text_cfg, vision_cfg, arch, extra=None):
    t, v = text_cfg, vision_cfg
    rope = getattr(t, "rope_parameters", None) or {}
    d = {
        "arch": arch,
        "text": {"vocab_size": t.vocab_size, "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
                 "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
                 "num_key_value_heads": t.num_key_value_heads,
                 "head_dim": getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads,
                 "rms_norm_eps": t.rms_norm_eps, "rope_theta": rope.get("rope_theta", getattr(t, "rope_theta", None)),
                 "tie_word_embeddings": bool(t.tie_word_embeddings)},
    }
    if v is not None:
        d["vision"] = {"hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                       "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                       "image_size": v.image_size, "patch_size": v.patch_size, "layer_norm_eps": v.layer_norm_eps}
    d.update(extra or {})
    return d


def tensor_sums(dirpath, names):
    """fp64 sums of tensors as stored in the directory's safetensors files."""
    out = {}
    for f in sorted(Path(dirpath).glob("*.safetensors")):
        sd = load_file(str(f))
        for n in names:
            if n in sd:
                out[n] = float(sd[n].double().sum())
    assert len(out) == len(names), (dirpath, set(names) - set(out))
    return out


def nparams(model):
    return sum(p.numel() for p in model.parameters())


# --- llava-hf, fp32, GQA, as transformers 5 saves it ----------------------------------------
# transformers 5 writes the older names (language_model.model.*) on save; transformers 4.52-4.57
# wrote model.language_model.*: both generations exist on the Hub.
cfg = LlavaConfig(text_config=TEXT, vision_config=VISION, image_token_index=129)
model = LlavaForConditionalGeneration(cfg).eval()
dl = OUT / "llava_hf_legacy"
model.save_pretrained(dl)
names = sorted(load_file(str(dl / "model.safetensors")).keys())
assert any(n.startswith("language_model.model.") for n in names), names[:5]
probe = ["language_model.model.layers.1.self_attn.k_proj.weight", "multi_modal_projector.linear_1.bias",
         "vision_tower.embeddings.position_embedding.weight", "language_model.lm_head.weight"]
manifest["llava_hf_legacy"] = resolved(cfg.text_config, cfg.vision_config, "LlavaForConditionalGeneration",
                                       {"scheme": "llava_hf_legacy", "image_token_index": cfg.image_token_index,
                                        "parameters": nparams(model), "sums": tensor_sums(dl, probe)})

# --- the same weights under the newer names (model.language_model.*) --------------------------
# Renamed as transformers' conversion mapping for "llava" maps them, with the CLIP tower under
# vision_model. as transformers 4.x nested it.
rules = [(r"^language_model\.model\.", "model.language_model."), (r"^language_model\.lm_head\.", "lm_head."),
         (r"^vision_tower\.", "model.vision_tower.vision_model."),
         (r"^multi_modal_projector\.", "model.multi_modal_projector.")]
sd = load_file(str(dl / "model.safetensors"))
renamed = {}
for k, v in sd.items():
    for pat, rep in rules:
        if re.match(pat, k):
            k = re.sub(pat, rep, k)
            break
    renamed[k] = v
d = OUT / "llava_hf"
d.mkdir(exist_ok=True)
save_file(renamed, str(d / "model.safetensors"), metadata={"format": "pt"})
(d / "config.json").write_text((dl / "config.json").read_text())
# transformers must load the renamed file into the same weights (proves the renaming right).
again = LlavaForConditionalGeneration.from_pretrained(d).eval()
for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items()):
    assert n1 == n2 and torch.equal(p1, p2), n1
new_probe = {"model.language_model.layers.1.self_attn.k_proj.weight": probe[0],
             "model.multi_modal_projector.linear_1.bias": probe[1], "lm_head.weight": probe[3],
             "model.vision_tower.vision_model.embeddings.position_embedding.weight": probe[2]}
manifest["llava_hf"] = dict(manifest["llava_hf_legacy"], scheme="llava_hf",
                            sums={n: manifest["llava_hf_legacy"]["sums"][o] for n, o in new_probe.items()})

# --- llava-hf, bf16, sharded with an index, tied embeddings, MHA ------------------------------
text_tied = dict(TEXT, num_key_value_heads=4, tie_word_embeddings=True)
cfg_b = LlavaConfig(text_config=text_tied, vision_config=VISION, image_token_index=129, tie_word_embeddings=True)
model_b = LlavaForConditionalGeneration(cfg_b).to(torch.bfloat16).eval()
db = OUT / "llava_hf_bf16_sharded"
model_b.save_pretrained(db, max_shard_size="20KB")
assert (db / "model.safetensors.index.json").exists()
manifest["llava_hf_bf16_sharded"] = resolved(cfg_b.text_config, cfg_b.vision_config, "LlavaForConditionalGeneration",
                                             {"scheme": "llava_hf_legacy", "image_token_index": 129, "dtype": "BF16",
                                              "shards": len(list(db.glob("*.safetensors"))),
                                              "parameters": nparams(model_b),
                                              "sums": tensor_sums(db, ["language_model.model.embed_tokens.weight"])})

# --- original LLaVA: LLaMA + mm_projector, CLIP in its own directory --------------------------
clip_cfg = CLIPVisionConfig(**{k: v for k, v in VISION.items() if k != "model_type"})
clip = CLIPVisionModel(clip_cfg).eval()
dc = OUT / "clip_vision"
clip.save_pretrained(dc)
lcfg = LlamaConfig(**{k: v for k, v in TEXT.items() if k != "model_type"})
llama = LlamaForCausalLM(lcfg).eval()
do = OUT / "llava_original"
llama.save_pretrained(do)
sd = load_file(str(do / "model.safetensors"))
proj = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 32))
for k, v in proj.state_dict().items():
    sd["model.mm_projector." + k] = v.contiguous()
save_file(sd, str(do / "model.safetensors"), metadata={"format": "pt"})
c = json.loads((do / "config.json").read_text())
c.update(architectures=["LlavaLlamaForCausalLM"], model_type="llava_llama", mm_vision_tower="openai/clip-vit-large-patch14-336",
         mm_hidden_size=16, mm_projector_type="mlp2x_gelu", mm_vision_select_layer=-2, mm_vision_select_feature="patch",
         image_aspect_ratio="pad", mm_use_im_start_end=False)
(do / "config.json").write_text(json.dumps(c, indent=2))
manifest["llava_original"] = resolved(lcfg, clip_cfg, "LlavaLlamaForCausalLM",
                                      {"scheme": "llava_original", "vision_tower_dir": "clip_vision",
                                       "parameters": nparams(llama) + nparams(proj) + nparams(clip),
                                       "sums": tensor_sums(do, ["model.mm_projector.2.weight", "model.norm.weight"])})

# --- text-only LLaMA (mergekit's world) -------------------------------------------------------
dt = OUT / "llama"
llama.save_pretrained(dt)
manifest["llama"] = resolved(lcfg, None, "LlamaForCausalLM", {"scheme": "llama", "parameters": nparams(llama),
                                                                "sums": tensor_sums(dt, ["lm_head.weight"])})

# --- configs leaning on defaults (no weights): what transformers resolves ---------------------
cfgs = {
    # A real llava-hf 7B config states only what differs from the defaults.
    "defaults_llava_hf_7b": {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
                             "ignore_index": -100, "image_token_index": 32000, "projector_hidden_act": "gelu",
                             "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
                                             "max_position_embeddings": 4096, "model_type": "llama",
                                             "rms_norm_eps": 1e-05, "torch_dtype": "float16", "vocab_size": 32064},
                             "torch_dtype": "float16", "vision_config": {"hidden_size": 1024, "image_size": 336,
                                                                         "intermediate_size": 4096, "model_type": "clip_vision_model",
                                                                         "num_attention_heads": 16, "num_hidden_layers": 24,
                                                                         "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
                             "vision_feature_layer": -2, "vision_feature_select_strategy": "default"},
    "defaults_llava_empty_vision": {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
                                    "text_config": {"model_type": "llama"}, "vision_config": {"model_type": "clip_vision_model"}},
    "defaults_llama_theta": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "rope_theta": 500000.0,
                             "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 2},
}
for name, cj in cfgs.items():
    dd = OUT / name
    dd.mkdir(exist_ok=True)
    (dd / "config.json").write_text(json.dumps(cj))
    ac = AutoConfig.from_pretrained(dd)
    if cj["model_type"] == "llava":
        manifest[name] = resolved(ac.text_config, ac.vision_config, "LlavaForConditionalGeneration",
                                  {"config_only": True, "image_token_index": ac.image_token_index})
    else:
        manifest[name] = resolved(ac, None, "LlamaForCausalLM", {"config_only": True})

(OUT / "manifest.json").write_text(json.dumps(manifest, indent=1))
print(f"wrote {len(manifest)} reference checkpoints/configs to {OUT}")
