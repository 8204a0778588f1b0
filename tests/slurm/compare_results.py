#!/usr/bin/env python3
"""Compares two `uqmerge run` outputs that must hold the same numbers (the same config run
under mpirun and under Slurm, or straight through and interrupted + resumed): every dataset of
every group of results.h5 but /config and /timing (/uq, /run, /baselines, /accuracy, ...; float64
to --tol, relative), the attributes both files have (except timings, paths, host and date), and
the merged model's tensors.
  compare_results.py EXPECTED_OUTPUT_DIR ACTUAL_OUTPUT_DIR [--tol 1e-9]
Exit 0 when they agree, 1 otherwise (each difference printed)."""
import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

# Attributes that legitimately differ between two runs of one config (and every *seconds timing).
IGNORED_ATTRS = {"vision_passes", "created", "hostname", "path", "merged_dir", "uqmerge_version"}

ap = argparse.ArgumentParser()
ap.add_argument("expected", type=Path)
ap.add_argument("actual", type=Path)
ap.add_argument("--tol", type=float, default=1e-9)
args = ap.parse_args()
problems = []
compared = 0


def close(a, b, tol):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        if not np.array_equal(np.isnan(a64), np.isnan(b64)):
            return False, "NaN in different places"
        diff = np.abs(a64 - b64)[~np.isnan(a64)]
        worst = float(diff.max()) if diff.size else 0.0
        scale = max(1.0, float(np.abs(a64[~np.isnan(a64)]).max()) if diff.size else 1.0)
        return worst <= tol * scale, f"max abs diff {worst:.3e}"
    return bool(np.array_equal(a, b)), f"{a!r} vs {b!r}" if a.size < 8 else "values differ"


def compare_attrs(name, ea, aa):
    global compared
    for k in sorted(set(ea) & set(aa)):
        if k in IGNORED_ATTRS or k.endswith("seconds") or (name == "/config" and k == "yaml"):
            continue
        ok, how = close(ea[k], aa[k], args.tol)
        compared += 1
        if not ok:
            problems.append(f"{name} attr {k}: {how}")


with h5py.File(args.expected / "results.h5", "r") as fe, h5py.File(args.actual / "results.h5", "r") as fa:
    compare_attrs("/", fe.attrs, fa.attrs)
    problems += [f"expected file has no /{g}" for g in ("uq", "run") if g not in fe]
    for top in sorted(set(fe) - {"config", "timing"}):
        if not isinstance(fe[top], h5py.Group):
            continue
        if top not in fa:
            problems.append(f"/{top} missing")
            continue
        names_e, names_a = [], []
        fe[top].visit(names_e.append)
        fa[top].visit(names_a.append)
        for missing in sorted(set(names_e) - set(names_a)):
            problems.append(f"/{top}/{missing} missing")
        for extra in sorted(set(names_a) - set(names_e)):
            problems.append(f"/{top}/{extra} not in the expected file")
        compare_attrs(f"/{top}", fe[top].attrs, fa[top].attrs)
        for n in sorted(set(names_e) & set(names_a)):
            oe, oa = fe[top][n], fa[top][n]
            compare_attrs(f"/{top}/{n}", oe.attrs, oa.attrs)
            if isinstance(oe, h5py.Dataset):
                # float16 distributions are rounded: equal computations give equal halves.
                tol = 1e-3 if oe.dtype == np.float16 else args.tol
                ok, how = close(oe[()], oa[()], tol)
                compared += 1
                if not ok:
                    problems.append(f"/{top}/{n}: {how}")

# The merged model: same tensors (a linear merge is deterministic).
from safetensors.numpy import load_file  # noqa: E402

files_e = sorted(p.name for p in (args.expected / "merged").glob("*.safetensors"))
files_a = sorted(p.name for p in (args.actual / "merged").glob("*.safetensors"))
if files_e != files_a or not files_e:
    problems.append(f"merged/ shards {files_a} vs expected {files_e}")
else:
    for fn in files_e:
        te, ta = load_file(str(args.expected / "merged" / fn)), load_file(str(args.actual / "merged" / fn))
        if sorted(te) != sorted(ta):
            problems.append(f"merged/{fn}: different tensor names")
            continue
        for k in te:
            ok, how = close(te[k], ta[k], 1e-6)
            compared += 1
            if not ok:
                problems.append(f"merged/{fn} {k}: {how}")

for p in problems:
    print("DIFF " + p)
print(f"compare_results: {compared} values compared, {len(problems)} differences "
      f"({args.actual} vs {args.expected})")
sys.exit(1 if problems else 0)
