#!/usr/bin/env python3
"""Checks results.h5 of the uq end-to-end runs: schema, sane values, vision passes = samples x J
once per run (the second candidate reuses cached features), and the same numbers from 1 and 2
MPI ranks (<= 1e-6).   check_uq.py RUN_NP1/results.h5 RUN_NP2/results.h5"""
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from uqtest import check, summary, text  # noqa: E402

one, two = (h5py.File(p, "r") for p in sys.argv[1:3])
check(text(one.attrs["schema"]) == "uqmerge-results" and one.attrs["schema_version"] == 1, "schema and version")
check("perturbations: 3" in text(one["config"].attrs["yaml"]), "the config's YAML is recorded")
check(one.attrs["ranks"] == 1 and two.attrs["ranks"] == 2, "rank counts recorded")
J = int(one["config"].attrs["perturbations"])
models = sorted(one["uq"].keys())
check(models == ["model_000", "model_001"], f"two candidates ({models})")
samples = sum(int(one["uq/model_000"][d].attrs["samples"]) for d in one["uq/model_000"])
check(int(one["uq/model_000"].attrs["vision_passes"]) == samples * J, f"vision passes of the first model = samples x J = {samples * J}")
check(int(one["uq/model_001"].attrs["vision_passes"]) == 0, "the second model reuses every cached vision feature")
check(int(two["uq/model_000"].attrs["vision_passes"]) == samples * J, "same vision passes with 2 ranks")
worst = 0.0
for m in models:
    for d in one["uq"][m]:
        a, b = one["uq"][m][d], two["uq"][m][d]
        u = a["uq"][()]
        check(np.all(np.isfinite(u)) and np.all(u >= -1e-12), f"{m}/{d}: finite, non-negative uncertainties")
        check(np.allclose(a["total"][()] - a["data"][()], u, atol=1e-12), f"{m}/{d}: uq = total - data")
        check(a["total"][()].max() <= np.log(int(a.attrs["options"])) + 1e-9, f"{m}/{d}: total entropy <= log K")
        for key in ("uq", "total", "data"):
            worst = max(worst, float(np.abs(a[key][()] - b[key][()]).max()))
check(worst <= 1e-6, f"1 rank vs 2 ranks: max difference {worst:.2e} <= 1e-6")
pm = one["uq/model_000/Shapes/p_mean"]
K = int(one["uq/model_000/Shapes"].attrs["options"])
check(pm.dtype == np.float16 and pm.shape == (int(one["uq/model_000/Shapes"].attrs["samples"]), K),
      f"per-sample mean distributions stored as float16 [samples, K] ({pm.dtype}, {pm.shape})")
rows = pm[()].astype(np.float64)
check(np.allclose(rows.sum(1), 1.0, atol=5e-3), "each stored distribution sums to 1 (float16 rounding)")
# total entropy recomputed from the stored distribution matches (within float16 precision)
h = -(np.where(rows > 0, rows * np.log(np.where(rows > 0, rows, 1)), 0)).sum(1)
check(np.allclose(h, one["uq/model_000/Shapes/total"][()], atol=5e-3), "H(p_mean) from the stored distributions = total")
ua = one["uq/model_000/Shapes"].attrs["uq_mean"]
ub = one["uq/model_001/Shapes"].attrs["uq_mean"]
check(abs(ua - ub) > 1e-9, f"the two candidates differ ({ua:.6f} vs {ub:.6f})")
sys.exit(summary())
