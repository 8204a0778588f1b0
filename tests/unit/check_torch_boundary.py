#!/usr/bin/env python3
"""The torch boundary (docs/architecture.md): no public header of util, io, dist, data, perturb,
merge/config or pipeline reaches torch, ATen or c10, directly or through another uqmerge header.
Exits 1 naming the header and the include chain that leaks."""
import re
import sys
from pathlib import Path

include = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "include")
TORCH = re.compile(r'#\s*include\s*[<"](torch|ATen|c10)/')
PROJECT = re.compile(r'#\s*include\s*"(uqmerge/[^"]+)"')
TORCH_FREE = ["util", "io", "dist", "data", "perturb", "pipeline"]
TORCH_FREE_FILES = ["merge/config.hpp", "uq/options.hpp", "uq/result.hpp", "uq/estimator.hpp", "uq/vision_cache.hpp",
                    "model/tokenizer.hpp", "model/prompt.hpp", "model/image.hpp", "zoo/world.hpp"]


def leak(header: Path, seen: set) -> list:
    """The include chain from `header` to a torch header, or [] when there is none."""
    if header in seen or not header.exists():
        return []
    seen.add(header)
    text = header.read_text()
    m = TORCH.search(text)
    if m:
        return [str(header.relative_to(include)), m.group(0)]
    for dep in PROJECT.findall(text):
        chain = leak(include / dep, seen)
        if chain:
            return [str(header.relative_to(include))] + chain
    return []


headers = [h for d in TORCH_FREE for h in sorted((include / "uqmerge" / d).glob("*.hpp"))]
headers += [include / "uqmerge" / f for f in TORCH_FREE_FILES]
missing = [h for h in headers if not h.exists()]
if missing or len(headers) < 20:
    print(f"check_torch_boundary: expected headers missing under {include}: {missing}")
    sys.exit(1)
bad = [(h, c) for h in headers if (c := leak(h, set()))]
for h, chain in bad:
    print(f"{h.relative_to(include)} reaches torch: {' -> '.join(chain)}")
print(f"{len(headers) - len(bad)} passed, {len(bad)} failed")
sys.exit(1 if bad else 0)
