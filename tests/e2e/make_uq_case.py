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

# selection.screen on hand-made candidates. The random reference model gives the same letter
# to every row, so the good ones start from "answering": the option letters' output rows
# redrawn large (seeded), which makes the answer depend on the question and the image (on these
# 7 rows: letters C B C B C A A, the top two logits >= 0.2 apart, other answers with the image
# blanked). Three good ones (that model and two small perturbations of its language model), a
# constant predictor (final norm zeroed: every option logit is 0, so the argmax is always A)
# and an image-blind one (the answering model with the projector's output layer zeroed: the
# same image tokens whatever the image).
from transformers import LlamaTokenizer  # noqa: E402

letter_ids = sorted({LlamaTokenizer.from_pretrained(answer)(chr(65 + i)).input_ids[-1] for i in range(6)})


def answering(sd):
    key = next(k for k in sd if k.endswith("lm_head.weight"))
    w = sd[key]
    w[letter_ids] = torch.randn(len(letter_ids), w.shape[1], generator=torch.Generator().manual_seed(5)) * 10 * w.std()
    return 1


def variant(name, *edits):
    shutil.copytree(answer, out / name)
    f = out / name / "model.safetensors"
    sd = load_file(str(f))
    for edit in edits:
        assert edit(sd), f"{name}: no tensor edited (key names changed?)"
    save_file(sd, str(f), metadata={"format": "pt"})


def noise(seed, scale):
    def edit(sd):
        g, n = torch.Generator().manual_seed(seed), 0
        for k, v in sd.items():
            if "language_model" in k and v.dtype.is_floating_point:
                sd[k] = (v + torch.randn(v.shape, generator=g) * scale).contiguous()
                n += 1
        return n
    return edit


def zero(pred):
    def edit(sd):
        keys = [k for k in sd if pred(k)]
        for k in keys:
            sd[k] = torch.zeros_like(sd[k])
        return len(keys)
    return edit


final_norm = lambda k: "language_model" in k and k.endswith("norm.weight") and ".layers." not in k  # noqa: E731
variant("good_a", answering)
variant("good_b", answering, noise(21, 0.001))
variant("good_c", answering, noise(22, 0.001))
variant("constant", zero(final_norm))
variant("blind", answering, zero(lambda k: "multi_modal_projector.linear_2" in k))
variant("constant_b", noise(23, 0.02), zero(final_norm))
screen = """seed: 5
threads: 1
candidates:
{cands}
uq:
  perturbations: 2
  attention_dropout: 0.1
  text_perturbation: prepend_prompt
  image_perturbation: true
  batch_size: 3
  datasets:
    - {{name: Plain, path: data.tsv}}
merge: {{method: linear}}
selection: {{screen: true}}
baselines: {{merge_all: true}}
"""
cands = "".join(f"  - {{model: {c}, name: {n}}}\n" for c, n in
                [("good_a", "good_a"), ("good_b", "good_b"), ("good_c", "good_c"), ("constant", "constant"), ("blind", "blind")])
(out / "config_screen.yaml").write_text("output_dir: run_screen\n" + screen.format(cands=cands))
cands = "".join(f"  - {{model: {c}}}\n" for c in ("constant", "constant_b"))
(out / "config_screen_all.yaml").write_text("output_dir: run_screen_all\n" + screen.format(cands=cands))
print(f"wrote {out}")
