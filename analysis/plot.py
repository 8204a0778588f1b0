#!/usr/bin/env python3
"""Uncertainty versus merge step from a `uqmerge run` results.h5: the macro curve with error bars
(the per-dataset standard errors combined), one curve per dataset, and the steps each selection
rule chose.   plot.py results.h5 -o out.png"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
