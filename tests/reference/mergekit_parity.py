#!/usr/bin/env python3
"""`uqmerge merge` against mergekit on the same YAML and checkpoints.

Makes tiny LLaMA checkpoints (a base and three fine-tunes = base + noise) and, for each
deterministic method, runs mergekit-yaml and `uqmerge merge` on one config and compares every
tensor (max abs diff <= 1e-6, fp32). For the random methods (dare_linear, della_linear) it checks
the statistics mergekit cannot be compared on bit by bit: the kept fraction equals the density
and, with `rescale: density`, the merge is the task-arithmetic merge in expectation.
  mergekit_parity.py WORK UQMERGE_BINARY MERGEKIT_YAML_BINARY
Prints 'N passed, M failed'."""
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, summary  # noqa: E402

work, uq, mk = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
work.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)


def fine_tunes(layers, base_name, names):
    """A tiny LLaMA base with `layers` layers and fine-tunes of it (base + N(0, 0.02^2) noise)."""
    cfg = LlamaConfig(hidden_size=64, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=128, vocab_size=96)
    base = LlamaForCausalLM(cfg).eval()
    base.save_pretrained(work / base_name)
    for name in names:
        m = LlamaForCausalLM(cfg).eval()
        m.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        m.save_pretrained(work / name)


fine_tunes(2, "base", ["m0", "m1", "m2"])

# A valid checkpoint of another shape, for the bad-input tests (tests/e2e/test_merge_bad_input.sh).
LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             intermediate_size=96, vocab_size=96)).save_pretrained(work / "other")

def tensors(d):
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def against_mergekit(name, text):
    """mergekit-yaml and `uqmerge merge` on one YAML (fp32): every tensor within 1e-6."""
    (work / f"{name}.yml").write_text(text + "dtype: float32\n")
    r1 = subprocess.run([mk, f"{name}.yml", f"mk_{name}", "--no-copy-tokenizer", "--no-write-model-card"], cwd=work,
                        capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    r2 = subprocess.run([uq, "merge", f"{name}.yml", "-o", f"uq_{name}", "--overwrite"], cwd=work, capture_output=True, text=True)
    if r1.returncode or r2.returncode:
        check(False, f"{name}: mergekit rc {r1.returncode} {r1.stderr[-300:]} / uqmerge rc {r2.returncode} {r2.stderr[-300:]}")
        return
    a, b = tensors(work / f"mk_{name}"), tensors(work / f"uq_{name}")
    same_names = set(a) == set(b)
    exact = same_names and all(torch.equal(a[k], b[k]) for k in a)
    diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a if k in b)
    check(same_names and diff <= 1e-6, f"{name}: {len(b)} tensors, max |uqmerge - mergekit| = {diff:.2e} (bit-identical: {exact})")


def member(k, **params):
    inner = ", ".join(f"{a}: {b}" for a, b in params.items())
    return f"  - model: m{k}\n" + (f"    parameters: {{{inner}}}\n" if params else "")


cases = {
    "linear": "merge_method: linear\nmodels:\n" + member(0, weight=0.5) + member(1, weight=0.3) + member(2, weight=0.2),
    "linear_unnormalized": "merge_method: linear\nparameters: {normalize: false}\nmodels:\n" + member(0, weight=0.5)
                           + member(1, weight=0.25) + member(2, weight=0.25),
    "task_arithmetic": "merge_method: task_arithmetic\nbase_model: base\nparameters: {lambda: 0.8}\nmodels:\n"
                       + member(0, weight=1.0) + member(1, weight=0.6) + member(2, weight=0.4),
    "ties": "merge_method: ties\nbase_model: base\nparameters: {normalize: true}\nmodels:\n"
            + member(0, weight=1.0, density=0.5) + member(1, weight=0.7, density=0.6) + member(2, weight=0.5, density=0.4),
    "ties_lambda": "merge_method: ties\nbase_model: base\nparameters: {normalize: false, lambda: 1.3}\nmodels:\n"
                   + "  - model: base\n" + member(0, weight=1.0, density=0.3) + member(1, weight=1.0, density=0.3),
    "breadcrumbs": "merge_method: breadcrumbs\nbase_model: base\nmodels:\n"
                   + member(0, weight=1.0, density=0.8, gamma=0.05) + member(1, weight=0.5, density=0.7, gamma=0.1),
    "breadcrumbs_ties": "merge_method: breadcrumbs_ties\nbase_model: base\nmodels:\n"
                        + member(0, weight=1.0, density=0.8, gamma=0.05) + member(1, weight=0.5, density=0.7, gamma=0.1)
                        + member(2, weight=0.5, density=0.9, gamma=0.02),
    "model_stock": "merge_method: model_stock\nbase_model: base\nmodels:\n" + member(0) + member(1) + member(2),
    "model_stock_filter_wise": "merge_method: model_stock\nbase_model: base\nparameters: {filter_wise: true}\nmodels:\n"
                               + member(0) + member(1) + member(2),
}
for name, text in cases.items():
    against_mergekit(name, text)

# mergekit YAML in full: per-tensor filters, layer gradients (3-layer models, so gradients
# interpolate between entries) and the methods beyond the paper's, each against mergekit-yaml.
fine_tunes(3, "base3", ["f0", "f1"])
full_cases = {
    "linear_filter_gradient": "merge_method: linear\nmodels:\n"
        "  - model: f0\n    parameters: {weight: [{filter: mlp, value: 0.2}, {filter: self_attn, value: [0.9, 0.1, 0.5]}, {value: 0.8}]}\n"
        "  - model: f1\n    parameters: {weight: [1.0, 0.25]}\n",
    "ties_filter_gradient": "merge_method: ties\nbase_model: base3\nparameters: {density: [0.3, 0.9], normalize: true}\nmodels:\n"
        "  - model: f0\n    parameters: {weight: [{filter: down_proj, value: 0.4}, {value: 1.0}]}\n"
        "  - model: f1\n    parameters: {weight: 0.7, density: [{filter: embed, value: 0.5}]}\n",
    "slerp": "merge_method: slerp\nbase_model: f0\nparameters:\n  t: [{filter: self_attn, value: [0.0, 0.5, 1.0]}, {filter: mlp, value: [1.0, 0.3]}, {value: 0.35}]\n"
             "models:\n  - model: f0\n  - model: f1\n",
    "nearswap": "merge_method: nearswap\nbase_model: f0\nparameters: {t: [0.005, 0.03]}\nmodels:\n  - model: f0\n  - model: f1\n",
    "passthrough": "merge_method: passthrough\nmodels:\n  - model: f1\n    parameters: {scale: [{filter: lm_head, value: 0.5}, {value: 1.0}]}\n",
    "multislerp": "merge_method: multislerp\nmodels:\n  - model: f0\n    parameters: {weight: 0.7}\n"
                  "  - model: f1\n    parameters: {weight: [0.2, 0.6]}\n  - model: base3\n    parameters: {weight: 0.4}\n",
    "multislerp_base": "merge_method: multislerp\nbase_model: base3\nmodels:\n  - model: f0\n    parameters: {weight: 1.0}\n"
                       "  - model: f1\n    parameters: {weight: 0.5}\n",
    "karcher": "merge_method: karcher\nparameters: {max_iter: 20, tol: 1e-6}\nmodels:\n  - model: f0\n  - model: f1\n  - model: base3\n",
    "nuslerp": "merge_method: nuslerp\nmodels:\n  - model: f0\n    parameters: {weight: 0.3}\n  - model: f1\n    parameters: {weight: 0.7}\n",
    "nuslerp_base_rows": "merge_method: nuslerp\nbase_model: base3\nparameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\n"
                         "models:\n  - model: f0\n    parameters: {weight: 1.0}\n  - model: f1\n    parameters: {weight: 0.5}\n",
    "sce": "merge_method: sce\nbase_model: base3\nparameters: {select_topk: 0.4}\nmodels:\n  - model: f0\n  - model: f1\n",
}
for name, text in full_cases.items():
    against_mergekit(name, text)

# The release's cascade schedule (uqmerge's `schedule: cascade`, in float16 as the release runs
# it) against the release's way: a chain of mergekit-yaml 1:1 linear merges, each step's output
# written to disk and merged with the next model. Bit-identical.
mk_env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
prev, chain_ok = "m0", True
for k in (1, 2):
    (work / f"cascade_step{k + 1}.yml").write_text(f"merge_method: linear\nmodels:\n  - model: {prev}\n    parameters: {{weight: 1.0}}\n"
                                                 f"  - model: m{k}\n    parameters: {{weight: 1.0}}\ndtype: float16\n")
    r = subprocess.run([mk, f"cascade_step{k + 1}.yml", f"mk_cascade{k + 1}", "--no-copy-tokenizer", "--no-write-model-card"],
                       cwd=work, capture_output=True, text=True, env=mk_env)
    chain_ok = chain_ok and r.returncode == 0
    prev = f"mk_cascade{k + 1}"
(work / "cascade.yml").write_text("merge_method: linear\nschedule: cascade\nmodels:\n" + member(0) + member(1) + member(2)
                                  + "dtype: float16\n")
r = subprocess.run([uq, "merge", "cascade.yml", "-o", "uq_cascade", "--overwrite"], cwd=work, capture_output=True, text=True)
if not chain_ok or r.returncode:
    check(False, f"cascade: mergekit chain ok {chain_ok}, uqmerge rc {r.returncode}: {r.stderr[-300:]}")
else:
    a, b = tensors(work / "mk_cascade3"), tensors(work / "uq_cascade")
    same = set(a) == set(b) and all(a[k].dtype == torch.float16 and torch.equal(a[k], b[k]) for k in a)
    uniform = tensors(work / "uq_linear")  # the uniform average differs (weights 1/4, 1/4, 1/2 here vs 0.5, 0.3, 0.2)
    differs = any(not torch.equal(b[k].float(), uniform[k].half().float()) for k in b)
    check(same and differs, f"cascade of 3 = mergekit-yaml 1:1 chain (fp16, bit-identical: {same}; differs from uniform: {differs})")

# Random methods: statistics on one fine-tune (weight 1) against the base.
bt, m0 = tensors(work / "base"), tensors(work / "m0")
for method, extra in [("dare_linear", ""), ("della_linear", ", epsilon: 0.1")]:
    for rescale in ("density", "l1"):
        name = f"{method}_{rescale}"
        (work / f"{name}.yml").write_text(f"merge_method: {method}\nbase_model: base\nparameters: {{rescale: {rescale}}}\n"
                                          f"models:\n  - model: m0\n    parameters: {{weight: 1.0, density: 0.3{extra}}}\n"
                                          "dtype: float32\nseed: 5\n")
        r = subprocess.run([uq, "merge", f"{name}.yml", "-o", f"uq_{name}", "--overwrite"], cwd=work, capture_output=True, text=True)
        if r.returncode:
            check(False, f"{name}: uqmerge rc {r.returncode}: {r.stderr[-300:]}")
            continue
        out = tensors(work / f"uq_{name}")
        kept = total = 0
        ratio_num = ratio_den = 0.0
        for k, t in out.items():
            d = (m0[k] - bt[k]).double()
            got = (t.double() - bt[k].double())
            nz = d.abs() > 0
            kept += int((got.abs() > 0)[nz].sum())
            total += int(nz.sum())
            ratio_num += float((got * d).sum())
            ratio_den += float((d * d).sum())
        frac = kept / total
        check(abs(frac - 0.3) < 0.02, f"{name}: kept fraction {frac:.3f} (density 0.3)")
        if rescale == "density":
            # E[mask / p] = 1: the merge projects onto the task vector with slope ~1.
            check(abs(ratio_num / ratio_den - 1) < 0.1, f"{name}: E[kept / keep probability] slope {ratio_num / ratio_den:.3f} (~1)")
        else:
            l1_in = sum(float((m0[k] - bt[k]).abs().sum()) for k in out)
            l1_out = sum(float((out[k].double() - bt[k].double()).abs().sum()) for k in out)
            check(abs(l1_out / l1_in - 1) < 0.02, f"{name}: L1 norm of the task vector kept ({l1_out / l1_in:.3f})")
# Same seed, same masks, whatever runs it; another seed, other masks.
r = subprocess.run([uq, "merge", "dare_linear_density.yml", "-o", "uq_again", "--overwrite"], cwd=work, capture_output=True)
same = all(torch.equal(x, tensors(work / "uq_again")[k]) for k, x in tensors(work / "uq_dare_linear_density").items())
check(r.returncode == 0 and same, "dare_linear: the same seed gives the same masks")
# Sharded over 2 ranks (tensor ownership by bytes, one output shard per rank): the same bytes.
if len(sys.argv) > 4:
    mpiexec = sys.argv[4]
    for name in ("linear", "ties", "model_stock", "dare_linear_density"):
        r = subprocess.run([mpiexec, "-n", "2", uq, "merge", f"{name}.yml", "-o", f"np2_{name}", "--overwrite"], cwd=work,
                           capture_output=True, text=True)
        if r.returncode:
            check(False, f"{name} on 2 ranks: rc {r.returncode}: {r.stderr[-300:]}")
            continue
        a, b = tensors(work / f"uq_{name}"), tensors(work / f"np2_{name}")
        same = set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
        shards = len(list((work / f"np2_{name}").glob("*.safetensors")))
        index = (work / f"np2_{name}" / "model.safetensors.index.json").exists()
        check(same and shards == 2 and index, f"{name} on 2 ranks: {shards} shards + index, bit-identical to 1 rank: {same}")
sys.exit(summary())
