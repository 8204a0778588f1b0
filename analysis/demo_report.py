#!/usr/bin/env python3
"""docs/demo.md from the demo's outputs (scripts/demo_report.sh runs everything first).

  demo_report.py --zoo runs/demo/zoo --run linear=runs/demo/linear/results.h5 \
                 --run ties=runs/demo/ties/results.h5 --out docs/demo.md [--figures docs/demo]

Reads the zoo's zoo.json / quality.md and each run's results.h5 (docs/results-h5.md) and
writes: the zoo's quality table; per method, every candidate's uncertainty and accuracy, the
merge curve (uncertainty and accuracy of the merge of the first t), and held-out accuracy of
UQ-Merge's choice vs merge-all vs random-k (mean +- standard error over its repeats) vs the best
single candidate; a merge-curve PNG per method. Accuracy columns: "held-in" = mean over the
held-in families' test rows, "held-out" = mean over the families no candidate was tuned on.
"""
import argparse
import json
import math
from pathlib import Path

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def mean_se(xs):
    xs = np.asarray(xs, dtype=float)
    if len(xs) == 0:
        return float("nan"), float("nan")
    se = xs.std(ddof=1) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return float(xs.mean()), float(se)


class Run:
    def __init__(self, path):
        f = h5py.File(path, "r")
        self.f = f
        self.names = [text(f[f"/uq/{g}"].attrs["name"]) for g in sorted(f["/uq"].keys())]
        self.u = np.array([float(f[f"/uq/{g}"].attrs["uq_macro"]) for g in sorted(f["/uq"].keys())])
        self.order = list(f["/run/order"][()])
        self.step_u = f["/run/step_uq_macro"][()]
        self.chosen = int(f["/run"].attrs["chosen_step"])
        self.method = text(f["/run"].attrs["method"])
        self.datasets = text(f["/accuracy"].attrs["datasets"]).split(",")
        self.held_out = [i for i, d in enumerate(self.datasets) if d.endswith("_heldout")]
        self.held_in = [i for i, d in enumerate(self.datasets) if not d.endswith("_heldout")]
        self.cand_acc = f["/accuracy/candidates"][()]
        self.step_acc = f["/accuracy/steps"][()]
        self.seconds = float(f["/timing"].attrs["total_seconds"])
        self.N = len(self.names)
        self.baselines = {k: f[f"/baselines/{k}"] for k in f["/baselines"].keys()} if "/baselines" in f else {}

    def split(self, acc):
        acc = np.asarray(acc, dtype=float)
        return acc[..., self.held_in].mean(-1), acc[..., self.held_out].mean(-1)


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def curve_png(run, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(1, len(run.step_u) + 1)
    hin, hout = run.split(run.step_acc)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    ax.plot(t, run.step_u, "o-", color="tab:blue", label="uncertainty (held-in, unlabelled)")
    ax.axvline(run.chosen, color="tab:blue", ls=":", lw=1)
    ax.set_xlabel("merge of the first t candidates (descending uncertainty)")
    ax.set_ylabel("uncertainty", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(t, hin, "s--", color="tab:green", label="accuracy held-in test")
    ax2.plot(t, hout, "^--", color="tab:red", label="accuracy held-out")
    ax2.set_ylabel("accuracy (%)")
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def method_section(label, run, fig_rel):
    L = []
    names = run.names
    hin_c, hout_c = run.split(run.cand_acc)
    L.append(f"### {label}\n")
    L.append(f"`uqmerge run` wall time: {run.seconds:.0f} s (2 ranks). Merge order (descending uncertainty): "
             + ", ".join(names[k] for k in run.order) + f". Chosen (global_min): step {run.chosen}.\n")
    L.append("| candidate | uncertainty | held-in test acc. | held-out acc. |")
    L.append("|---|---|---|---|")
    for k in np.argsort(-run.u):
        L.append(f"| {names[k]} | {run.u[k]:.4f} | {hin_c[k]:.1f} | {hout_c[k]:.1f} |")
    L.append("")
    hin_s, hout_s = run.split(run.step_acc)
    L.append("Merge curve (merge of the first t in that order):\n")
    L.append("| t | added | uncertainty | held-in test acc. | held-out acc. |")
    L.append("|---|---|---|---|---|")
    for t in range(len(run.step_u)):
        mark = " ← chosen" if t + 1 == run.chosen else ""
        L.append(f"| {t + 1} | {names[run.order[t]]} | {run.step_u[t]:.4f}{mark} | {hin_s[t]:.1f} | {hout_s[t]:.1f} |")
    L.append(f"\n![merge curve, {label}]({fig_rel})\n")
    # comparison
    rows = []
    rows.append(("UQ-Merge (chosen merge, %d models)" % run.chosen, hin_s[run.chosen - 1], 0.0, hout_s[run.chosen - 1], 0.0,
                 run.step_u[run.chosen - 1], 1))
    for name in ("merge_all", "random_k", "ascending"):
        if name not in run.baselines:
            continue
        b = run.baselines[name]
        acc = b["accuracy"][()]
        hin, hout = run.split(acc)
        mi, si = mean_se(hin)
        mo, so = mean_se(hout)
        mu, _ = mean_se(b["uq_macro"][()])
        if name == "merge_all":
            what = "merge-all (%d models)" % len(run.names)
        elif name == "random_k":
            k = int(b.attrs["k"])
            what = "random-k (k = %d, %d seeds%s)" % (k, acc.shape[0], "; k = N: every draw is all candidates" if k == run.N else "")
        else:
            what = "ascending order, its own choice (%d models)" % b["members"].shape[1]
        rows.append((what, mi, si, mo, so, mu, acc.shape[0]))
    best = int(np.argmax(hout_c))
    rows.append((f"best single candidate by held-out acc. ({names[best]}, oracle)", hin_c[best], 0.0, hout_c[best], 0.0,
                 run.u[best], 1))
    least = int(np.argmin(run.u))
    rows.append((f"least uncertain single candidate ({names[least]})", hin_c[least], 0.0, hout_c[least], 0.0, run.u[least], 1))
    L.append("| model | held-in test acc. | held-out acc. | uncertainty |")
    L.append("|---|---|---|---|")
    for what, mi, si, mo, so, mu, n in rows:
        pm = lambda m, s: f"{m:.1f} ± {s:.1f}" if n > 1 else f"{m:.1f}"
        L.append(f"| {what} | {pm(mi, si)} | {pm(mo, so)} | {mu:.4f} |")
    L.append("")
    return L, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--run", action="append", required=True, help="LABEL=results.h5")
    ap.add_argument("--out", required=True)
    ap.add_argument("--figures", default=None, help="directory for PNGs (default: beside --out)")
    ap.add_argument("--command", default="scripts/demo_report.sh")
    a = ap.parse_args()
    out = Path(a.out)
    figs = Path(a.figures) if a.figures else out.parent / "demo"
    figs.mkdir(parents=True, exist_ok=True)
    zoo = json.loads((Path(a.zoo) / "zoo.json").read_text())
    quality = (Path(a.zoo) / "quality.md").read_text().split("\n", 2)[2]
    L = ["# The built-in demo: what UQ-Merge does on the synthetic world", "",
         f"Made by `{a.command}` (this file is generated by analysis/demo_report.py; do not edit by hand).", "",
         "The world, the question families, how the zoo is trained and why: `include/uqmerge/zoo/zoo.hpp`, "
         "`include/uqmerge/zoo/world.hpp` and docs/decisions.md (\"Demo zoo\"). Held-in families (colour, shape, "
         "count, exists) give the unlabelled uncertainty data (`*_uq.tsv`) and labelled test rows (`*_test.tsv`); "
         "position and mixed (new wording of the four skills) are held out: no candidate was tuned on them.", "",
         f"## The zoo (`uqmerge zoo`, seed {zoo['seed']}, {zoo['ranks']} ranks, {zoo['seconds']:.0f} s)", "",
         quality.strip(), ""]
    summary = []
    for spec in a.run:
        label, path = spec.split("=", 1)
        run = Run(path)
        fig = figs / f"merge_curve_{label}.png"
        curve_png(run, fig, f"{label}: uncertainty and accuracy along the merge order")
        sec, rows = method_section(f"{label} merging", run, str(fig.relative_to(out.parent)))
        if not summary:
            L.append("## UQ-Merge on the zoo\n")
        L.extend(sec)
        summary.append((label, rows, run))
    L.append("## What happened\n")
    for label, rows, run in summary:
        hin_c, hout_c = run.split(run.cand_acc)
        rho_in = spearman(run.u, hin_c)
        rho_out = spearman(run.u, hout_c)
        ranks = np.argsort(np.argsort(run.u))  # 0 = least uncertain
        es = int(run.f["/run"].attrs["early_stop_step"])
        falls = int(np.sum(np.diff(run.step_u) < 0))
        hin_s, hout_s = run.split(run.step_acc)
        harmful = [n for n in ("always_a", "shifted") if n in run.names]
        hl = ", ".join(f"{n} {int(run.N - ranks[run.names.index(n)])}/{run.N}" for n in harmful)
        L.append(f"- **{label}**: across candidates, Spearman ρ(uncertainty, accuracy) = {rho_in:+.2f} held-in test, "
                 f"{rho_out:+.2f} held-out (the paper's premise is ρ < 0: less uncertain = better). Uncertainty rank "
                 f"(1 = most uncertain) of the harmful candidates: {hl}. Along the merge curve the uncertainty fell at "
                 f"{falls} of {run.N - 1} steps while held-out accuracy went from {hout_s[0]:.1f} % (t = 1) to "
                 f"{hout_s[-1]:.1f} % (t = {run.N}); global_min chose t = {run.chosen}, early_stop (patience 1) t = {es}.")
    for label, rows, run in summary:
        uqm = rows[0]
        others = {r[0].split(" (")[0]: r for r in rows[1:]}
        parts = []
        for key in ("merge-all", "random-k", "best single candidate by held-out acc."):
            for k, r in others.items():
                if k.startswith(key.split(" (")[0]):
                    d = uqm[3] - r[3]
                    parts.append(f"{d:+.1f} points vs {k}")
                    break
        L.append(f"- **{label}**: UQ-Merge's choice scores {uqm[3]:.1f} % held-out ({', '.join(parts)}).")
    L.append("\n## What it suggests\n")
    _, _, run0 = summary[0]
    hin_c, hout_c = run0.split(run0.cand_acc)
    if spearman(run0.u, hout_c) > 0:
        L.append("In this zoo the label-free criterion rewards consistency, and the most consistent candidates are the "
                 "harmful ones: a model that answers the same letter to everything is perfectly stable under the AugMix, "
                 "prompt and attention-dropout perturbations, so its H(mean p) − mean H(p) is zero by construction, and "
                 "a model trained to shift every answer by one letter is just as consistent. Merging also makes the merged "
                 "model more consistent without making it more accurate, so \"lowest uncertainty\" drifts towards "
                 "\"merge everything\". The paper's candidates are all competent LLaVA fine-tunes, where its premise (less "
                 "uncertain = better) held; with degenerate, over-confident candidates in the pool the uncertainty curve "
                 "alone is not enough, and a cheap screen before merging (drop candidates whose answer letter is nearly "
                 "constant over the unlabelled data, or that are at chance on a few labelled rows) would be needed. The "
                 "world was not tuned to change this outcome.")
    else:
        L.append("In this zoo the paper's premise held: across candidates, less uncertain meant more accurate, and the "
                 "uncertainty curve picked the merge shown above. The world was not tuned to produce this outcome.")
    L.append("")
    out.write_text("\n".join(L) + "\n")
    print(f"wrote {out} and {figs}/")


if __name__ == "__main__":
    main()
