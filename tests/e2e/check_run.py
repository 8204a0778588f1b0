#!/usr/bin/env python3
"""Checks an `uqmerge run` (Algorithm 1) output: results.h5's /run group (order by descending
candidate uncertainty, per-step uncertainties, both selection rules recomputed here), and the
merged model: transformers loads it unchanged and, for a linear merge of the chosen step, its
tensors equal the average of the members' (computed here from the candidates' files); its
option logits from `uqmerge answer` equal transformers' on the same files (answer_reference.py);
baselines and accuracy groups are consistent with the per-candidate numbers.
  check_run.py OUTPUT_DIR CASE_DIR [UQMERGE_BINARY IMAGE]"""
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.torch import load_file

out, case = Path(sys.argv[1]), Path(sys.argv[2])
passed = failed = 0


def check(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg)
    passed += bool(ok)
    failed += not ok


f = h5py.File(out / "results.h5", "r")
run = f["run"]
cand_u = [f["uq"][k].attrs["uq_macro"] for k in sorted(f["uq"])]
names = [f["uq"][k].attrs["name"] for k in sorted(f["uq"])]
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
    ins = [load_dir(case / (m.decode() if isinstance(m, bytes) else m)) for m in members]
    diff = max((merged[k].double() - sum(t[k].double() for t in ins) / len(ins)).abs().max().item() for k in merged)
    check(diff <= 1e-6, f"merged = mean of the {gm} members (max diff {diff:.2e})")
card = (out / "merged" / "README.md").read_text()
check(all((n.decode() if isinstance(n, bytes) else n) in card for n in names) and f"{cand_u[order[0]]:.6f}" in card
      and f"chosen: step {gm}" in card, "the model card lists members, their uncertainties and the chosen step")
from transformers import LlavaForConditionalGeneration  # noqa: E402

model = LlavaForConditionalGeneration.from_pretrained(out / "merged")
check(model is not None, "transformers loads the merged model unchanged")
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
    print(r.stdout.strip().splitlines()[0] if r.stdout else r.stderr[-400:])
    check(r.returncode == 0, "uqmerge's option logits on merged/ equal transformers' (<= 1e-4)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
