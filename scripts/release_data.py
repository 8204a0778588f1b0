#!/usr/bin/env python3
"""Builds the multiple-choice sets of the UQ-Merge release from the benchmarks' public raw files.

The UQ-Merge release (UNITES-Lab/UQ-Merge) measures uncertainty on five sets prepared by the data
code of Kostumov et al. (EnSec-AI/VLM-Uncertainty-Bench, data_utils/). This script applies the
same rules to the same raw files and writes a VLMEvalKit TSV that uqmerge reads (columns index,
question, hint, A-D, answer, category, image = base64 PNG/JPEG, or the index of an earlier row
with the same image). docs/config.md "The release's datasets" lists the commands;
docs/decisions.md "Release datasets" the rules and where this differs from the release.

  mmbench    --input mmbench_dev_20230712.tsv
             rows as they are; a row with fewer than 4 options is padded to 4 with options of
             randomly drawn rows, as the release does (--no-pad keeps the row's own options).
  oodcv      --input oodcv-vqa.json [--images DIR (default: the JSON's folder)]
             the 'number' questions; 2 numbers of 0..5 that are not among the row's options
             are drawn (with replacement) and the 4 numbers shuffled; options as words (Zero..Five).
  scienceqa  --input validation-*.parquet test-*.parquet   (derek-thomas/ScienceQA; in that order)
             'closed choice' rows with an image; <= 4 choices: padded to 4 with choices of random
             rows; > 4: the correct choice (as A) + 3 drawn with replacement from the others.
  seedbench  --input SEED-Bench.json [--images DIR (default: JSON's folder/SEED-Bench-image)]
             image question types 1-9 (10-12 are video questions and are dropped).
  ai2d       --input AI2D_DIR (holding questions/*.json) | QUESTION.json... [--images DIR
             (default: AI2D_DIR/images)]; every question, answerTexts as options A-D.

Random draws: Python's random.Random(--seed), consumed in the release's order; the release seeds
Python's random with 42 before each set, so the default --seed 42 gives the release's own draws.
The options "I don't know" and "None of the above" are NOT written: uqmerge appends them when it
loads the file (dataset key extra_options, default true), as the release's prompt code does.
An option text that TSV readers take for a missing value ("", "None", "NA", "N/A", "null"...)
cannot be written to a TSV: the conversion stops and names the row; --out FILE.jsonl writes
uqmerge's JSONL instead (images under FILE.images/).
Bad input: one line on stderr naming the file (and row) and the fix, exit 2, no output file.
"""
import argparse
import base64
import collections
import csv
import hashlib
import io
import json
import os
import random
import shutil
import sys
import warnings
from pathlib import Path

# The per-dataset rules live in the release_datasets package beside this script.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from release_datasets import CONVERTERS  # noqa: E402
from release_datasets.common import LETTERS, PROG, TSV_MISSING, BadInput, one_line  # noqa: E402

KEEP_MODES = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}, "JPEG": {"L", "RGB"}}  # decoded alike by PIL and OpenCV


# ----------------------------------------------------------------------------------------------
# Images and output.

def image_bytes(src, where):
    """(bytes, extension) of a row's image: the original PNG/JPEG bytes when uqmerge's decoder reads
    them as PIL does, else a PNG of PIL's RGB conversion (what the release feeds the model)."""
    kind, val = src
    if kind == "file":
        try:
            data = Path(val).read_bytes()
        except OSError as e:
            raise BadInput(where, f"image {val} is missing or unreadable ({e.strerror or e})",
                           "give the folder holding the images with --images")
    elif kind == "b64":
        try:
            data = base64.b64decode(val, validate=False)
        except (ValueError, TypeError) as e:
            raise BadInput(where, f"image cell is not base64 ({one_line(e)})", "re-download the raw file")
    else:
        data = val
    try:
        from PIL import Image
    except ImportError:
        raise BadInput(PROG, "checking images needs Pillow", "pip install pillow (or use the uqmerge venv)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            im.load()
            fmt, mode = im.format, im.mode
            if mode in KEEP_MODES.get(fmt, ()):
                return data, "png" if fmt == "PNG" else "jpg"
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="PNG")
    except Exception as e:  # PIL raises many types for corrupt data
        what = f"image {val}" if kind == "file" else "image"
        raise BadInput(where, f"{what} is not a readable image ({one_line(e)})",
                       "re-download it (or the raw file holding it)")
    return buf.getvalue(), "png"


def check_row(r, jsonl):
    if len(r.options) < 2:
        raise BadInput(r.where, f"{len(r.options)} option(s); uqmerge needs at least 2", "re-download the raw file")
    for k, o in enumerate(r.options):
        if not isinstance(o, str):
            raise BadInput(r.where, f"option {LETTERS[k]} is {type(o).__name__}, not text", "re-download the raw file")
    letters = LETTERS[:len(r.options)]
    if r.answer and r.answer not in letters:
        raise BadInput(r.where, f"answer {r.answer!r} is not one of the row's option letters {''.join(letters)}",
                       "re-download the raw file")
    if not isinstance(r.question, str) or not r.question:
        raise BadInput(r.where, "no question text", "re-download the raw file")
    if r.hint is not None and not isinstance(r.hint, str):
        raise BadInput(r.where, f"hint is {type(r.hint).__name__}, not text", "re-download the raw file")
    if jsonl:
        return
    # A TSV cell holding one of these is read as missing: the option would vanish (shifting the
    # letters after it) or the text would change. An empty hint is no hint in uqmerge either way.
    cells = [("question", r.question)] + list(zip(LETTERS, r.options)) + [("hint", r.hint or "")]
    for name, v in cells:
        if v in TSV_MISSING and not (name == "hint" and v == ""):
            raise BadInput(r.where, f"{name} is {v!r}, which a TSV reader takes for a missing value",
                           "write uqmerge's JSONL instead: --out FILE.jsonl")


def write_output(args, rows):
    out = Path(args.out)
    jsonl = out.suffix == ".jsonl"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(out, f"cannot create its folder ({e.strerror or e})", "choose a writable --out")
    tmp = out.with_name(out.name + ".tmp")
    img_dir = out.with_name(out.stem + ".images")
    img_tmp = out.with_name(out.stem + ".images.tmp")
    made = [tmp] + ([img_tmp] if jsonl else [])
    try:
        if jsonl:
            shutil.rmtree(img_tmp, ignore_errors=True)
            img_tmp.mkdir()
        seen_index, seen_image, file_key = set(), {}, {}
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = None if jsonl else csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            if w:
                w.writerow(["index", "question", "hint", *LETTERS, "answer", "category", "image"])
            for r in rows:
                check_row(r, jsonl)
                if r.index in seen_index:
                    raise BadInput(r.where, f"index {r.index} appears twice", "re-download the raw file")
                seen_index.add(r.index)
                kind, src = r.image
                if kind == "file" and src in file_key:  # a file already checked: not read again
                    key, data = file_key[src], None
                else:
                    data, ext = image_bytes(r.image, r.where)
                    key = hashlib.sha256(data).hexdigest()
                    if kind == "file":
                        file_key[src] = key
                if jsonl:
                    if key not in seen_image:
                        name = f"{key[:20]}.{ext}"
                        (img_tmp / name).write_bytes(data)
                        seen_image[key] = name
                    name = seen_image[key]
                    f.write(json.dumps({"index": r.index, "question": r.question, "hint": r.hint,
                                        "options": r.options, "answer": r.answer or None, "category": r.category,
                                        "image": f"{img_dir.name}/{name}"}, ensure_ascii=False) + "\n")
                else:
                    # A repeated image is written once; later rows name that row's index (VLMEvalKit).
                    cell = seen_image.get(key)
                    if cell is None or len(cell) > 64:
                        if data is None:
                            data, _ = image_bytes(r.image, r.where)
                        cell = base64.b64encode(data).decode("ascii")
                        seen_image.setdefault(key, r.index)
                    opts = r.options + [""] * (len(LETTERS) - len(r.options))
                    w.writerow([r.index, r.question, r.hint or "", *opts, r.answer or "", r.category, cell])
        if jsonl:
            if img_dir.exists():
                shutil.rmtree(img_dir)
            os.replace(img_tmp, img_dir)
        os.replace(tmp, out)
    except OSError as e:
        raise BadInput(out, f"cannot write ({e.strerror or e})", "choose a writable --out with free space")
    finally:
        for p in made:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the usage too)
        sys.stderr.write(f"{PROG}: error: {one_line(message)} (see --help)\n")
        sys.exit(2)


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(CONVERTERS))
    p.add_argument("--input", nargs="+", required=True, metavar="RAW", help="the raw file(s) (see above)")
    p.add_argument("--images", metavar="DIR", help="folder of the image files (oodcv, seedbench, ai2d)")
    p.add_argument("--out", required=True, metavar="OUT.tsv", help="output: .tsv (VLMEvalKit) or .jsonl (uqmerge)")
    p.add_argument("--seed", type=int, default=42, help="seed of the random draws (default 42: the release's)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="write only the first N rows (the same as those rows of the full set)")
    p.add_argument("--no-pad", action="store_true",
                   help="mmbench, scienceqa: keep rows with < 4 options as they are (pad later with uqmerge's "
                        "pad_options_to); not the release's sets")
    args = p.parse_args(argv)
    if Path(args.out).suffix not in (".tsv", ".jsonl"):
        p.error(f"--out {args.out}: name a .tsv or .jsonl file")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    stats = collections.Counter()
    try:
        rows = CONVERTERS[args.dataset](args, random.Random(args.seed), stats)
        if args.limit is not None:
            rows = rows[:args.limit]
        write_output(args, rows)
    except BadInput as e:
        sys.stderr.write(f"{PROG}: {one_line(e)}\n")
        return 2
    notes = ", ".join(f"{k}: {v}" for k, v in stats.items() if v)
    print(f"{PROG}: {args.dataset}: wrote {len(rows)} rows to {args.out}" + (f" ({notes})" if notes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
