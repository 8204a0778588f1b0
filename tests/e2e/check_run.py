#!/usr/bin/env python3
"""Checks an `uqmerge run` (Algorithm 1) output: results.h5's /run group (order by descending
candidate uncertainty, per-step uncertainties, both selection rules recomputed here), and the
merged model: transformers loads it with no missing, unexpected or mismatched weight (nothing
newly initialised), every weight it loaded equals the file's tensor, and, for a linear merge of
the chosen step, the tensors equal the average of the members' in results.h5's merge order
(computed here from the candidates' files); its option logits from `uqmerge answer` equal
transformers' on the same files (answer_reference.py); the baselines and accuracy groups the
config (results.h5 /config yaml) asks for are present and consistent with the per-candidate
numbers, and no other is.
  check_run.py OUTPUT_DIR CASE_DIR [UQMERGE_BINARY IMAGE]"""
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, summary, text  # noqa: E402

out, case = Path(sys.argv[1]), Path(sys.argv[2])
f = h5py.File(out / "results.h5", "r")
cfg = yaml.safe_load(text(f["config"].attrs["yaml"]))
run = f["run"]
cand_u = [f["uq"][k].attrs["uq_macro"] for k in sorted(f["uq"])]
names = [text(f["uq"][k].attrs["name"]) for k in sorted(f["uq"])]
order = list(run["order"][()])
check(order == sorted(range(len(cand_u)), key=lambda i: -cand_u[i]), f"order by descending uncertainty {order}")
steps = run["step_uq_macro"][()]
check(len(steps) == len(cand_u) and abs(steps[0] - cand_u[order[0]]) < 1e-12, "step 1 reuses the first candidate's value")
gm = int(np.argmin(steps)) + 1
check(int(run.attrs["global_min_step"]) == gm, f"global_min = step {gm}")
check(int(run.attrs["chosen_step"]) == gm, "the chosen step follows rule global_min")
members = [names[i] for i in order[:gm]]

def load_dir(d):
    t = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        t.update(load_file(str(f)))
    return t


merged = load_dir(out / "merged")
if gm > 1:
    ins = [load_dir(case / m) for m in members]
    diff = max((merged[k].double() - sum(t[k].double() for t in ins) / len(ins)).abs().max().item() for k in merged)
    check(diff <= 1e-6, f"merged = mean of the {gm} members (max diff {diff:.2e})")
card = (out / "merged" / "README.md").read_text()
check(all(n in card for n in names) and f"{cand_u[order[0]]:.6f}" in card
      and f"chosen: step {gm}" in card, "the model card lists members, their uncertainties and the chosen step")
from transformers import LlavaForConditionalGeneration  # noqa: E402

# The model transformers loads: no weight missing (newly initialised), unexpected or of another
# shape, and every weight it holds equal to the file's tensor. Its weights are read back under the
# checkpoint's own names through save_pretrained (which undoes transformers' key renaming).
model, info = LlavaForConditionalGeneration.from_pretrained(out / "merged", output_loading_info=True)
problems = {k: sorted(v) for k, v in info.items() if v}
check(not problems, f"transformers loads merged/ with every weight from the file, none newly initialised {problems or ''}")
with tempfile.TemporaryDirectory() as d:
    model.save_pretrained(d)
    loaded = load_dir(d)
check(sorted(loaded) == sorted(merged), f"the loaded model has exactly the file's {len(merged)} tensors "
      f"(only in the model: {sorted(set(loaded) - set(merged))[:3]}, only in the file: {sorted(set(merged) - set(loaded))[:3]})")
common = sorted(set(loaded) & set(merged))
diff = max(((loaded[k].double() - merged[k].double()).abs().max().item() for k in common), default=float("inf"))
check(diff == 0, f"every weight transformers loaded equals the file's tensor (max diff {diff:.2e})")
# The expected merge, independently: the mean of the first chosen_step candidates in /run/order.
chosen = int(run.attrs["chosen_step"])
method = text(run.attrs["method"])
check(method == "linear", f"the run's merge method is linear ({method}): its expected tensors are computed here")
if method == "linear":
    ins = [load_dir(case / names[i]) for i in order[:chosen]]
    keys = sorted(ins[0])
    check(all(sorted(t) == keys for t in ins) and sorted(merged) == keys and sorted(loaded) == keys,
          "merged/ and the loaded model have the candidates' tensor names")
    diff = max(((loaded[k].double() - sum(t[k].double() for t in ins) / len(ins)).abs().max().item()
                for k in keys if k in loaded), default=float("inf"))
    check(diff <= 1e-6, f"the loaded model = the mean of the first {chosen} candidates in merge order "
          f"({[names[i] for i in order[:chosen]]}, max diff {diff:.2e})")

# Baselines and accuracy: present exactly when the config asks for them (docs/results-h5.md).
wanted = {k: bool(v) for k, v in (cfg.get("baselines") or {}).items()}
present = set(f["baselines"]) if "baselines" in f else set()
check(present == {k for k, v in wanted.items() if v},
      f"/baselines holds the configured baselines (config: {sorted(k for k, v in wanted.items() if v)}, file: {sorted(present)})")
wants_accuracy = bool((cfg.get("evaluation") or {}).get("datasets"))
check(("accuracy" in f) == wants_accuracy,
      f"/accuracy {'present' if 'accuracy' in f else 'absent'}, as evaluation.datasets {'asks' if wants_accuracy else 'does not ask'}")
if "baselines" in f:
    b = f["baselines"]
    if "merge_all" in b:
        check(abs(b["merge_all"]["uq_macro"][0] - steps[-1]) < 1e-12, "merge_all baseline = the last step (linear)")
    if "random_k" in b:
        rk = b["random_k"]
        mem = rk["members"][()]
        check(mem.shape[1] == int(rk.attrs["k"]) and all(len(set(r)) == len(r) for r in mem),
              f"random_k: {mem.shape[0]} subsets of {int(rk.attrs['k'])} distinct candidates")
        for r, u in zip(mem, rk["uq_macro"][()]):
            if len(r) == 1:
                check(abs(u - cand_u[r[0]]) < 1e-12, "random_k: a single-candidate subset has that candidate's uncertainty")
if "accuracy" in f:
    acc = f["accuracy"]
    check(acc["candidates"].shape[0] == len(cand_u), "accuracy of every candidate recorded")
    check("chosen_macro" in acc.attrs, "accuracy of the chosen merge recorded")
if len(sys.argv) > 4:
    binary, image = sys.argv[3], sys.argv[4]
    ref = Path(__file__).resolve().parents[1] / "reference" / "answer_reference.py"
    subprocess.run([sys.executable, str(ref), "expect", str(out / "merged"), image], check=True, capture_output=True)
    r = subprocess.run([sys.executable, str(ref), "check", str(out / "merged"), binary, image], capture_output=True, text=True)
    print("\n".join("   " + l for l in r.stdout.strip().splitlines()) if r.stdout else r.stderr[-400:])
    check(r.returncode == 0, "uqmerge's option logits on merged/ equal transformers' (<= 1e-4)")
sys.exit(summary())
