#!/usr/bin/env python3
"""The merge-method lists users read agree with the registry: `uqmerge merge --help` (generated
from merge::method_names()) names exactly the methods README.md's `uqmerge merge` line names
(`x[_y]` there stands for x and x_y). Exits 1 naming the difference."""
import re
import subprocess
import sys
from pathlib import Path

uqmerge, readme = sys.argv[1], Path(sys.argv[2])
help_text = subprocess.run([uqmerge, "merge", "--help"], capture_output=True, text=True, check=True).stdout
m = re.search(r"mergekit YAML \(([^)]*)\)", " ".join(help_text.split()))
if not m:
    sys.exit("check_docs: `uqmerge merge --help` has no '(method, ...)' list")
registry = {x.strip() for x in m.group(1).split(",")}

line = next((l for l in readme.read_text().splitlines() if "uqmerge merge MERGEKIT.yaml" in l), None)
if line is None:
    sys.exit(f"check_docs: {readme} has no `uqmerge merge MERGEKIT.yaml` usage line")
i = readme.read_text().index(line)
m = re.search(r"mergekit YAML \(([^)]*)\)", " ".join(readme.read_text()[i:i + 800].split()))
if not m:
    sys.exit(f"check_docs: {readme}'s `uqmerge merge` entry has no '(method, ...)' list")
documented = set()
for item in (x.strip() for x in m.group(1).split(",")):
    b = re.fullmatch(r"(\w+)\[(\w+)\]", item)
    documented |= {b.group(1), b.group(1) + b.group(2)} if b else {item}
ok = documented == registry
if not ok:
    print(f"README.md lists {sorted(documented - registry)} that the registry lacks, "
          f"and lacks {sorted(registry - documented)}")
print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
sys.exit(0 if ok else 1)
