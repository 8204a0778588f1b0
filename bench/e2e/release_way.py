#!/usr/bin/env python3
"""UQ-Merge the way the authors' release runs it (UNITES-Lab/UQ-Merge: VLM-Uncertainty-Bench for
the uncertainty, mergekit-yaml for the merges), scripted on the job of a uqmerge config, so that
bench/e2e/run.sh can time it beside `uqmerge run` on the same candidates, rows, J and seed.

  release_way.py CONFIG.yaml --out DIR [--limit N]

What it does, as the release does it (file:line of the release in bench/e2e/README.md):
  uncertainty  per candidate: load it with transformers (LlavaForConditionalGeneration, the
               config's dtype), attention dropout p on the LLaMA attention and model.train();
               per sample and per perturbation j = 1..J one forward, batch 1, full logits:
               torchvision AugMix on the uint8 image, then "pad" preprocessing, one of the nine
               appendix-B.1 sentences (numpy's RNG) prepended to the whole templated prompt;
               softmax over the option letters' logits at the last position;
               uq = H(mean_j p_j) - mean_j H(p_j) per sample; mean per dataset; mean of those.
  Algorithm 1  order by descending uncertainty; for t = 2..N write a mergekit YAML of the first t
               (linear, weight 1 each: their average; merge.schedule cascade: step t-1's output
               1:1 with model t), run mergekit-yaml (merged model written to disk), reload it
               with transformers and measure it as above; pick the lowest (global_min over
               t = 1..N; early_stop with the config's patience is reported too).
Prints per-stage wall times and the total; writes DIR/result.json and DIR/steps/step_TTT/.
Not the release: its fp16 on CUDA (this runs the config's dtype on the config's device), its
A-F softmax for every row (here: the letters the row shows, as uqmerge scores them), and its
unseeded torch RNG (seeded here from the config's seed).
"""
import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

try:
    from torchvision.transforms import v2 as T
except ImportError:  # the release needs torchvision; without it AugMix is skipped (said below)
    T = None

from transformers import AutoConfig, CLIPImageProcessor, LlamaTokenizer, LlavaForConditionalGeneration
from transformers.utils import logging as hf_logging

# The nine sentences of the paper's appendix B.1, one prepended to the prompt per perturbation.
PROMPTS = [
    "you are a helpful assistant", "you are a question-answering assistant", "you are a nice assistant",
    "You are a helpful assistant", "You are a question-answering assistant", "You are a nice assistant",
    "You are a helpful assistant.", "You are a question-answering assistant.", "You are a nice assistant.",
]
SYSTEMS = {  # LLaVA's conversation templates (SeparatorStyle.TWO, sep " ")
    "llava_v1": "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                "helpful, detailed, and polite answers to the human's questions.",
    "vicuna_v1": "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.",
}
EXTRA = ["I don't know", "None of the above"]
NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
      "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}  # what pandas reads as missing
MERGEKIT_ARCH = "LlavaLlamaForCausalLM"  # the release's checkpoints' class (see mergekit_view)


def log(msg):
    print(f"[release-way] {msg}", flush=True)


# ---- the job ----------------------------------------------------------------------------------

def load_job(path):
    path = Path(path).resolve()
    cfg = yaml.safe_load(path.read_text())
    base = path.parent

    def ab(p):
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    cands = []
    for c in cfg.get("candidates", cfg.get("models", [])):
        c = {"model": c} if isinstance(c, str) else c
        cands.append({"name": c.get("name", Path(c["model"]).name), "model": ab(c["model"])})
    uq = cfg.get("uq", {})
    merge = cfg.get("merge", {})
    sel = cfg.get("selection", {})
    text = uq.get("text_perturbation", "prepend_prompt")
    if text not in ("prepend_prompt", "none"):
        sys.exit(f"release_way.py: uq.text_perturbation {text}: the release prepends the sentence (prepend_prompt)")
    if uq.get("template", "llava_v1") not in SYSTEMS:
        sys.exit(f"release_way.py: uq.template {uq['template']}: llava_v1 or vicuna_v1")
    if sel.get("order", "descending") != "descending":
        sys.exit("release_way.py: selection.order must be descending (Algorithm 1)")
    dsets = []
    for d in uq.get("datasets", []):
        if d.get("pad_options_to"):
            sys.exit(f"release_way.py: dataset {d['name']}: pad_options_to is not supported")
        dsets.append({"name": d["name"], "path": ab(d["path"]), "limit": d.get("limit"),
                      "extra": d.get("extra_options", True)})
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.get("dtype", "float32")]
    dev = cfg.get("device", "auto")
    device = "cuda" if dev in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    return dict(
        candidates=cands, datasets=dsets, seed=int(cfg.get("seed", 1234)), dtype=dtype, device=device,
        J=int(uq.get("perturbations", 4)), R=int(uq.get("repeats", 1)), p=float(uq.get("attention_dropout", 0.1)),
        text=text, image=bool(uq.get("image_perturbation", True)), template=uq.get("template", "llava_v1"),
        augmix=uq.get("augmix", {}), method=merge.get("method", "linear"), schedule=merge.get("schedule", "uniform"),
        merge_params=merge.get("parameters"), base_model=ab(cfg["base_model"]) if cfg.get("base_model") else None,
        rule=sel.get("rule", "global_min"), patience=int(sel.get("patience", 1)))


def read_tsv(path, limit):
    """A VLMEvalKit TSV as the release's data code sees it: option columns A.. until the first
    missing one, hint when present, images by base64 (or another row's index) or image_path."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, l.split("\t"))) for l in lines[1:] if l.strip()]
    by_index = {r["index"]: r for r in rows if "index" in r}
    out = []
    for r in rows[: limit if limit is not None and limit >= 0 else None]:
        opts = []
        for c in "ABCDEFGH":
            if c not in r or r[c] in NA:
                break
            opts.append(r[c])
        if "image" in r:
            cell = r["image"]
            if len(cell) <= 64:
                cell = by_index[cell]["image"]
            img = Image.open(io.BytesIO(base64.b64decode(cell))).convert("RGB")
        else:
            img = Image.open(Path(path).parent / r["image_path"]).convert("RGB")
        hint = r.get("hint", "")
        out.append({"question": r["question"], "hint": "" if hint in NA else hint, "options": opts, "image": img})
    return out


# ---- one model's uncertainty (VLM-Uncertainty-Bench main.py + input_utils/text_utils.py) --------

class Measurer:
    def __init__(self, job, datasets):
        self.job, self.datasets = job, datasets
        first = job["candidates"][0]["model"]
        self.tok = LlamaTokenizer.from_pretrained(first)
        self.proc = CLIPImageProcessor.from_pretrained(first)
        a = job["augmix"]
        self.augmix = None
        if job["image"] and T is not None:
            self.augmix = T.AugMix(severity=a.get("severity", 3), mixture_width=a.get("mixture_width", 3),
                                   chain_depth=a.get("chain_depth", -1), alpha=a.get("alpha", 1.0),
                                   all_ops=a.get("all_ops", True))
        elif job["image"]:
            log("torchvision is not importable: AugMix is SKIPPED (image perturbation off on this side)")

    def load(self, path):
        cfg = AutoConfig.from_pretrained(path)
        # The release passes attention_dropout=p to LLaVA's from_pretrained, where the config is
        # LLaMA's; transformers' LlavaConfig keeps the LLaMA settings in text_config.
        cfg.text_config.attention_dropout = self.job["p"]
        model = LlavaForConditionalGeneration.from_pretrained(path, config=cfg, dtype=self.job["dtype"])
        model.to(self.job["device"])
        if self.job["p"] > 0:
            model.train()  # as the release: dropout is live in the forward passes
        else:
            model.eval()
        return model

    def pixel_values(self, img):
        # LLaVA's process_images with image_aspect_ratio "pad": square on the CLIP mean, then CLIP.
        w, h = img.size
        side = max(w, h)
        sq = Image.new("RGB", (side, side), tuple(int(x * 255) for x in self.proc.image_mean))
        sq.paste(img, ((side - w) // 2, (side - h) // 2))
        return self.proc(images=sq, return_tensors="pt")["pixel_values"]

    def prompt(self, row):
        opts = row["options"] + (EXTRA if row["extra"] else [])
        letters = [chr(65 + i) for i in range(len(opts))]
        qs = (row["hint"] + "\n" if row["hint"] else "") + row["question"]
        for l, o in zip(letters, opts):
            qs += "\n" + l + ". " + o
        qs += "\n" + "Answer with the option's letter from the given choices directly."
        return SYSTEMS[self.job["template"]] + " USER: <image>\n" + qs + " ASSISTANT:", letters

    def measure(self, model):
        """Mean over datasets of the mean per-sample H(mean p) - mean H(p)."""
        cfg = model.config
        n_img = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
        J, R = self.job["J"], self.job["R"]
        means = {}
        for d in self.datasets:
            vals = []
            for row in d["rows"]:
                body, letters = self.prompt({**row, "extra": d["extra"]})
                option_ids = [self.tok.encode(l)[-1] for l in letters]
                reps = []
                for _ in range(R):
                    ps = []
                    for _ in range(J):
                        img = row["image"]
                        if self.augmix is not None:
                            img = T.functional.to_pil_image(self.augmix(T.functional.pil_to_tensor(img)))
                        text = body if self.job["text"] == "none" else np.random.choice(PROMPTS) + body
                        ids = []
                        for t in self.tok(text).input_ids:
                            ids.extend([cfg.image_token_index] * n_img if t == cfg.image_token_index else [t])
                        with torch.no_grad():
                            out = model(input_ids=torch.tensor([ids], device=self.job["device"]),
                                        pixel_values=self.pixel_values(img).to(self.job["device"], self.job["dtype"]))
                        logits = out.logits[0, -1].float()  # full logits [1, n, vocab] were computed
                        ps.append(torch.softmax(logits[option_ids].double(), -1).cpu().numpy())
                    ps = np.array(ps)
                    reps.append(entropy(ps.mean(0)) - np.mean([entropy(p) for p in ps]))
                vals.append(float(np.mean(reps)))
            vals = np.array(vals)
            means[d["name"]] = float(vals[~np.isnan(vals)].mean())
        return float(np.mean(list(means.values()))), means


def entropy(p):
    return float(-(p * np.log(p + 1e-10)).sum())


# ---- merges (mergekit/average_merging.py, multi_stage_merging.py) ------------------------------

def mergekit_view(src, dst):
    """mergekit 0.1.5 + transformers 5 infer llava-hf checkpoints' tensors under transformers' new
    names, find none of the language model's or the vision tower's in the legacy-layout files and
    write only the 4 projector tensors (no error). Checkpoints of the release's own class
    (LlavaLlamaForCausalLM, unknown to transformers) make mergekit use the files' names, as it
    did for the release: a view of the checkpoint (links) with that class name in config.json."""
    if dst.exists():
        return dst
    dst.mkdir(parents=True)
    for f in Path(src).iterdir():
        if f.name != "config.json":
            (dst / f.name).symlink_to(f.resolve())
    cfg = json.loads((Path(src) / "config.json").read_text())
    cfg["architectures"] = [MERGEKIT_ARCH]
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    return dst


def tensor_names(d):
    from safetensors import safe_open

    names = set()
    for f in Path(d).glob("*.safetensors"):
        with safe_open(str(f), "pt") as h:
            names.update(h.keys())
    return names


def run_mergekit(recipe, out_dir, config_src, logf):
    yml = out_dir.with_suffix(".yml")
    yml.write_text(yaml.safe_dump(recipe, sort_keys=False))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    mk = shutil.which("mergekit-yaml") or str(Path(sys.executable).parent / "mergekit-yaml")
    r = subprocess.run([mk, str(yml), str(out_dir), "--quiet"], stdout=logf, stderr=logf,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if r.returncode:
        sys.exit(f"release_way.py: mergekit-yaml {yml} failed (rc {r.returncode}); log: {logf.name}")
    # Guard against the silent drop described in mergekit_view: every tensor must be there.
    want, got = tensor_names(config_src), tensor_names(out_dir)
    if want != got:
        sys.exit(f"release_way.py: mergekit-yaml wrote {len(got)} of the {len(want)} tensors to {out_dir}")
    # The merged model keeps the candidates' real config (mergekit copied the view's).
    shutil.copy(Path(config_src) / "config.json", out_dir / "config.json")
    for f in ("preprocessor_config.json", "processor_config.json"):
        if (Path(config_src) / f).exists():
            shutil.copy(Path(config_src) / f, out_dir / f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="a uqmerge YAML config (candidates, uq, merge, selection, seed)")
    ap.add_argument("--out", required=True, help="work directory (merged steps, result.json)")
    ap.add_argument("--limit", type=int, default=None, help="at most N rows per dataset (the first N)")
    args = ap.parse_args()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if os.environ.get("RELEASE_THREADS"):  # torch's default (all cores) unless set
        torch.set_num_threads(int(os.environ["RELEASE_THREADS"]))
    t_all = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = dict(read_s=0.0, candidate_load_s=0.0, candidate_uq_s=0.0, merge_s=0.0, step_load_s=0.0, step_uq_s=0.0)

    t0 = time.perf_counter()
    job = load_job(args.config)
    np.random.seed(job["seed"])
    torch.manual_seed(job["seed"])
    for d in job["datasets"]:
        caps = [x for x in (args.limit, d["limit"]) if x is not None and x >= 0]
        d["rows"] = read_tsv(d["path"], min(caps) if caps else None)
    meas = Measurer(job, job["datasets"])
    stages["read_s"] = time.perf_counter() - t0
    N = len(job["candidates"])
    log(f"{N} candidates; " + ", ".join(f"{d['name']} {len(d['rows'])} rows" for d in job["datasets"])
        + f"; J = {job['J']}, R = {job['R']}, attention_dropout {job['p']}, AugMix "
        + ("on (torchvision)" if meas.augmix is not None else "off") + f"; {job['dtype']} on {job['device']}, "
        + f"{torch.get_num_threads()} torch threads; merge {job['method']} ({job['schedule']})")

    # 1. every candidate's uncertainty
    cands = []
    for c in job["candidates"]:
        t0 = time.perf_counter()
        model = meas.load(c["model"])
        tl = time.perf_counter() - t0
        t0 = time.perf_counter()
        u, per = meas.measure(model)
        tu = time.perf_counter() - t0
        del model
        stages["candidate_load_s"] += tl
        stages["candidate_uq_s"] += tu
        cands.append({"name": c["name"], "uq": u, "datasets": per, "load_s": tl, "uq_s": tu})
        log(f"candidate {c['name']}: uq {u:.6g}  (load {tl:.2f} s, uq {tu:.2f} s)")

    # 2. descending order (stable, as uqmerge's order_candidates)
    order = sorted(range(N), key=lambda i: -cands[i]["uq"])
    log("order: " + ", ".join(cands[i]["name"] for i in order))

    # 3. merges of the first t, each written by mergekit-yaml, reloaded and measured
    curve = [cands[order[0]]["uq"]]
    steps = [{"t": 1, "members": [order[0]], "uq": curve[0], "merge_s": 0.0, "load_s": 0.0, "uq_s": 0.0}]
    (out / "steps").mkdir(exist_ok=True)
    views = out / "mergekit-views"
    logf = open(out / "mergekit.log", "w")
    first = job["candidates"][order[0]]["model"]
    for t in range(2, N + 1):
        step_dir = out / "steps" / f"step_{t:03d}"
        t0 = time.perf_counter()
        members = [job["candidates"][i] for i in order[:t]]
        view = lambda c: str(mergekit_view(c["model"], views / c["name"]))  # noqa: E731
        if job["schedule"] == "cascade":  # multi_stage_merging.py: step t-1's output 1:1 with model t
            pair = members[:2] if t == 2 else [{"name": f"step_{t - 1:03d}", "model": out / "steps" / f"step_{t - 1:03d}"},
                                                members[-1]]
            models = [{"model": view(c), "parameters": {"weight": 1}} for c in pair]
        else:  # average_merging.py: the first t, weight 1 each (mergekit normalises: their mean)
            models = [{"model": view(c), "parameters": {"weight": 1}} for c in members]
        recipe = {"models": models, "merge_method": job["method"]}
        if job["method"] != "linear" and job["base_model"]:
            recipe["base_model"] = str(mergekit_view(job["base_model"], views / "base"))
        if job["merge_params"]:
            recipe["parameters"] = job["merge_params"]
        run_mergekit(recipe, step_dir, first, logf)
        tm = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = meas.load(step_dir)
        tl = time.perf_counter() - t0
        t0 = time.perf_counter()
        u, per = meas.measure(model)
        tu = time.perf_counter() - t0
        del model
        stages["merge_s"] += tm
        stages["step_load_s"] += tl
        stages["step_uq_s"] += tu
        curve.append(u)
        steps.append({"t": t, "members": order[:t], "uq": u, "datasets": per, "merge_s": tm, "load_s": tl, "uq_s": tu})
        log(f"step {t} (+{cands[order[t - 1]]['name']}): uq {u:.6g}  (mergekit-yaml {tm:.2f} s, reload {tl:.2f} s, uq {tu:.2f} s)")
    logf.close()

    # 4. the lowest (global_min); early_stop as uqmerge records it
    gmin = int(np.argmin(curve)) + 1
    best, rises = 0, 0
    for t in range(1, len(curve)):
        rises = rises + 1 if curve[t] > curve[t - 1] else 0
        if curve[t] < curve[best]:
            best = t
        if rises >= job["patience"]:
            break
    estop = best + 1
    chosen = estop if job["rule"] == "early_stop" else gmin
    total = time.perf_counter() - t_all
    log(f"chosen step ({job['rule']}): {chosen}  (global_min {gmin}, early_stop {estop}); merged model: "
        + (str(out / "steps" / f"step_{chosen:03d}") if chosen > 1 else job["candidates"][order[0]]["model"].as_posix()))
    print("\n| stage (release way) | seconds |\n|---|---|")
    for k, v in stages.items():
        print(f"| {k[:-2].replace('_', ' ')} | {v:.2f} |")
    print(f"| total | {total:.2f} |")
    (out / "result.json").write_text(json.dumps({
        "candidates": cands, "order": order, "curve": curve, "steps": steps, "chosen_step": chosen,
        "global_min_step": gmin, "early_stop_step": estop, "rule": job["rule"], "stages": stages, "total_s": total,
        "augmix": meas.augmix is not None, "threads": torch.get_num_threads(), "device": job["device"],
        "J": job["J"], "R": job["R"], "attention_dropout": job["p"], "seed": job["seed"]}, indent=1))


if __name__ == "__main__":
    main()
