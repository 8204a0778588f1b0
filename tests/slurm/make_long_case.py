#!/usr/bin/env python3
"""A longer `uqmerge run` case for the Slurm requeue test, made the way tests/e2e/make_uq_case.py
makes its case: three candidates from the e2e case's cand_a, each with its own seeded noise on
the language model and the projector (the vision tower stays shared, as `uqmerge run` requires),
and a dataset of ROWS questions about the e2e case's images (rows refer to them by index).
Without image perturbations the vision tower runs once per image; the language model runs for
every (row, perturbation), so each of the 5 evaluations (3 candidates, merge steps 2 and 3)
takes a while and a signal can land between them.
  make_long_case.py OUT UQ_CASE_DIR [ROWS [PERTURBATIONS]]
Writes OUT/{cand_a,cand_b,cand_c,data.tsv} and one config per output directory:
OUT/config_ref.yaml (output_dir: run_ref) and OUT/config_requeue.yaml (output_dir: run_requeue),
identical otherwise."""
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

out, case = Path(sys.argv[1]), Path(sys.argv[2])
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 200
perturbations = int(sys.argv[4]) if len(sys.argv) > 4 else 8
if out.exists():
    shutil.rmtree(out)
out.mkdir(parents=True)
# The e2e case's rows that carry an image (base64, not a reference to another row's) are kept;
# every further row asks about one of their images by its row index.
lines = (case / "data.tsv").read_text().splitlines()
header = lines[0].split("\t")
col = {name: i for i, name in enumerate(header)}
first = [r.split("\t") for r in lines[1:] if not r.split("\t")[col["image"]].isdigit()]
data = [lines[0], *("\t".join(r) for r in first)]
for k in range(len(first), rows):
    src = first[k % len(first)]
    f = list(src)
    f[col["index"]], f[col["question"]] = str(k), f"Question {k}: what is shown here?"
    f[col["image"]] = src[col["index"]]
    data.append("\t".join(f))
(out / "data.tsv").write_text("\n".join(data) + "\n")
base = load_file(str(case / "cand_a" / "model.safetensors"))
for name, seed in (("cand_a", 0), ("cand_b", 21), ("cand_c", 31)):
    shutil.copytree(case / "cand_a", out / name)
    if seed == 0:
        continue  # cand_a is the e2e case's model itself
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in base.items():
        if k.startswith("language_model.") or k.startswith("multi_modal_projector."):
            v = v + torch.randn(v.shape, generator=g) * 0.05
        sd[k] = v.contiguous()
    save_file(sd, str(out / name / "model.safetensors"), metadata={"format": "pt"})
for run in ("ref", "requeue"):
    (out / f"config_{run}.yaml").write_text(f"""output_dir: run_{run}
seed: 7
threads: 1
candidates:
  - model: cand_a
  - model: cand_b
  - model: cand_c
uq:
  perturbations: {perturbations}
  attention_dropout: 0.1
  text_perturbation: prepend_prompt
  image_perturbation: false
  batch_size: 2
  save_distributions: true
  cache_memory_mb: 0
  datasets:
    - {{name: Shapes, path: data.tsv, pad_options_to: 4}}
    - {{name: Sub, path: data.tsv, limit: {max(1, rows // 4)}}}
merge: {{method: linear}}
selection: {{order: descending, rule: global_min}}
""")
print(f"wrote {out} ({rows} rows, {perturbations} perturbations)")
