#!/usr/bin/env python3
"""A small uq run for the end-to-end tests: two candidates sharing a vision tower (the answer
reference model and a copy with its language model perturbed), a VLMEvalKit TSV with base64
images (one row sharing another's image by index, one with 2 options padded to 4), and a config.
  make_uq_case.py OUT ANSWER_MODEL_DIR IMAGE_DIR"""
import base64
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

out, answer, images = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
if out.exists():
    shutil.rmtree(out)
out.mkdir(parents=True)
shutil.copytree(answer, out / "cand_a")
shutil.copytree(answer, out / "cand_b")
f = out / "cand_b" / "model.safetensors"
sd = load_file(str(f))
g = torch.Generator().manual_seed(11)
for k, v in sd.items():
    if k.startswith("language_model.") or k.startswith("multi_modal_projector."):
        sd[k] = (v + torch.randn(v.shape, generator=g) * 0.05).contiguous()
save_file(sd, str(f), metadata={"format": "pt"})
rows = ["index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage"]
opts = [("red", "green", "blue", "purple"), ("circle", "square", "", ""), ("one", "two", "three", ""),
        ("left", "right", "above", "below"), ("yes", "no", "", ""), ("cat", "dog", "car", "tree"), ("a", "b", "c", "d")]
for k in range(7):
    img = base64.b64encode((images / f"img_{k}.png").read_bytes()).decode()
    if k == 6:
        img = "0"  # shares row 0's image
    o = opts[k]
    rows.append("\t".join([str(k), f"Question {k}: what is shown?", "A hint." if k % 2 else "", *o, "A", "demo", img]))
(out / "data.tsv").write_text("\n".join(rows) + "\n")
for np_ in (1, 2):
    (out / f"config_np{np_}.yaml").write_text(f"""output_dir: run_np{np_}
seed: 7
threads: 1
candidates:
  - model: cand_a
  - model: cand_b
uq:
  perturbations: 3
  attention_dropout: 0.1
  text_perturbation: prepend_prompt
  image_perturbation: true
  batch_size: 2
  save_distributions: true
  cache_memory_mb: {1 if np_ == 1 else 0}
  datasets:
    - {{name: Shapes, path: data.tsv, pad_options_to: 4}}
    - {{name: Sub, path: data.tsv, limit: 4}}
""")
# Accuracy: the same candidates on the unpadded dataset (its options are known to the checker).
text = (out / "config_np1.yaml").read_text().replace("output_dir: run_np1", "output_dir: run_eval")
text = text.replace("    - {name: Sub, path: data.tsv, limit: 4}\n", "    - {name: Plain, path: data.tsv}\n")
(out / "config_eval.yaml").write_text(text)
# Algorithm 1 on the two candidates (linear merge, plain average).
text = (out / "config_np2.yaml").read_text().replace("output_dir: run_np2", "output_dir: run_alg1")
(out / "config_run.yaml").write_text(text + "merge: {method: linear}\nselection: {order: descending, rule: global_min}\n"
                                     "baselines: {merge_all: true, random_k: {repeats: 2, k: 1, seed: 3}}\n"
                                     "evaluation:\n  datasets:\n    - {name: Labelled, path: data.tsv}\n")
# More ranks than work items: one sample, J = 1, under 2 ranks (rank 1 has nothing to evaluate).
text = (out / "config_np1.yaml").read_text().replace("output_dir: run_np1", "output_dir: run_idle")
text = text.replace("perturbations: 3", "perturbations: 1").replace("    - {name: Sub, path: data.tsv, limit: 4}\n", "")
text = text.replace("{name: Shapes, path: data.tsv, pad_options_to: 4}", "{name: One, path: data.tsv, limit: 1}")
(out / "config_idle.yaml").write_text(text + "merge: {method: ties}\nbase_model: cand_a\n")
print(f"wrote {out}")
