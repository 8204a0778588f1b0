#!/usr/bin/env python3
"""Tables from a uqmerge results.h5 (docs/results-h5.md), in the paper's shapes.

  report.py results.h5 [--eval eval.h5] [--csv OUT_DIR] [--bootstrap N] [--seed S]

Prints markdown:
  - per-candidate x dataset uncertainty (the paper's Table 7 shape, with the macro average);
  - for `uqmerge run` files: the merge order, per-step uncertainty (Tables 4/11 shape) with
    per-dataset means +- standard errors, both selection rules' picks, and their stability:
    resampling samples with replacement (bootstrap over the stored per-sample uncertainties),
    the probability that each step is the one chosen, per rule;
  - with accuracy (results.h5 /accuracy, written by `uqmerge run` with evaluation.datasets; else
    --eval eval.h5 from `uqmerge eval`): per-candidate x dataset accuracy (the held-out tables'
    shape, with the chosen merge when known), and accuracy beside uncertainty with their
    Spearman rank correlation;
  - with /baselines: each baseline's uncertainty and accuracy, mean +- standard error over its
    evaluated sets (random_k: over its repeats), beside UQ-Merge's choice and the best single
    candidate by accuracy.
With --csv, writes the same tables as CSV files into OUT_DIR (empty cell: no value).
"""
import argparse
import csv
import sys
from pathlib import Path

import h5py
import numpy as np

BASELINES = ("merge_all", "random_k", "ascending", "accuracy_guided")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def ranks(x):
    """Ranks with ties sharing their average rank."""
    x = np.asarray(x, dtype=float)
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    for v in np.unique(x):
        r[x == v] = r[x == v].mean()
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
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


def mean_se(values, digits):
    """'mean ± stderr' (sample sd / sqrt n) of values; just the mean for a single value."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return f"{x.mean():.{digits}f}"
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1) / np.sqrt(len(x)):.{digits}f}"


def table(rows, header):
    """Markdown table; None cells (no value) show as a dash."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("—" if c is None else str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def load_accuracy(f, eval_path, names):
    """Candidate accuracy (%) from results.h5 /accuracy, else from eval.h5 (matched by name).
    Returns None without either, else a dict: source, datasets, per [N, D], macro [N], and
    chosen [D] / chosen_macro (the chosen merge; results.h5 only, else None)."""
    if "accuracy" in f:
        g = f["accuracy"]
        if eval_path:
            print(f"note: {eval_path} not used for accuracy: {f.filename} has /accuracy", file=sys.stderr)
        return {"source": "results.h5 /accuracy",
                "datasets": [d.strip() for d in text(g.attrs["datasets"]).split(",") if d.strip()],
                "per": g["candidates"][()], "macro": g["candidates_macro"][()],
                "chosen": g["chosen"][()], "chosen_macro": float(g.attrs["chosen_macro"])}
    if not eval_path:
        return None
    e = h5py.File(eval_path, "r")
    by_name = {text(g.attrs["name"]): g for g in (e["eval"][k] for k in sorted(e["eval"]))}
    datasets = list(next(iter(by_name.values())).keys()) if by_name else []
    nan = float("nan")
    per = [[by_name[n][d].attrs["accuracy"] if n in by_name and d in by_name[n] else nan for d in datasets] for n in names]
    macro = [by_name[n].attrs["accuracy_macro"] if n in by_name else nan for n in names]
    return {"source": eval_path, "datasets": datasets, "per": np.asarray(per, dtype=float).reshape(len(names), len(datasets)),
            "macro": np.asarray(macro, dtype=float), "chosen": None, "chosen_macro": None}


def baselines_rows(f, names, us, acc):
    """One row per stored baseline, then UQ-Merge's choice (with /run) and the best single
    candidate by accuracy (with accuracy): method, k, sets, uncertainty, accuracy, detail."""
    rows = []
    present = [b for b in BASELINES if b in f["baselines"]] + sorted(set(f["baselines"]) - set(BASELINES))
    for name in present:
        b = f["baselines"][name]
        u = b["uq_macro"][()]
        k = b["members"].shape[1] if "members" in b else int(b.attrs.get("k", 0)) or None
        details = [f"{a} {int(b.attrs[a])}" for a in ("seed", "global_min_step", "early_stop_step", "chosen_step") if a in b.attrs]
        if "members" in b and len(u) == 1:
            details.append("members " + " ".join(names[i] for i in b["members"][0]))
        accuracy = mean_se(b["accuracy_macro"][()], 2) if "accuracy_macro" in b else None
        rows.append([name, k, len(u), mean_se(u, 5), accuracy, "; ".join(details)])
    if "run" in f:
        run = f["run"]
        t = int(run.attrs["chosen_step"])
        accuracy = f"{acc['chosen_macro']:.2f}" if acc and acc["chosen_macro"] is not None else None
        members = " ".join(names[i] for i in run["order"][:t])
        rows.append([f"UQ-Merge ({text(run.attrs['rule'])})", t, 1, f"{run['step_uq_macro'][t - 1]:.5f}", accuracy,
                     f"chosen_step {t}; members {members}"])
    if acc and np.isfinite(acc["macro"]).any():
        i = int(np.nanargmax(acc["macro"]))
        rows.append(["best single (accuracy)", 1, 1, f"{us[i]:.5f}", f"{acc['macro'][i]:.2f}", f"members {names[i]}"])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--eval", help="eval.h5 from uqmerge eval (accuracy; results.h5 /accuracy is preferred)")
    ap.add_argument("--csv", help="directory for CSV copies of the tables")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    f = h5py.File(a.results, "r")
    if text(f.attrs.get("schema", "")) != "uqmerge-results":
        raise SystemExit(f"{a.results}: not a uqmerge results.h5 (schema attribute missing)")
    tables = {}
    models = [f["uq"][k] for k in sorted(f["uq"])]
    names = [text(m.attrs["name"]) for m in models]
    us = [m.attrs["uq_macro"] for m in models]
    datasets = list(models[0].keys())
    rows = []
    for m in models:
        rows.append([text(m.attrs["name"])] + [f"{m[d].attrs['uq_mean']:.5f} ± {m[d].attrs['uq_stderr']:.5f}" for d in datasets]
                    + [f"{m.attrs['uq_macro']:.5f}"])
    tables["candidates"] = (["model"] + datasets + ["average"], rows)
    print("## Uncertainty per candidate and dataset (mean ± stderr)\n")
    print(table(rows, tables["candidates"][0]) + "\n")

    acc = load_accuracy(f, a.eval, names)
    if acc:
        rows = [[n] + [f"{x:.2f}" for x in acc["per"][i]] + [f"{acc['macro'][i]:.2f}"] for i, n in enumerate(names)]
        if acc["chosen"] is not None and "run" in f:
            rows.append([f"UQ-Merge (step {int(f['run'].attrs['chosen_step'])})"] + [f"{x:.2f}" for x in acc["chosen"]]
                        + [f"{acc['chosen_macro']:.2f}"])
        tables["candidate_accuracy"] = (["model"] + acc["datasets"] + ["average"], rows)
        print(f"## Accuracy per candidate and dataset (%, from {acc['source']})\n")
        print(table(rows, tables["candidate_accuracy"][0]) + "\n")
        rows = [[n, f"{u:.5f}", f"{x:.2f}"] for n, u, x in zip(names, us, acc["macro"])]
        tables["accuracy"] = (["model", "uncertainty", "accuracy"], rows)
        print("## Uncertainty and accuracy\n")
        print(table(rows, tables["accuracy"][0]))
        print(f"\nSpearman rank correlation (uncertainty, accuracy): {spearman(us, acc['macro']):.3f}\n")

    if "run" in f:
        run = f["run"]
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

    if "baselines" in f:
        rows = baselines_rows(f, names, us, acc)
        tables["baselines"] = (["method", "k", "sets", "uncertainty", "accuracy", "detail"], rows)
        print("## Baselines (macro uncertainty and accuracy, mean ± stderr over the evaluated sets)\n")
        print(table(rows, tables["baselines"][0]) + "\n")

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
