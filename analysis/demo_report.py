#!/usr/bin/env python3
"""docs/demo.md from the demo's outputs (scripts/demo_report.sh runs everything first).

  demo_report.py --zoo runs/demo/zoo --run linear=runs/demo/linear/results.h5 \
                 [--run linear=runs/demo/linear_s1235/results.h5 ...] \
                 --run ties=runs/demo/ties/results.h5 --out docs/demo.md [--figures docs/demo]

Reads the zoo's zoo.json / quality.md and each run's results.h5 (docs/results-h5.md). A label
given several times is one method over several seeds (perturbation and random-k draws). Writes:
the zoo's quality table; per method, for its first run, every candidate's uncertainty and
accuracy, the merge curve (uncertainty and accuracy of the merge of the first t) and the
comparison with the baselines, with selection.screen's statistics when it was on; then, over the
seeds, mean +- standard error of every selection rule and baseline, the selection stability and
what UQ-Merge picked each time; a merge-curve PNG per method. Accuracy columns: "held-in" = mean
over the held-in families' test rows, "held-out" = mean over the families no candidate was
tuned on.
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
        self.seed = int(f["/config"].attrs["seed"])
        self.rule = text(f["/run"].attrs["rule"])
        self.screen = f["/screen"] if "/screen" in f else None
        self.flagged = [self.names[i] for i, x in enumerate(self.screen["flagged"][()]) if x] if self.screen else []
        self.chosen_set = sorted(int(k) for k in self.order[: self.chosen])
        self.chosen_acc = self.step_acc[self.chosen - 1]
        # The paper's Algorithm 1 on every candidate: the main curve, or with the screen on its
        # "unscreened" baseline (then the main curve is the screened one).
        un = self.baselines.get("unscreened")
        if un is not None:
            self.p_order = list(un["order"][()])
            self.p_u = un["curve"][()]
            self.p_acc = un["curve_accuracy"][()]
            self.p_chosen = int(un.attrs["early_stop_step" if self.rule == "early_stop" else "global_min_step"])
            self.p_es = int(un.attrs["early_stop_step"])
        else:
            self.p_order, self.p_u, self.p_acc, self.p_chosen = self.order, self.step_u, self.step_acc, self.chosen
            self.p_es = int(f["/run"].attrs["early_stop_step"])
        self.p_set = sorted(int(k) for k in self.p_order[: self.p_chosen])

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

    t = np.arange(1, len(run.p_u) + 1)
    hin, hout = run.split(run.p_acc)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    ax.plot(t, run.p_u, "o-", color="tab:blue", label="uncertainty (held-in, unlabelled)")
    marks = [ax.axvline(run.p_chosen, color="tab:blue", ls=":", lw=1, label="Algorithm 1's choice")]
    if run.screen is not None and run.chosen_set != run.p_set:
        marks.append(ax.axvline(run.chosen, color="tab:purple", ls="--", lw=1,
                                label="choice with selection.screen (its own curve)"))
    ax.set_xlabel("merge of the first t candidates (descending uncertainty)")
    ax.set_ylabel("uncertainty", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(t, hin, "s--", color="tab:green", label="accuracy held-in test")
    ax2.plot(t, hout, "^--", color="tab:red", label="accuracy held-out")
    ax2.set_ylabel("accuracy (%)")
    lines = ax.get_lines()[:1] + ax2.get_lines() + marks
    ax.legend(lines, [l.get_label() for l in lines], fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def baseline_rows(run):
    """(label, held-in values, held-out values, uncertainty values) per comparison point of one
    run; several values for random-k (its draws)."""
    rows = []
    hin_s, hout_s = run.split(run.p_acc)
    rows.append((f"UQ-Merge, Algorithm 1 (the paper)", [hin_s[run.p_chosen - 1]], [hout_s[run.p_chosen - 1]],
                 [run.p_u[run.p_chosen - 1]], run.p_chosen))
    if run.screen is not None:
        hi, ho = run.split(run.chosen_acc)
        rows.append(("UQ-Merge + selection.screen", [hi], [ho], [run.step_u[run.chosen - 1]], run.chosen))
    names = sorted(run.baselines, key=lambda n: (n != "merge_all", not n.startswith("random_k"), n))
    for name in names:
        if name == "unscreened":
            continue
        b = run.baselines[name]
        hin, hout = run.split(b["accuracy"][()])
        k = b["members"].shape[1] if "members" in b else 0
        if name == "merge_all":
            what = "merge-all"
        elif name == "random_k":
            what = "random-k, k = the size chosen"
        elif name.startswith("random_k_"):
            what = f"random-k, k = {int(b.attrs['k'])}"
        elif name == "ascending":
            what = "ascending order, its own choice"
        else:
            what = "accuracy-guided (uses labels; oracle)"
        rows.append((what, list(hin), list(hout), list(b["uq_macro"][()]), k))
    hin_c, hout_c = run.split(run.cand_acc)
    best = int(np.argmax(hout_c))
    rows.append((f"best single candidate by held-out acc. (oracle)", [hin_c[best]], [hout_c[best]], [run.u[best]], 1))
    least = int(np.argmin(run.u))
    rows.append(("least uncertain single candidate", [hin_c[least]], [hout_c[least]], [run.u[least]], 1))
    return rows


def fmt_ms(xs):
    m, s = mean_se(xs)
    return f"{m:.1f} ± {s:.1f}" if len(xs) > 1 else f"{m:.1f}"


def method_section(label, run, fig_rel):
    L = []
    names = run.names
    hin_c, hout_c = run.split(run.cand_acc)
    L.append(f"### {label}\n")
    L.append(f"Seed {run.seed}, 2 ranks. Merge order (descending uncertainty): "
             + ", ".join(names[k] for k in run.p_order) + f". Algorithm 1 chose ({run.rule}): step {run.p_chosen}.\n")
    if run.screen is not None:
        sc = run.screen
        L.append("selection.screen (label-free; docs/config.md): each candidate's unperturbed answers on the unlabelled "
                 "uq rows, with the real images and with blank ones. Thresholds: mode share ≥ "
                 f"{sc.attrs['max_mode_share']:g}, image sensitivity < {sc.attrs['min_sensitivity_ratio']:g} × median "
                 f"({sc.attrs['median_sensitivity']:.4f}), agreement < {sc.attrs['min_agreement_ratio']:g} × median "
                 f"({sc.attrs['median_agreement']:.3f}).\n")
        L.append("| candidate | mode share | image sensitivity | agreement | agreement with base | left out |")
        L.append("|---|---|---|---|---|---|")
        for i, n in enumerate(names):
            g = sc[f"model_{i:03d}"]
            why = text(g.attrs["reasons"]) or "—"
            L.append(f"| {n} | {sc['mode_share'][i]:.3f} | {sc['image_sensitivity'][i]:.4f} | {sc['agreement'][i]:.3f} | "
                     f"{sc['base_agreement'][i]:.3f} | {why} |")
        L.append(f"\nWith the screen, Algorithm 1 merged in the same order without "
                 f"{', '.join(run.flagged) if run.flagged else 'nothing'} and chose step {run.chosen} "
                 f"({', '.join(names[k] for k in run.order[:run.chosen])}).\n")
    L.append("| candidate | uncertainty | held-in test acc. | held-out acc. |")
    L.append("|---|---|---|---|")
    for k in np.argsort(-run.u):
        L.append(f"| {names[k]} | {run.u[k]:.4f} | {hin_c[k]:.1f} | {hout_c[k]:.1f} |")
    L.append("")
    hin_s, hout_s = run.split(run.p_acc)
    L.append("Merge curve of Algorithm 1 (merge of the first t in that order, every candidate):\n")
    L.append("| t | added | uncertainty | held-in test acc. | held-out acc. |")
    L.append("|---|---|---|---|---|")
    for t in range(len(run.p_u)):
        mark = " ← chosen" if t + 1 == run.p_chosen else ""
        L.append(f"| {t + 1} | {names[run.p_order[t]]} | {run.p_u[t]:.4f}{mark} | {hin_s[t]:.1f} | {hout_s[t]:.1f} |")
    L.append(f"\n![merge curve, {label}]({fig_rel})\n")
    rows = baseline_rows(run)
    L.append("| model | models merged | held-in test acc. | held-out acc. | uncertainty |")
    L.append("|---|---|---|---|---|")
    for what, hin, hout, u, k in rows:
        L.append(f"| {what} | {k} | {fmt_ms(hin)} | {fmt_ms(hout)} | {np.mean(u):.4f} |")
    L.append("")
    return L, rows


def jaccard(a, b):
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def seeds_section(label, runs):
    """Mean ± standard error over the seeds (random-k: over every draw of every seed)."""
    L = [f"### {label}: {len(runs)} seeds ({', '.join(str(r.seed) for r in runs)})\n"]
    table = {}
    for r in runs:
        for what, hin, hout, u, k in baseline_rows(r):
            e = table.setdefault(what, ([], [], []))
            e[0].extend(hin), e[1].extend(hout), e[2].append(k)
    L.append("| selection | models merged (per seed) | held-in test acc. | held-out acc. |")
    L.append("|---|---|---|---|")
    for what, (hin, hout, ks) in table.items():
        L.append(f"| {what} | {', '.join(str(k) for k in ks)} | {fmt_ms(hin)} | {fmt_ms(hout)} |")
    names = runs[0].names
    def sets_line(sets, who):
        pairs = [jaccard(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
        same = max(sum(1 for t in sets if t == s) for s in sets)
        ss = "; ".join("{" + ", ".join(names[k] for k in s) + "}" for s in sets)
        return (f"- {who}: the same set in {same} of {len(sets)} seeds"
                + (f", mean pairwise Jaccard {np.mean(pairs):.2f}" if pairs else "") + f". Chosen: {ss}.")
    L.append("")
    L.append(sets_line([r.p_set for r in runs], "Algorithm 1 (the paper)"))
    if all(r.screen is not None for r in runs):
        L.append(sets_line([r.chosen_set for r in runs], "with selection.screen"))
        fl = sorted({n for r in runs for n in r.flagged})
        L.append(f"- The screen left out: {', '.join(fl) if fl else 'nothing'} "
                 f"({'the same in every seed' if len({tuple(r.flagged) for r in runs}) == 1 else 'varying over seeds'}; "
                 "its passes are unperturbed, so only the data, not the seed, can change them).")
    L.append("")
    return L, table


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
    groups = {}
    for spec in a.run:
        label, path = spec.split("=", 1)
        groups.setdefault(label, []).append(Run(path))
    summary = []
    for label, runs in groups.items():
        run = runs[0]
        fig = figs / f"merge_curve_{label}.png"
        curve_png(run, fig, f"{label}: uncertainty and accuracy along the merge order")
        sec, rows = method_section(f"{label} merging", run, str(fig.relative_to(out.parent)))
        if not summary:
            L.append("## UQ-Merge on the zoo\n")
        L.extend(sec)
        summary.append((label, rows, run))
    seed_tables = {}
    if any(len(r) > 1 for r in groups.values()):
        L.append("## Across seeds\n")
        L.append("Each seed draws other perturbations (AugMix, prompts, attention dropout) and other random-k subsets; "
                 "the zoo, the data and the accuracies of a given merge stay the same. Mean ± standard error over the "
                 "seeds (random-k: over all its draws).\n")
        for label, runs in groups.items():
            sec, table = seeds_section(label, runs)
            L.extend(sec)
            seed_tables[label] = table
    L.append("## What happened\n")
    for label, rows, run in summary:
        hin_c, hout_c = run.split(run.cand_acc)
        rho_in = spearman(run.u, hin_c)
        rho_out = spearman(run.u, hout_c)
        ranks = np.argsort(np.argsort(run.u))  # 0 = least uncertain
        es = run.p_es
        falls = int(np.sum(np.diff(run.p_u) < 0))
        hin_s, hout_s = run.split(run.p_acc)
        harmful = [n for n in ("always_a", "shifted") if n in run.names]
        hl = ", ".join(f"{n} {int(run.N - ranks[run.names.index(n)])}/{run.N}" for n in harmful)
        L.append(f"- **{label}** (seed {run.seed}): across candidates, Spearman ρ(uncertainty, accuracy) = {rho_in:+.2f} "
                 f"held-in test, {rho_out:+.2f} held-out (the paper's premise is ρ < 0: less uncertain = better). Uncertainty "
                 f"rank (1 = most uncertain) of the harmful candidates: {hl or 'none in the pool'}. Along the merge curve the "
                 f"uncertainty fell at {falls} of {run.N - 1} steps while held-out accuracy went from {hout_s[0]:.1f} % (t = 1) "
                 f"to {hout_s[-1]:.1f} % (t = {run.N}); global_min chose t = {run.p_chosen}, early_stop (patience 1) t = {es}.")
    for label, rows, run in summary:
        uqm = rows[0]
        parts = []
        for what, hin, hout, u, k in rows[1:]:
            if what.startswith(("UQ-Merge + selection.screen", "merge-all", "random-k, k = the size", "best single")):
                parts.append(f"{uqm[2][0] - np.mean(hout):+.1f} points vs {what}")
        L.append(f"- **{label}**: UQ-Merge's choice scores {uqm[2][0]:.1f} % held-out ({', '.join(parts)}).")
    for label, table in seed_tables.items():
        paper, screened = table.get("UQ-Merge, Algorithm 1 (the paper)"), table.get("UQ-Merge + selection.screen")
        allm, rnd = table.get("merge-all"), table.get("random-k, k = the size chosen")
        bits = [f"Algorithm 1 {fmt_ms(paper[1])} % held-out"]
        if screened:
            bits.append(f"with the screen {fmt_ms(screened[1])} %")
        if allm:
            bits.append(f"merge-all {fmt_ms(allm[1])} %")
        if rnd:
            bits.append(f"random-k {fmt_ms(rnd[1])} %")
        L.append(f"- **{label}, over {len(groups[label])} seeds**: " + ", ".join(bits) + ".")
    L.append("")
    out.write_text("\n".join(L) + "\n")
    print(f"wrote {out} and {figs}/")


if __name__ == "__main__":
    main()
