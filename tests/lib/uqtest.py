#!/usr/bin/env python3
"""The one Python helper of the tests (tests/e2e, tests/reference, tests/slurm): checks, the
prompt and image reference of `uqmerge answer` / `eval`, and the comparison of two `uqmerge run`
outputs. Scripts import it by a path relative to their own file:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    import uqtest

Checks:      check(cond, msg) prints "ok   msg" / "FAIL msg" and counts; summary() prints
             "P passed, F failed" and returns the exit status (sys.exit(uqtest.summary())).
Reference:   llava_v1_prompt, expand_image_token, pad_preprocess, option_logits: what
             transformers + PIL give for the prompt uqmerge builds (llava_v1, the two extra
             options, the image token expanded to the tower's patch count, LLaVA "pad" images).
Comparison:  compare_outputs(EXPECTED_DIR, ACTUAL_DIR): results.h5 in both directions (every
             group, dataset and attribute of either file must be in the other; values equal up
             to the tolerance, timings, paths, host and date aside) and the merged/ tensors.
             As a command:  uqtest.py compare EXPECTED_DIR ACTUAL_DIR [--tol 1e-9] [--exact]
                            [--ignore-attr NAME ...]
             (exit 0 when they agree, 1 otherwise, each difference printed as "DIFF ...").
"""
import sys
from pathlib import Path

import numpy as np

# ---- checks ------------------------------------------------------------------------------------

passed = 0
failed = 0


def check(cond, msg):
    """Prints "ok   msg" or "FAIL msg" and counts it; returns bool(cond)."""
    global passed, failed
    ok = bool(cond)
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    passed += ok
    failed += not ok
    return ok


def summary():
    """Prints "P passed, F failed"; returns the exit status (1 when a check failed)."""
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def text(v):
    """An HDF5 string attribute as str (h5py gives bytes or str)."""
    return v.decode() if isinstance(v, bytes) else str(v)


# ---- the prompt and image reference --------------------------------------------------------

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the human's questions.")
EXTRA_OPTIONS = ["I don't know", "None of the above"]
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])


def llava_v1_prompt(question, options, hint=""):
    """The llava_v1 prompt uqmerge builds for a multiple-choice question: the options lettered
    A, B, ... with the two extras appended. Returns (prompt, letters)."""
    opts = list(options) + EXTRA_OPTIONS
    letters = [chr(65 + i) for i in range(len(opts))]
    body = (hint + "\n" if hint else "") + question + "\n" + "".join(f"{l}. {o}\n" for l, o in zip(letters, opts))
    body += "Answer with the option's letter from the given choices directly."
    return SYSTEM + " USER: <image>\n" + body + " ASSISTANT:", letters


def expand_image_token(ids, image_token, count):
    """Token ids with each image token repeated `count` times (one per vision patch)."""
    out = []
    for t in ids:
        out.extend([image_token] * count if t == image_token else [t])
    return out


def pad_preprocess(image, size):
    """LLaVA's "pad" preprocessing with PIL: the image (a path, a file object or a PIL image)
    centred on a square of the CLIP mean colour, bicubic to size x size, CLIP-normalised.
    Returns a float32 tensor [1, 3, size, size]."""
    import torch
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.open(image)
    im = im.convert("RGB")
    side = max(im.size)
    sq = Image.new("RGB", (side, side), tuple(int(x * 255) for x in CLIP_MEAN))
    sq.paste(im, ((side - im.size[0]) // 2, (side - im.size[1]) // 2))
    a = (np.asarray(sq.resize((size, size), Image.BICUBIC), dtype=np.float64) / 255 - CLIP_MEAN) / CLIP_STD
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)).unsqueeze(0)


def option_logits(model, tok, image, question, options, hint=""):
    """transformers' option logits for the prompt `uqmerge answer` builds (llava_v1_prompt, the
    image token expanded to the tower's patch count, pad_preprocess). Returns (prompt, letters,
    option token ids, logits as float64)."""
    import torch

    cfg = model.config
    size, patch = cfg.vision_config.image_size, cfg.vision_config.patch_size
    prompt, letters = llava_v1_prompt(question, options, hint)
    ids = expand_image_token(tok(prompt).input_ids, cfg.image_token_index, (size // patch) ** 2)
    px = pad_preprocess(image, size)
    rows = [tok(l).input_ids[-1] for l in letters]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), pixel_values=px).logits[0, -1, rows]
    return prompt, letters, rows, logits.double()


# ---- two `uqmerge run` outputs ---------------------------------------------------------------

# Attributes whose values legitimately differ between two runs of one config (timings, paths,
# the host, the date, work counters that depend on a cold cache): neither compared nor required.
IGNORED_ATTR_PARTS = ("seconds", "created", "path", "yaml", "merged_dir", "vision_passes")
IGNORED_ATTRS = {"hostname", "uqmerge_version"}


def ignored_attr(name):
    return name in IGNORED_ATTRS or any(p in name for p in IGNORED_ATTR_PARTS)


def close(a, b, tol):
    """(equal within tol relative to max(1, max |a|), how they differ). Non-floats: exactly."""
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


def compare_h5(expected, actual, tol=1e-9, exact=False):
    """Compares two results.h5 files both ways. Returns (problems, values compared)."""
    import h5py

    problems = []
    compared = 0
    f16_tol = 0.0 if exact else max(tol, 1e-3)  # float16 distributions are rounded
    tol = 0.0 if exact else tol

    def attrs(name, oe, oa):
        nonlocal compared
        ke = {k for k in oe.attrs if not ignored_attr(k)}
        ka = {k for k in oa.attrs if not ignored_attr(k)}
        problems.extend(f"{name} attr {k} missing" for k in sorted(ke - ka))
        problems.extend(f"{name} attr {k} not in the expected file" for k in sorted(ka - ke))
        for k in sorted(ke & ka):
            ok, how = close(oe.attrs[k], oa.attrs[k], tol)
            compared += 1
            if not ok:
                problems.append(f"{name} attr {k}: {how}")

    with h5py.File(expected, "r") as fe, h5py.File(actual, "r") as fa:
        names_e, names_a = [], []
        fe.visit(names_e.append)
        fa.visit(names_a.append)
        problems.extend(f"/{n} missing" for n in sorted(set(names_e) - set(names_a)))
        problems.extend(f"/{n} not in the expected file" for n in sorted(set(names_a) - set(names_e)))
        attrs("/", fe, fa)
        for n in sorted(set(names_e) & set(names_a)):
            oe, oa = fe[n], fa[n]
            if isinstance(oe, h5py.Dataset) != isinstance(oa, h5py.Dataset):
                problems.append(f"/{n}: a dataset in one file, a group in the other")
                continue
            attrs(f"/{n}", oe, oa)
            if isinstance(oe, h5py.Dataset):
                ok, how = close(oe[()], oa[()], f16_tol if oe.dtype == np.float16 else tol)
                compared += 1
                if not ok:
                    problems.append(f"/{n}: {how}")
    return problems, compared


def compare_merged(expected_dir, actual_dir, tol=1e-6):
    """Compares two merged/ model directories tensor by tensor, whatever the shard files (a
    run on R ranks writes R shards). Returns (problems, compared)."""
    from safetensors.numpy import load_file

    def tensors(d):
        out = {}
        for p in sorted(Path(d).glob("*.safetensors")):
            out.update(load_file(str(p)))
        return out

    te, ta = tensors(expected_dir), tensors(actual_dir)
    if not te or sorted(te) != sorted(ta):
        return [f"merged/: tensor names differ ({len(ta)} vs expected {len(te)})"], 0
    problems = []
    for k in sorted(te):
        ok, how = close(te[k], ta[k], tol)
        if not ok:
            problems.append(f"merged/ {k}: {how}")
    return problems, len(te)


def compare_outputs(expected, actual, tol=1e-9, exact=False):
    """Two `uqmerge run` output directories that must hold the same numbers (the same config
    under mpirun and under Slurm, or straight through and stopped + resumed): results.h5 both
    ways (compare_h5) and merged/ (compare_merged, tolerance 1e-6 unless exact). Returns
    (problems, values compared)."""
    import h5py

    expected, actual = Path(expected), Path(actual)
    problems = []
    for p in (expected / "results.h5", actual / "results.h5"):
        if not p.is_file():
            problems.append(f"{p} missing")
    if problems:
        return problems, 0
    with h5py.File(expected / "results.h5", "r") as fe:
        problems += [f"expected file has no /{g}" for g in ("uq", "run") if g not in fe]
    p_h5, n_h5 = compare_h5(expected / "results.h5", actual / "results.h5", tol, exact)
    p_m, n_m = compare_merged(expected / "merged", actual / "merged", 0.0 if exact else 1e-6)
    return problems + p_h5 + p_m, n_h5 + n_m


def _main(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="uqtest.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="compare two `uqmerge run` output directories (exit 1 when they differ)")
    c.add_argument("expected", type=Path)
    c.add_argument("actual", type=Path)
    c.add_argument("--tol", type=float, default=1e-9, help="relative tolerance of float values (default 1e-9)")
    c.add_argument("--exact", action="store_true", help="every value bit for bit (no tolerance)")
    c.add_argument("--ignore-attr", action="append", default=[], metavar="NAME",
                   help="an attribute that may differ (e.g. ranks, comparing runs on other rank counts)")
    args = ap.parse_args(argv)
    IGNORED_ATTRS.update(args.ignore_attr)
    problems, compared = compare_outputs(args.expected, args.actual, args.tol, args.exact)
    for p in problems:
        print("DIFF " + p)
    print(f"compare: {compared} values compared, {len(problems)} differences ({args.actual} vs {args.expected})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
