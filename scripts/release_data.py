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
import math
import os
import random
import re
import shutil
import sys
import warnings
from pathlib import Path

PROG = "release_data.py"
LETTERS = ["A", "B", "C", "D"]  # the release's OPTIONS
EXTRAS = ("I don't know", "None of the above")  # appended by uqmerge, never by this script
OODCV_WORDS = ["Zero", "One", "Two", "Three", "Four", "Five"]  # the release's COUNT_MAPPING
SEED_TYPES = {1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Location", 4: "Instance Attributes",
              5: "Instances Counting", 6: "Spatial Relation", 7: "Instance Interaction", 8: "Visual Reasoning",
              9: "Text Understanding", 10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding"}
# Cells uqmerge's TSV reader (and pandas, hence VLMEvalKit) reads as missing (src/data/dataset.cpp).
TSV_MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
               "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
KEEP_MODES = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}, "JPEG": {"L", "RGB"}}  # decoded alike by PIL and OpenCV


class BadInput(Exception):
    def __init__(self, where, problem, fix=""):
        super().__init__(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


def one_line(s):
    return " ".join(str(s).split())


# ----------------------------------------------------------------------------------------------
# The release's notion of an absent option (common_utils.is_none / get_options).

def release_none(v):
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.lower() == "nan")


def release_options(values):
    """The options the release shows: values in A-D order up to the first absent one."""
    out = []
    for v in values:
        if release_none(v):
            break
        out.append(v)
    return out


class Row:
    __slots__ = ("index", "question", "hint", "options", "answer", "category", "image", "where")

    def __init__(self, index, question, hint, options, answer, category, image, where):
        self.index, self.question, self.hint, self.options = str(index), question, hint, options
        self.answer, self.category, self.image, self.where = answer, category, image, where


def need(obj, key, where, what="field"):
    if not isinstance(obj, dict) or key not in obj:
        raise BadInput(where, f"no '{key}' {what}", "is this the right raw file for this dataset? (see --help)")
    return obj[key]


def need_str(obj, key, where):
    v = need(obj, key, where)
    if not isinstance(v, str):
        raise BadInput(where, f"'{key}' is {type(v).__name__}, not text", "re-download the raw file")
    return v


def load_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise BadInput(path, "no such file", "give the raw file's path with --input")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(path, f"not readable JSON ({one_line(e)})", "re-download the raw file")


def one_input(args, what):
    if len(args.input) != 1:
        raise BadInput("--input", f"{args.dataset} takes one file ({what}), got {len(args.input)}")
    p = Path(args.input[0])
    if not p.is_file():
        raise BadInput(p, "no such file", f"give {what} with --input")
    return p


def images_dir(args, default):
    d = Path(args.images) if args.images is not None else default
    if not d.is_dir():
        raise BadInput(d, "no such folder of images", "give the folder holding the raw images with --images")
    return d


def no_images_flag(args):
    if args.images is not None:
        raise BadInput("--images", f"{args.dataset} embeds its images in the raw file", "drop --images")


# ----------------------------------------------------------------------------------------------
# MMBench dev (mmbench_dev_20230712.tsv; data_utils/mmbench.py).

def read_tsv(path):
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, "r", encoding="utf-8", newline="") as f:
            recs = list(csv.reader(f, delimiter="\t"))
    except FileNotFoundError:
        raise BadInput(path, "no such file", "give the raw TSV with --input")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise BadInput(path, f"not a readable TSV ({one_line(e)})", "re-download the raw file")
    if not recs:
        raise BadInput(path, "empty file", "re-download the raw file")
    return recs[0], recs[1:]


def convert_mmbench(args, rng, stats):
    path = one_input(args, "mmbench_dev_20230712.tsv")
    no_images_flag(args)
    header, recs = read_tsv(path)
    col = {name: i for i, name in enumerate(header)}
    for c in ["index", "question", "hint", *LETTERS, "answer", "image"]:
        if c not in col:
            raise BadInput(path, f"no '{c}' column (header: {', '.join(header)})",
                           "give the MMBench dev TSV (index, question, hint, A-D, answer, category, image)")
    rows = []  # [cells dict (None = missing, as pandas reads it), where]
    for k, rec in enumerate(recs):
        where = f"{path}, row {k + 1}"
        if not any(rec):
            continue
        if len(rec) != len(header):
            raise BadInput(where, f"{len(rec)} fields, the header has {len(header)}", "re-download the raw file")
        cells = {name: (None if rec[i] in TSV_MISSING else rec[i]) for name, i in col.items()}
        rows.append((cells, f"{where} (index {cells['index']})"))
    if not rows:
        raise BadInput(path, "no rows", "re-download the raw file")
    # The release pads each row, in file order, in place: for the k-th missing slot it draws a row
    # (random.choices over all rows, which may already be padded) and one of that row's A-D values
    # in column order (random.choice; a missing value stays missing), written to D, C, ... in turn.
    letter_cols = [c for c in header if c in LETTERS]
    if not args.no_pad:
        for cells, _ in rows:
            n = len(release_options([cells[c] for c in LETTERS]))
            drawn = rng.choices(rows, k=4 - n)
            for k, (other, _) in enumerate(drawn):
                cells[LETTERS[-(k + 1)]] = rng.choice([other[c] for c in letter_cols])
            stats["padded"] += bool(drawn)
    by_index = {}
    out = []
    for cells, where in rows:
        if cells["index"] is None:
            raise BadInput(where, "no index", "re-download the raw file")
        if cells["index"] in by_index:
            raise BadInput(where, f"index {cells['index']} appears twice", "re-download the raw file")
        by_index[cells["index"]] = cells
        if cells["question"] is None:
            raise BadInput(where, "no question", "re-download the raw file")
        image = cells["image"]
        if image is None:
            raise BadInput(where, "no image", "re-download the raw file (MMBench rows all have images)")
        if len(image) <= 64:  # VLMEvalKit's reference to another row's image
            ref = by_index.get(image)
            if ref is None or ref["image"] is None or len(ref["image"]) <= 64:
                raise BadInput(where, f"image cell '{image}' names no earlier row holding an image",
                               "re-download the raw file")
            image = ref["image"]
        opts = release_options([cells[c] for c in LETTERS])
        out.append(Row(cells["index"], cells["question"], cells["hint"], opts, cells["answer"] or "",
                       cells.get("category") or "", ("b64", image), where))
    return out


# ----------------------------------------------------------------------------------------------
# OODCV-VQA (oodcv-vqa.json of PahaII/vllm_safety_evaluation; data_utils/oodcv.py).

def convert_oodcv(args, rng, stats):
    path = one_input(args, "oodcv-vqa.json")
    images = images_dir(args, path.parent)
    data = load_json(path)
    if not isinstance(data, list):
        raise BadInput(path, "not a JSON list of questions", "give oodcv-vqa.json")
    out = []
    for k, q in enumerate(data):
        where = f"{path}, question {k}"
        if need(q, "answer_type", where) != "number":
            stats["dropped (not a number question)"] += 1
            continue
        i = len(out)  # the release's id: position among the number questions
        where = f"{where} (index {i})"
        raw_opts, text_answer = need(q, "options", where), need(q, "text_answer", where)
        if not isinstance(raw_opts, list):
            raise BadInput(where, f"options {raw_opts!r} is not a list", "re-download the raw file")
        try:
            answer = int(text_answer)
            numbers = [int(o.split(" ")[-1]) for o in raw_opts]
        except (TypeError, ValueError, AttributeError):
            raise BadInput(where, f"text_answer {text_answer!r} or options {raw_opts!r} are not numbers",
                           "a number question's options end in its number ('A. 2')")
        # 2 numbers of 0..5 not among the row's options, drawn with replacement, then all shuffled.
        pool = [n for n in range(6) if n not in numbers]
        if not pool:
            raise BadInput(where, f"options {raw_opts!r} leave no number of 0-5 to add", "re-download the raw file")
        numbers = numbers + rng.choices(pool, k=2)
        rng.shuffle(numbers)
        numbers = numbers[:len(LETTERS)]  # the release zips with A-D
        if answer not in numbers or not all(0 <= n < len(OODCV_WORDS) for n in numbers):
            raise BadInput(where, f"answer {answer} / options {numbers} outside what the release handles "
                                  "(answer among A-D, numbers 0-5)", "re-download the raw file")
        image = need_str(q, "image", where)
        out.append(Row(i, need_str(q, "question", where), None, [OODCV_WORDS[n] for n in numbers],
                       LETTERS[numbers.index(answer)], q.get("situation") or "", ("file", images / image), where))
    return out


# ----------------------------------------------------------------------------------------------
# ScienceQA validation + test (derek-thomas/ScienceQA parquet files; data_utils/scienceqa.py).

def convert_scienceqa(args, rng, stats):
    no_images_flag(args)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BadInput("scienceqa", "reading parquet needs pyarrow", "pip install pyarrow (or use the uqmerge venv)")
    names = [Path(p).name.lower() for p in args.input]
    if any("test" in a for a in names[:1]) and any("val" in b for b in names[1:]):
        print(f"{PROG}: warning: the release concatenates validation, then test; the inputs look reversed",
              file=sys.stderr)
    questions = []
    cols = ["image", "question", "choices", "answer", "hint", "task"]
    for p in map(Path, args.input):
        if not p.is_file():
            raise BadInput(p, "no such file", "give the validation and test parquet files with --input")
        try:
            table = pq.read_table(p)
        except Exception as e:  # pyarrow raises several types for a bad file
            raise BadInput(p, f"not a readable parquet file ({one_line(e)})", "re-download the raw file")
        for c in cols:
            if c not in table.column_names:
                raise BadInput(p, f"no '{c}' column (columns: {', '.join(table.column_names)})",
                               "give derek-thomas/ScienceQA's parquet files")
        keep = cols + (["category"] if "category" in table.column_names else [])
        for k, r in enumerate(table.select(keep).to_pylist()):
            img = r["image"]
            if not isinstance(img, dict) or (img.get("bytes") is None and img.get("path") is None):
                img = None
            if r["task"] != "closed choice":
                stats["dropped (task not closed choice)"] += 1
            elif img is None:
                stats["dropped (no image)"] += 1
            else:
                questions.append((r, img, f"{p}, row {k}"))
    for i, (r, img, where) in enumerate(questions):  # checked first: any row's choices may be drawn
        choices, ans = r["choices"], r["answer"]
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
            raise BadInput(f"{where} (index {i})", f"choices {choices!r} are not a list of texts",
                           "re-download the raw file")
        if isinstance(ans, bool) or not isinstance(ans, int) or not 0 <= ans < len(choices):
            raise BadInput(f"{where} (index {i})", f"answer {ans!r} is not an index into its {len(choices)} choices",
                           "re-download the raw file")
        if img.get("bytes") is None:
            raise BadInput(f"{where} (index {i})", "the image holds no bytes (only a path)",
                           "use the parquet files with embedded images")
    out = []
    for i, (r, img, where) in enumerate(questions):
        choices, ans = r["choices"], r["answer"]
        if len(choices) > 4:  # the correct choice as A, then 3 of the others drawn with replacement
            rest = list(choices)
            rest.remove(choices[ans])
            opts, letter = [choices[ans]] + rng.choices(rest, k=3), "A"
            stats["cut to 4 options"] += 1
        elif args.no_pad:
            opts, letter = list(choices), LETTERS[ans]
        else:  # each missing slot: a random row's random choice
            opts, letter = list(choices), LETTERS[ans]
            for other, _, _ in rng.choices(questions, k=4 - len(choices)):
                opts.append(rng.choice(other["choices"]))
            stats["padded"] += len(choices) < 4
        out.append(Row(i, r["question"], r["hint"], release_options(opts), letter, r.get("category") or "",
                       ("bytes", img["bytes"]), f"{where} (index {i})"))
    return out


# ----------------------------------------------------------------------------------------------
# SEED-Bench (SEED-Bench.json + SEED-Bench-image/; data_utils/seedbench.py).

def convert_seedbench(args, rng, stats):
    path = one_input(args, "SEED-Bench.json")
    images = images_dir(args, path.parent / "SEED-Bench-image")
    data = load_json(path)
    qs = need(data, "questions", str(path), "key")
    if not isinstance(qs, list):
        raise BadInput(path, "'questions' is not a list", "give SEED-Bench.json")
    names = dict(SEED_TYPES)
    if isinstance(data.get("question_type"), dict):
        names.update({v: k for k, v in data["question_type"].items() if isinstance(v, int)})
    out = []
    for k, q in enumerate(qs):
        where = f"{path}, questions[{k}]"
        t = need(q, "question_type_id", where)
        if isinstance(t, bool) or not isinstance(t, int) or t not in SEED_TYPES:
            raise BadInput(where, f"unknown question_type_id {t!r} (SEED-Bench has 1-12)",
                           "give SEED-Bench (v1) SEED-Bench.json")
        if t >= 10:  # the release keeps question_type_id < 10: the image questions
            stats["dropped (video question type 10-12)"] += 1
            continue
        where = f"{where} (index {need(q, 'question_id', where)})"
        vals = [need(q, f"choice_{c.lower()}", where) for c in LETTERS]
        answer = need_str(q, "answer", where)
        out.append(Row(q["question_id"], need_str(q, "question", where), None, release_options(vals), answer,
                       names.get(t, ""), ("file", images / need_str(q, "data_id", where)), where))
    return out


# ----------------------------------------------------------------------------------------------
# AI2D (ai2d-all.zip: questions/*.json, images/; data_utils/ai2d.py).

def natural_key(p):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def convert_ai2d(args, rng, stats):
    ins = [Path(p) for p in args.input]
    if len(ins) == 1 and ins[0].is_dir():
        root = ins[0]
        if not (root / "questions").is_dir():
            raise BadInput(root, "no questions/ folder", "give the unpacked ai2d folder (questions/, images/)")
        files = list((root / "questions").glob("*.json"))
        if not files:
            raise BadInput(root / "questions", "no *.json question files", "give the unpacked ai2d folder")
    else:
        files = ins
        for f in files:
            if not f.is_file():
                raise BadInput(f, "no such file or folder", "give the ai2d folder or its question files with --input")
        root = ins[0].resolve().parent.parent  # questions/N.png.json -> the ai2d folder
    images = images_dir(args, root / "images")
    out = []
    for f in sorted(files, key=natural_key):  # the release globs (file-system order); sorted here
        data = load_json(f)
        image = need_str(data, "imageName", str(f))
        qs = need(data, "questions", str(f), "key")
        if not isinstance(qs, dict):
            raise BadInput(f, "'questions' is not an object", "re-download ai2d-all.zip")
        for text, q in qs.items():
            where = f"{f}, question {text!r}"
            texts, correct = need(q, "answerTexts", where), need(q, "correctAnswer", where)
            where = f"{f}, question {need(q, 'questionId', where)}"
            if not isinstance(texts, list):
                raise BadInput(where, "answerTexts is not a list", "re-download ai2d-all.zip")
            if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct < min(4, len(texts)):
                raise BadInput(where, f"correctAnswer {correct!r} is not one of options A-D",
                               "re-download ai2d-all.zip")
            opts = release_options(texts[:4])
            if correct >= len(opts):
                raise BadInput(where, "the correct answer text is missing", "re-download ai2d-all.zip")
            out.append(Row(q["questionId"], text, None, opts, LETTERS[correct], "", ("file", images / image), where))
    if not out:
        raise BadInput(args.input[0], "no questions", "give the unpacked ai2d folder")
    return out


CONVERTERS = {"mmbench": convert_mmbench, "oodcv": convert_oodcv, "scienceqa": convert_scienceqa,
              "seedbench": convert_seedbench, "ai2d": convert_ai2d}


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
