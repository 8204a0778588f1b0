#!/usr/bin/env python3
"""Uncertainty versus merge step from a `uqmerge run` results.h5: the macro curve with error bars
(the per-dataset standard errors combined), one curve per dataset, and the steps each selection
rule chose; with /baselines also the ascending-order curve (dashed), merge_all as a horizontal
reference line, and random_k / accuracy_guided as points at their merge size (mean ± stderr over
their sets).   plot.py results.h5 -o out.png"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def draw_baselines(ax, bl):
    """The stored baselines' macro uncertainty on the step axis (x = merge size k)."""
    if "ascending" in bl and "curve" in bl["ascending"]:
        curve = bl["ascending"]["curve"][()]
        ax.plot(np.arange(1, len(curve) + 1), curve, linestyle="--", marker="x", color="tab:gray",
                label="ascending order (baseline)")
    if "merge_all" in bl:
        ax.axhline(bl["merge_all"]["uq_macro"][()].mean(), linestyle=":", color="tab:gray", label="merge_all")
    for name, marker, color in (("random_k", "s", "tab:green"), ("accuracy_guided", "D", "tab:purple")):
        if name not in bl or "members" not in bl[name]:
            continue
        u = bl[name]["uq_macro"][()]
        k = bl[name]["members"].shape[1]
        se = u.std(ddof=1) / np.sqrt(len(u)) if len(u) > 1 else 0.0
        ax.errorbar([k], [u.mean()], yerr=[se], marker=marker, color=color, linestyle="none", capsize=3,
                    label=f"{name} (k={k}, {len(u)} set{'s' if len(u) > 1 else ''})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    f = h5py.File(a.results, "r")
    if "run" not in f:
        raise SystemExit(f"{a.results}: no /run group (plot.py needs the output of `uqmerge run`)")
    run = f["run"]
    steps = run["step_uq_macro"][()]
    t = np.arange(1, len(steps) + 1)
    dnames = list(run["datasets"].keys())
    se = np.sqrt(sum(run["datasets"][d]["step_uq_stderr"][()] ** 2 for d in dnames)) / len(dnames)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for d in dnames:
        ax.plot(t, run["datasets"][d]["step_uq_mean"][()], marker=".", alpha=0.5, label=d)
    ax.errorbar(t, steps, yerr=se, color="black", marker="o", capsize=3, label="average (macro)")
    if "baselines" in f:
        draw_baselines(ax, f["baselines"])
    for rule, style in (("global_min", "--"), ("early_stop", ":")):
        s = int(run.attrs[f"{rule}_step"])
        ax.axvline(s, linestyle=style, color="tab:red", alpha=0.8, label=f"{rule}: step {s}")
    ax.set_xlabel("merge step t (first t candidates, descending uncertainty)")
    ax.set_ylabel("uncertainty H(mean p) - mean H(p)")
    ax.set_xticks(t)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
