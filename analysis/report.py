#!/usr/bin/env python3
"""Tables from a uqmerge results.h5 (docs/results-h5.md), in the paper's shapes.

  report.py results.h5 [--eval eval.h5] [--csv OUT_DIR] [--bootstrap N] [--seed S]

Prints markdown:
  - per-candidate x dataset uncertainty (the paper's Table 7 shape, with the macro average);
  - for `uqmerge run` files: the merge order, per-step uncertainty (Tables 4/11 shape) with
    per-dataset means +- standard errors, both selection rules' picks, and their stability:
    resampling samples with replacement (bootstrap over the stored per-sample uncertainties),
    the probability that each step is the one chosen, per rule;
  - with --eval: candidate accuracy beside uncertainty and their Spearman rank correlation.
With --csv, writes the same tables as CSV files into OUT_DIR.
"""
import argparse
import csv
from pathlib import Path

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if len(a) < 2 or np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def early_stop(u, patience):
    best, rises = 0, 0
    for t in range(1, len(u)):
        rises = rises + 1 if u[t] > u[t - 1] else 0
        if u[t] < u[best]:
            best = t
        if rises >= patience:
            break
    return best + 1


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--eval", help="eval.h5 from uqmerge eval (accuracy)")
    ap.add_argument("--csv", help="directory for CSV copies of the tables")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    f = h5py.File(a.results, "r")
    if text(f.attrs.get("schema", "")) != "uqmerge-results":
        raise SystemExit(f"{a.results}: not a uqmerge results.h5 (schema attribute missing)")
    tables = {}
    models = [f["uq"][k] for k in sorted(f["uq"])]
    datasets = list(models[0].keys())
    rows = []
    for m in models:
        rows.append([text(m.attrs["name"])] + [f"{m[d].attrs['uq_mean']:.5f} ± {m[d].attrs['uq_stderr']:.5f}" for d in datasets]
                    + [f"{m.attrs['uq_macro']:.5f}"])
    tables["candidates"] = (["model"] + datasets + ["average"], rows)
    print("## Uncertainty per candidate and dataset (mean ± stderr)\n")
    print(table(rows, tables["candidates"][0]) + "\n")

    if a.eval:
        e = h5py.File(a.eval, "r")
        acc = {text(g.attrs["name"]): g.attrs["accuracy_macro"] for g in (e["eval"][k] for k in sorted(e["eval"]))}
        names = [text(m.attrs["name"]) for m in models]
        us = [m.attrs["uq_macro"] for m in models]
        accs = [acc.get(n, float("nan")) for n in names]
        rows = [[n, f"{u:.5f}", f"{x:.2f}"] for n, u, x in zip(names, us, accs)]
        tables["accuracy"] = (["model", "uncertainty", "accuracy"], rows)
        print("## Uncertainty and accuracy\n")
        print(table(rows, tables["accuracy"][0]))
        print(f"\nSpearman rank correlation (uncertainty, accuracy): {spearman(us, accs):.3f}\n")

    if "run" in f:
        run = f["run"]
        names = [text(m.attrs["name"]) for m in models]
        order = list(run["order"][()])
        steps = run["step_uq_macro"][()]
        print("## Algorithm 1\n")
        print("order (descending uncertainty): " + ", ".join(names[i] for i in order) + "\n")
        dnames = list(run["datasets"].keys())
        rows = []
        for t in range(len(steps)):
            row = [t + 1, f"{steps[t]:.5f}"]
            for d in dnames:
                row.append(f"{run['datasets'][d]['step_uq_mean'][t]:.5f} ± {run['datasets'][d]['step_uq_stderr'][t]:.5f}")
            marks = []
            if t + 1 == run.attrs["global_min_step"]:
                marks.append("global_min")
            if t + 1 == run.attrs["early_stop_step"]:
                marks.append("early_stop")
            rows.append(row + [" ".join(marks)])
        tables["steps"] = (["step", "uncertainty"] + dnames + ["selected by"], rows)
        print(table(rows, tables["steps"][0]))
        print(f"\nchosen ({text(run.attrs['rule'])}): step {int(run.attrs['chosen_step'])} -> {text(run.attrs['merged_dir'])}\n")
        # Selection stability: bootstrap the samples of every dataset, recompute each step's
        # macro uncertainty, and count which step each rule picks.
        rng = np.random.default_rng(a.seed)
        per_step = []  # per step: list of per-dataset sample arrays
        for t in range(len(steps)):
            g = run["steps"][f"step_{t + 1:03d}"]
            per_step.append([g[f"{d}_uq"][()] for d in dnames])
        patience = int(run.attrs["patience"])
        counts = {"global_min": np.zeros(len(steps)), "early_stop": np.zeros(len(steps))}
        for _ in range(a.bootstrap):
            u = np.zeros(len(steps))
            for di in range(len(dnames)):
                n = len(per_step[0][di])
                idx = rng.integers(0, n, n)
                for t in range(len(steps)):
                    u[t] += per_step[t][di][idx].mean() / len(dnames)
            counts["global_min"][int(np.argmin(u))] += 1
            counts["early_stop"][early_stop(u, patience) - 1] += 1
        rows = [[t + 1, f"{counts['global_min'][t] / a.bootstrap:.3f}", f"{counts['early_stop'][t] / a.bootstrap:.3f}"]
                for t in range(len(steps))]
        tables["stability"] = (["step", "P(chosen) global_min", "P(chosen) early_stop"], rows)
        print(f"## Selection stability ({a.bootstrap} bootstrap resamples of the samples)\n")
        print(table(rows, tables["stability"][0]) + "\n")

    if a.csv:
        out = Path(a.csv)
        out.mkdir(parents=True, exist_ok=True)
        for name, (header, rows) in tables.items():
            with open(out / f"{name}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                w.writerows(rows)
        print(f"CSV tables in {out}")


if __name__ == "__main__":
    main()
