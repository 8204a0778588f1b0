#!/usr/bin/env python3
"""safetensors files both ways between the Python `safetensors` package and uqmerge.

  safetensors_ref.py make DIR     writes files with the Python package + DIR/manifest.json
                                  (raw little-endian bytes of each tensor, in hex) for the C++
                                  reader test to compare against
  safetensors_ref.py verify DIR   reads the files uqmerge's writer made (see
                                  test_reference_io.cpp, ReferenceWrite) with the Python package
                                  and checks names, dtypes, shapes, values, metadata and index.
Values written by C++: element i of every tensor is v(i) = (7 i mod 23) - 11 converted to the
dtype (U8: 7 i mod 23; BOOL: i mod 3 == 0), shape [3, 5].
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
         "BOOL": torch.bool}


def raw_hex(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes().hex()


def make(out):
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    manifest = {}
    files = {
        "all_dtypes.safetensors": {
            f"x_{name}": (torch.randn(2, 3, generator=g) * 50).to(dt) if dt.is_floating_point
            else torch.randint(0, 2 if dt == torch.bool else 100, (4, 2), generator=g).to(dt)
            for name, dt in TORCH.items()},
        "odd_shapes.safetensors": {"scalar": torch.tensor(3.5), "empty": torch.zeros(0, 4),
                                   "vec": torch.arange(5, dtype=torch.int16), "big": torch.randn(64, 33, generator=g)},
    }
    for fname, tensors in files.items():
        meta = {"format": "pt", "made_by": "safetensors_ref.py"}
        save_file(tensors, str(out / fname), metadata=meta)
        manifest[fname] = {"metadata": meta,
                           "tensors": {n: {"dtype": k, "shape": list(t.shape), "hex": raw_hex(t)}
                                       for n, t in tensors.items()
                                       for k in [next(k for k, v in TORCH.items() if v == t.dtype)]}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    print(f"wrote {len(files)} files to {out}")


def expected(dtype, n=15):
    i = np.arange(n)
    if dtype == "BOOL":
        return torch.from_numpy(i % 3 == 0)
    if dtype == "U8":
        return torch.from_numpy((7 * i) % 23).to(torch.uint8)
    return torch.from_numpy((7 * i) % 23 - 11).to(TORCH[dtype])


def verify(d):
    failures = 0
    single = d / "single.safetensors"
    with safe_open(str(single), framework="pt") as f:
        meta = f.metadata()
        assert meta == {"format": "pt", "writer": "uqmerge"}, meta
        keys = sorted(f.keys())
        assert keys == sorted(f"t_{k}" for k in TORCH), keys
        for k in TORCH:
            t = f.get_tensor(f"t_{k}")
            if t.dtype != TORCH[k] or list(t.shape) != [3, 5] or not torch.equal(t.flatten(), expected(k)):
                print(f"FAIL {single}: t_{k}: {t.dtype} {list(t.shape)} {t.flatten().tolist()}")
                failures += 1
    index = json.loads((d / "sharded" / "model.safetensors.index.json").read_text())
    wm = index["weight_map"]
    total = 0
    for name, shard in wm.items():
        with safe_open(str(d / "sharded" / shard), framework="pt") as f:
            t = f.get_tensor(name)
            total += t.numel() * t.element_size()
            if not torch.equal(t.flatten(), expected("F32")):
                print(f"FAIL sharded {name}")
                failures += 1
    assert len(wm) == 6 and len(set(wm.values())) == 3, wm
    assert index["metadata"]["total_size"] == total, (index["metadata"], total)
    print(f"{'FAIL' if failures else 'OK'}: the Python safetensors package read uqmerge's files "
          f"({len(TORCH)} dtypes, {len(wm)} sharded tensors, {failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    mode, d = sys.argv[1], Path(sys.argv[2])
    sys.exit(make(d) if mode == "make" else verify(d))
