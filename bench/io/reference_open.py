#!/usr/bin/env python3
"""Reference for `bench_checkpoint_io open`: the Python safetensors package opening every shard
of a checkpoint (safe_open + keys, i.e. headers only) through its index. Prints the median ms."""
import json
import statistics
import sys
import time
from pathlib import Path

from safetensors import safe_open

d, reps = Path(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(reps):
    t = time.perf_counter()
    idx = d / "model.safetensors.index.json"
    shards = sorted(set(json.loads(idx.read_text())["weight_map"].values())) if idx.exists() else ["model.safetensors"]
    n = 0
    for s in shards:
        with safe_open(str(d / s), framework="pt") as f:
            n += len(list(f.keys()))
    times.append(time.perf_counter() - t)
print(f"tensors {n}\nopen_median_ms {1e3 * statistics.median(times):.4f}")
