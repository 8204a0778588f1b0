#!/usr/bin/env python3
"""The shared job of the end-to-end comparison (bench/e2e/run.sh): one uqmerge config that both
`uqmerge run` and release_way.py read, and the side-by-side report of their results.

  job.py prepare CONFIG.yaml WORK [--limit N] [--perturbations J] [--zoo ZOO_DIR]
      Writes WORK/job.yaml: CONFIG's candidates, base model, seed, dtype, uq settings and merge /
      selection settings, with every path absolute, output_dir WORK/uqmerge, and each uq dataset
      rewritten to WORK/data/<name>.tsv holding its first N rows (all rows without --limit; a
      dataset's own `limit` caps N too, taken as the first rows instead of uqmerge's seeded
      subsample), so both tools read the same TSV rows. A row whose image cell names another
      row (VLMEvalKit's shared images) gets that row's image, so the cut file stands alone.
      `baselines` and `evaluation` are dropped: both tools do Algorithm 1 only (uncertainty of
      every candidate, the merges of the first t in descending order, the lowest picked).
      --zoo ZOO_DIR (a `uqmerge zoo --out ZOO_DIR` output): the candidates become that zoo's
      candidate_NN_<name> directories (named <name>), base_model its base, and each dataset path
      the file of the same name in ZOO_DIR/data (configs/demo.yaml on a smaller zoo).
      --perturbations J overrides uq.perturbations.
  job.py compare WORK UQMERGE_WALL_S RELEASE_WALL_S
      Prints both tools' per-candidate uncertainty, order, merge curve, chosen step, stage
      times and the wall-time ratio uqmerge / release (reads WORK/uqmerge/results.h5 and
      WORK/release/result.json). Differences are reported, never fatal: the two tools draw
      AugMix, prompts and dropout masks from different RNGs.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import yaml


def absolute(base, p):
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


def cut_tsv(src, dst, n):
    """First n data rows of a VLMEvalKit TSV (all if n is None), image references resolved."""
    lines = Path(src).read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    body = [l for l in lines[1:] if l.strip()]
    if "image" in head and "index" in head:
        ii, ix = head.index("image"), head.index("index")
        by_index = {}
        for l in body:
            c = l.split("\t")
            if len(c[ii]) > 64:
                by_index.setdefault(c[ix], c[ii])
    keep = body if n is None else body[:n]
    out = []
    for l in keep:
        c = l.split("\t")
        if "image" in head and "index" in head and len(c[ii]) <= 64 and c[ii] in by_index:
            c[ii] = by_index[c[ii]]
        out.append("\t".join(c))
    Path(dst).write_text("\n".join([lines[0]] + out) + "\n", encoding="utf-8")
    return len(out)


def prepare(args):
    src = Path(args.config).resolve()
    base = src.parent
    cfg = yaml.safe_load(src.read_text())
    work = Path(args.work).resolve()
    (work / "data").mkdir(parents=True, exist_ok=True)
    job = copy.deepcopy(cfg)
    job["output_dir"] = str(work / "uqmerge")
    for k in ("baselines", "evaluation"):
        job.pop(k, None)
    cands = job.get("candidates", job.pop("models", None))
    zoo = Path(args.zoo).resolve() if args.zoo else None
    if zoo:
        cands = [{"model": str(d), "name": d.name.split("_", 2)[2]} for d in sorted(zoo.glob("candidate_*")) if d.is_dir()]
        job["base_model"] = str(zoo / "base")
    if not cands:
        sys.exit("job.py: the config lists no candidates")
    job["candidates"] = []
    for c in cands:
        c = {"model": c} if isinstance(c, str) else dict(c)
        c.setdefault("name", Path(c["model"]).name)
        c["model"] = absolute(base, c["model"])
        job["candidates"].append(c)
    for k in ("base_model", "vision_tower"):
        if k in job and job[k] and not str(job[k]).startswith(("hf:", "openai/")):
            job[k] = absolute(base, job[k])
    uq = job.setdefault("uq", {})
    uq["cache_dir"] = str(work / "uqmerge-cache")
    if args.perturbations:
        uq["perturbations"] = args.perturbations
    rows = {}
    for d in uq.get("datasets", []):
        if d.get("pad_options_to"):
            sys.exit(f"job.py: dataset {d['name']}: pad_options_to is not supported (the release pads in its data "
                     "code: build the TSV with scripts/release_data.py, which pads, and drop the key)")
        path = str(zoo / "data" / Path(d["path"]).name) if zoo else absolute(base, d["path"])
        if not path.endswith(".tsv"):
            sys.exit(f"job.py: dataset {d['name']}: {path}: only VLMEvalKit TSVs are supported here")
        caps = [x for x in (args.limit, d.pop("limit", None)) if x is not None and x >= 0]
        out = work / "data" / f"{d['name']}.tsv"
        rows[d["name"]] = cut_tsv(path, out, min(caps) if caps else None)
        d["path"] = str(out)
    (work / "job.yaml").write_text(
        f"# Written by bench/e2e/job.py from {src}{' with --limit ' + str(args.limit) if args.limit else ''}\n"
        + yaml.safe_dump(job, sort_keys=False))
    print(f"job: {len(job['candidates'])} candidates; datasets " +
          ", ".join(f"{k} ({v} rows)" for k, v in rows.items()) +
          f"; J = {uq.get('perturbations', 4)}; attention_dropout {uq.get('attention_dropout', 0.1)}; "
          f"seed {job.get('seed', 1234)}; merge {job.get('merge', {}).get('method', 'linear')} -> {work / 'job.yaml'}")


def h5_text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def compare(args):
    import h5py

    work = Path(args.work)
    rel = json.loads((work / "release" / "result.json").read_text())
    with h5py.File(work / "uqmerge" / "results.h5", "r") as f:
        models = [f["uq"][k] for k in sorted(f["uq"])]
        names = [h5_text(m.attrs["name"]) for m in models]
        u_uq = [float(m.attrs["uq_macro"]) for m in models]
        u_sec = [float(m.attrs["seconds"]) for m in models]
        run = f["run"]
        u_order = [int(i) for i in run["order"][()]]
        u_curve = [float(x) for x in run["step_uq_macro"][()]]
        u_chosen = int(run.attrs["chosen_step"])
        u_rule = h5_text(run.attrs["rule"])
        steps = run["steps"]
        u_step_eval = sum(float(steps[k].attrs["seconds"]) for k in steps if k != "step_001")
        u_step_merge = sum(float(steps[k].attrs["merge_seconds"]) for k in steps)
        u_total = float(f["timing"].attrs["total_seconds"])
    r_uq = [c["uq"] for c in rel["candidates"]]
    print("\n== per-candidate uncertainty (macro: mean of dataset means) — close in expectation, not equal "
          "(different RNGs for AugMix, prompt choice, dropout)")
    print("| candidate | uqmerge | release way | diff |\n|---|---|---|---|")
    for n, a, b in zip(names, u_uq, r_uq):
        print(f"| {n} | {a:.6g} | {b:.6g} | {a - b:+.3g} |")
    print(f"\norder (descending):  uqmerge {[names[i] for i in u_order]}")
    print(f"                     release {[names[i] for i in rel['order']]}"
          + ("" if u_order == rel["order"] else "   (differs)"))
    print("\n| t | uqmerge step uq | release step uq |\n|---|---|---|")
    for t in range(max(len(u_curve), len(rel["curve"]))):
        a = f"{u_curve[t]:.6g}" if t < len(u_curve) else ""
        b = f"{rel['curve'][t]:.6g}" if t < len(rel["curve"]) else ""
        print(f"| {t + 1} | {a} | {b} |")
    print(f"\nchosen step ({u_rule}): uqmerge {u_chosen}, release way {rel['chosen_step']}"
          + ("" if u_chosen == rel["chosen_step"] else "   (differs: reported, not an error)"))
    print("\n== stage times (s)")
    print("| stage | uqmerge | release way |\n|---|---|---|")
    rs = rel["stages"]
    print(f"| candidates' uncertainty ({len(names)} models) | {sum(u_sec):.1f} | "
          f"{rs['candidate_load_s'] + rs['candidate_uq_s']:.1f} (load {rs['candidate_load_s']:.1f} + uq {rs['candidate_uq_s']:.1f}) |")
    print(f"| merges (t = 2..N) | {u_step_merge:.1f} | {rs['merge_s']:.1f} (mergekit-yaml, to disk) |")
    print(f"| merged models' uncertainty | {u_step_eval:.1f} | "
          f"{rs['step_load_s'] + rs['step_uq_s']:.1f} (reload {rs['step_load_s']:.1f} + uq {rs['step_uq_s']:.1f}) |")
    print(f"| tool's own total | {u_total:.1f} (results.h5 /timing) | {rel['total_s']:.1f} |")
    uw, rw = float(args.uqmerge_wall), float(args.release_wall)
    print(f"| wall (process, incl. start-up) | {uw:.1f} | {rw:.1f} |")
    print(f"\nratio uqmerge / release (wall): {uw / rw:.3f}   (release / uqmerge: {rw / uw:.2f}x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("config")
    p.add_argument("work")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--perturbations", type=int, default=None)
    p.add_argument("--zoo", default=None)
    c = sub.add_parser("compare")
    c.add_argument("work")
    c.add_argument("uqmerge_wall")
    c.add_argument("release_wall")
    a = ap.parse_args()
    prepare(a) if a.cmd == "prepare" else compare(a)


if __name__ == "__main__":
    main()
