#!/usr/bin/env python3
"""An independent check of the final number: every sample's UQ = H(mean_j p_j) - mean_j H(p_j)
that `uqmerge uq` wrote, recomputed from results.h5's recorded perturbation plan
(/plan/<dataset>/text_prompt and the prompt strings) with transformers alone: the release's
text perturbation (the sentence prepended to the whole templated prompt, no separator), the
llava_v1 prompt with the extra options, PIL pad preprocessing, LlamaTokenizer, softmax over
the option letters' logits at the last position, natural log. A second run adds AugMix: every
image is rebuilt from the draws results.h5 records (/plan/<dataset>/augmix_*) with
torchvision.transforms.v2's own op kernels and its mixing. Attention dropout stays off: its
masks live inside uqmerge's attention and transformers cannot take them (docs/decisions.md).
  check_final_uq.py UQMERGE_BINARY UQ_CASE_DIR WORK
Prints 'N passed, M failed'."""
import base64
import io
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from transformers import LlamaTokenizer, LlavaForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, expand_image_token, llava_v1_prompt, pad_preprocess, summary, text  # noqa: E402

uq_bin, case, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if work.exists():
    shutil.rmtree(work)
shutil.copytree(case, work, ignore=shutil.ignore_patterns("run_*"))
J, R = 4, 2
config = f"""output_dir: run_final
seed: 11
threads: 1
candidates:
  - model: cand_a
  - model: cand_b
uq:
  perturbations: {J}
  repeats: {R}
  attention_dropout: 0.0
  text_perturbation: prepend_prompt
  image_perturbation: false
  batch_size: 3
  cache_memory_mb: 0
  datasets:
    - {{name: Plain, path: data.tsv}}
"""
(work / "config_final.yaml").write_text(config)
(work / "config_single.yaml").write_text(config.replace(f"repeats: {R}", "repeats: 1").replace("run_final", "run_single"))
(work / "config_augmix.yaml").write_text(config.replace(f"repeats: {R}", "repeats: 1").replace("run_final", "run_augmix")
                                         .replace("image_perturbation: false", "image_perturbation: true"))
for c in ("config_final.yaml", "config_single.yaml", "config_augmix.yaml"):
    r = subprocess.run([uq_bin, "uq", "-c", c], cwd=work, capture_output=True, text=True)
    if r.returncode:
        print(r.stderr[-2000:])
        check(False, f"uqmerge uq -c {c}: rc {r.returncode}")
        sys.exit(summary())

# The TSV as VLMEvalKit defines it: empty option cells are absent; a short image cell is the
# index of the row holding the image.
lines = (work / "data.tsv").read_text().splitlines()
head = lines[0].split("\t")
rows = [dict(zip(head, l.split("\t"))) for l in lines[1:]]
by_index = {row["index"]: row for row in rows}


def image_of(row):
    cell = row["image"]
    if len(cell) <= 64:
        cell = by_index[cell]["image"]
    return Image.open(io.BytesIO(base64.b64decode(cell)))


def entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


AUG = v2.AugMix()
AUG_SPACE = AUG._AUGMENTATION_SPACE


def replay_augmix(image, grp, op_names, i, j):
    """torchvision's AugMix on `image` (PIL) with the recorded draw (i, j): the same ops and
    magnitude bins through AugMix's own dispatch, mixed in float32 and truncated as it does."""
    img = torch.from_numpy(np.asarray(image.convert("RGB"))).permute(2, 0, 1).contiguous()
    H, W = img.shape[1:]
    m0, m1 = grp["augmix_mix"][i, j]
    mix = img.float() * np.float32(m0)
    for c, w in enumerate(grp["augmix_weights"][i, j]):
        aug = img
        for k in range(grp["augmix_op"].shape[3]):
            op = int(grp["augmix_op"][i, j, c, k])
            if op < 0:
                break
            name = op_names[op]
            fn, signed = AUG_SPACE[name]
            mags = fn(AUG._PARAMETER_MAX, H, W)
            mag = float(mags[int(grp["augmix_level"][i, j, c, k])]) if mags is not None else 0.0
            if signed and int(grp["augmix_sign"][i, j, c, k]) < 0:
                mag = -mag
            aug = AUG._apply_image_or_video_transform(aug, name, mag, interpolation=AUG.interpolation, fill=AUG._fill)
        mix.add_(aug.float() * np.float32(w * m1))
    return Image.fromarray(mix.to(torch.uint8).permute(1, 2, 0).numpy())


def reference_uq(model, tok, prompts, tp, J, R, augmix=None):
    """Per repeat and sample, H(mean_j p_j) - mean_j H(p_j) with transformers: [R, samples]."""
    cfg = model.config
    size, patch = cfg.vision_config.image_size, cfg.vision_config.patch_size
    out = np.zeros((R, len(rows)))
    for i, row in enumerate(rows):
        options = [row[c] for c in "ABCDEFGH" if c in row and row[c] != ""]
        image = image_of(row)
        px = pad_preprocess(image, size)
        body, letters = llava_v1_prompt(row["question"], options, row.get("hint", ""))
        option_ids = [tok(l).input_ids[-1] for l in letters]
        for rep in range(R):
            ps = []
            for j in range(rep * J, (rep + 1) * J):
                ids = expand_image_token(tok(prompts[tp[i, j]] + body).input_ids, cfg.image_token_index, (size // patch) ** 2)
                if augmix is not None:
                    px = pad_preprocess(replay_augmix(image, *augmix, i, j), size)
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([ids]), pixel_values=px).logits[0, -1, option_ids].double()
                ps.append(torch.softmax(logits, -1).numpy())
            ps = np.array(ps)
            out[rep, i] = entropy(ps.mean(0)) - np.mean([entropy(p) for p in ps])
    return out


single = h5py.File(work / "run_single" / "results.h5")
with h5py.File(work / "run_final" / "results.h5") as h5:
    plan = h5["plan"]
    prompts = [text(plan.attrs[f"prompt_{k}"]) for k in range(int(plan.attrs["prompt_count"]))]
    check(len(prompts) == 9 and text(plan.attrs["text_perturbation"]) == "prepend_prompt" and int(plan.attrs["perturbations"]) == J
          and int(plan.attrs["repeats"]) == R, f"/plan records the 9 prompts of appendix B.1, prepend_prompt, J = {J}, R = {R}")
    tp = plan["Plain"]["text_prompt"][()]
    check(tp.shape == (len(rows), J * R) and tp.min() >= 0 and tp.max() < 9 and len(np.unique(tp)) > 1,
          f"/plan/Plain/text_prompt is [{len(rows)}, J x R = {J * R}] prompt indices ({len(np.unique(tp))} distinct)")
    check(np.array_equal(single["plan/Plain/text_prompt"][()], tp[:, :J]), "repeat 0's draws are the single run's")
    for m, cand in enumerate(["cand_a", "cand_b"]):
        got = h5[f"uq/model_{m:03d}/Plain/uq"][()]
        reps = h5[f"uq/model_{m:03d}/Plain/uq_repeats"][()]
        # Repeat 0 draws what the single run draws; its batches hold other (sample, j) pairs, so
        # padding and reduction order differ: equal to float rounding, not bit for bit.
        d0 = np.abs(reps[0] - single[f"uq/model_{m:03d}/Plain/uq"][()]).max()
        check(reps.shape == (R, len(rows)) and d0 <= 1e-7 and np.allclose(got, reps.mean(0), rtol=0, atol=1e-15)
              and np.abs(reps[1] - reps[0]).max() > 1e-4,
              f"{cand}: uq_repeats [{R}, {len(rows)}], repeat 0 = the single run (max diff {d0:.1e}), repeat 1 differs, "
              "uq = their mean")
        model = LlavaForConditionalGeneration.from_pretrained(work / cand, torch_dtype=torch.float32).eval()
        tok = LlamaTokenizer.from_pretrained(work / cand)
        worst = np.abs(reference_uq(model, tok, prompts, tp, J, R) - reps).max()
        check(worst <= 1e-5, f"{cand}: {len(rows)} samples x J = {J} x R = {R}, max |uqmerge - transformers| of "
                             f"H(mean p) - mean H(p) = {worst:.2e}")

# AugMix on: the recorded draws replayed with torchvision.
with h5py.File(work / "run_augmix" / "results.h5") as h5:
    plan = h5["plan"]
    grp = plan["Plain"]
    op_names = [text(plan.attrs[f"augmix_op_{k}"]) for k in range(len(AUG_SPACE))]
    ops = grp["augmix_op"][()]
    check(op_names == list(AUG_SPACE) and int(plan.attrs["augmix_severity"]) == 3 and int(plan.attrs["augmix_mixture_width"]) == 3
          and ops.shape == (len(rows), J, 3, 3) and np.allclose(grp["augmix_weights"][()].sum(-1), 1)
          and np.allclose(grp["augmix_mix"][()].sum(-1), 1) and len(np.unique(ops[ops >= 0])) >= 8,
          f"/plan/Plain/augmix_* records every draw: torchvision's 13 op names, {len(np.unique(ops[ops >= 0]))} ops used, "
          "Dirichlet weights summing to 1")
    tp = grp["text_prompt"][()]
    for m, cand in enumerate(["cand_a", "cand_b"]):
        got = h5[f"uq/model_{m:03d}/Plain/uq"][()]
        model = LlavaForConditionalGeneration.from_pretrained(work / cand, torch_dtype=torch.float32).eval()
        tok = LlamaTokenizer.from_pretrained(work / cand)
        want = reference_uq(model, tok, prompts, tp, J, 1, augmix=(grp, op_names))[0]
        worst = np.abs(want - got).max()
        plain = np.abs(single[f"uq/model_{m:03d}/Plain/uq"][()] - got).max()
        check(worst <= 1e-5 and plain > 1e-3,
              f"{cand} with AugMix: {len(rows)} samples x J = {J}, max |uqmerge - transformers + torchvision replay| = "
              f"{worst:.2e} (AugMix moves UQ by up to {plain:.2e})")
sys.exit(summary())
