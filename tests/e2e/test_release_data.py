#!/usr/bin/env python3
"""scripts/release_data.py on small synthetic copies of the five benchmarks' raw formats (written
here: MMBench's TSV, OODCV-VQA's JSON, ScienceQA's parquet, SEED-Bench's JSON, AI2D's folder,
with tiny generated images; nothing is downloaded). Each release rule is checked against
expectations computed here: padding and cutting of options, the dropped rows, the OODCV numbers
and their seeding, image handling, --limit, JSONL, and bad input (exit 2, one stderr line naming
the file, no output). With a uqmerge binary and a small LLaVA checkpoint, `uqmerge eval` must
also read every converted set (rows, answers, images).

  test_release_data.py [UQMERGE_BINARY ANSWER_MODEL_DIR]
"""
import base64
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import uqtest  # noqa: E402
from uqtest import check  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "release_data.py"
LETTERS = "ABCD"
WORDS = ["Zero", "One", "Two", "Three", "Four", "Five"]


def png(colour, size=(8, 6), fmt="PNG", mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format=fmt)
    return buf.getvalue()


def convert(*args):
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_tsv(path):
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as f:
        recs = list(csv.reader(f, delimiter="\t"))
    return recs[0], [dict(zip(recs[0], r)) for r in recs[1:]]


def options(row):
    return [row[c] for c in LETTERS if row.get(c)]


def image_of(rows, row):
    cell = row["image"]
    if len(cell) <= 64:
        cell = next(r["image"] for r in rows if r["index"] == cell)
    return base64.b64decode(cell)


def converted(label, out, *args):
    """Runs `release_data.py DATASET ARGS --out OUT` (the dataset is the label's first word)."""
    rc, so, se = convert(label.split()[0], *args, "--out", out)
    if not check(rc == 0 and out.exists(), f"{label}: converts (rc {rc}) {se.strip()}"):
        return None, []
    return read_tsv(out)


def expect_bad(label, out, want, *args):
    """Exit 2, exactly one stderr line containing each of `want`, no output (nor its temp file)."""
    rc, so, se = convert(*args, "--out", out)
    lines = se.strip().splitlines()
    check(rc == 2, f"bad input {label}: exit 2 (got {rc})")
    check(len(lines) == 1, f"bad input {label}: one stderr line (got {len(lines)}: {se.strip()[:300]})")
    for w in want:
        check(w in se, f"bad input {label}: message names {w!r} ({se.strip()[:200]})")
    check(not out.exists() and not Path(str(out) + ".tmp").exists(), f"bad input {label}: no output left")


# ------------------------------------------------------------------------------------------------
def test_mmbench(t):
    imgs = [base64.b64encode(png((40 * k, 10, 200))).decode() for k in range(6)]
    header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
              "l2-category", "comment", "split"]
    raw = [  # index, question, hint, A-D, answer, image
        ["10", "Which colour?", "nan", "red", "green", "blue", "pink", "B", imgs[0]],
        ["11", "Two options?", "A hint\twith a tab", "yes", "no", "", "", "A", imgs[1]],
        ["12", "Three options?", "None", "up", "down", "left", "", "C", imgs[2]],
        ["13", "Same image as 10", "", "a", "b", "c", "d", "D", "10"],
        ["14", 'A "quoted"\nquestion', "", "x", "y", "", "", "B", imgs[3]],
        ["15", "Four again", "", "one", "two", "three", "four", "A", imgs[4]],
    ]
    path = t / "mmbench_dev_20230712.tsv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        for r in raw:
            w.writerow(r[:8] + ["cat"] + [r[8], "src", "l2", "", "dev"])
    # Expected padding, computed the release's way: rows in file order, each row's k-th missing
    # slot gets a random row's random A-D value (column order; a missing value stays missing),
    # written to D, C, ... ; later rows may draw already padded rows.
    def expected_padding(seed):
        state = [{c: (v or None) for c, v in zip(LETTERS, r[3:7])} for r in raw]
        rng = random.Random(seed)
        for s in state:
            own = 0
            while own < 4 and s[LETTERS[own]] is not None:
                own += 1
            for k, other in enumerate(rng.choices(state, k=4 - own)):
                s[LETTERS[3 - k]] = rng.choice([other[c] for c in LETTERS])
        expected = []
        for s in state:
            opts = []
            for c in LETTERS:
                if s[c] is None:
                    break
                opts.append(s[c])
            expected.append(opts)
        return expected
    expected = expected_padding(42)

    header_out, rows = converted("mmbench", t / "mmbench.tsv", "--input", path)
    if not rows:
        return
    check(header_out == ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"],
          f"mmbench: VLMEvalKit columns {header_out}")
    check([r["index"] for r in rows] == [r[0] for r in raw], "mmbench: every row, in file order")
    check([options(r) for r in rows] == expected, f"mmbench: padding as the release (seed 42): {[options(r) for r in rows]}")
    pool = {v for r in raw for v in r[3:7] if v}
    for r, src in zip(rows, raw):
        own = [v for v in src[3:7] if v]
        check(options(r)[:len(own)] == own, f"mmbench {r['index']}: own options keep their letters")
        check(set(options(r)) <= pool, f"mmbench {r['index']}: padding drawn from the file's options")
        check(r["answer"] == src[7], f"mmbench {r['index']}: answer letter unchanged")
        check("I don't know" not in options(r) and "None of the above" not in options(r),
              f"mmbench {r['index']}: extras not written (uqmerge appends them)")
    check(rows[0]["hint"] == "" and rows[2]["hint"] == "", "mmbench: 'nan'/'None' hints are missing (as pandas reads them)")
    check(rows[1]["hint"] == "A hint\twith a tab", "mmbench: a tab inside a field survives (quoted)")
    check(rows[4]["question"] == 'A "quoted"\nquestion', "mmbench: quotes and newlines survive")
    check(image_of(rows, rows[3]) == image_of(rows, rows[0]), "mmbench: a row sharing an image by index keeps it")
    check(rows[3]["image"] == "10", "mmbench: a repeated image is written once and referenced by index")
    check(image_of(rows, rows[1]) == base64.b64decode(imgs[1]), "mmbench: original PNG bytes kept")

    # A seed whose draws hit a missing cell: that row stays short, as in the release.
    short = next(seed for seed in range(1000) if any(len(o) < 4 for o in expected_padding(seed)))
    _, rows_s = converted(f"mmbench --seed {short}", t / "mmbench_s.tsv", "--input", path, "--seed", short)
    got = [options(r) for r in rows_s]
    check(got == expected_padding(short) and any(len(o) < 4 for o in got),
          f"mmbench --seed {short}: a drawn missing cell leaves the row short ({got})")
    _, plain = converted("mmbench --no-pad", t / "mmbench_nopad.tsv", "--input", path, "--no-pad")
    check([options(r) for r in plain] == [[v for v in r[3:7] if v] for r in raw], "mmbench --no-pad: rows as they are")
    _, lim = converted("mmbench --limit 3", t / "mmbench_lim.tsv", "--input", path, "--limit", "3")
    check(lim == rows[:3], "mmbench --limit 3: the first 3 rows of the full set")

    # Bad input.
    expect_bad("mmbench missing file", t / "bad.tsv", ["nope.tsv", "--input"], "mmbench", "--input", t / "nope.tsv")
    nocol = t / "nocol.tsv"
    nocol.write_text("\n".join("\t".join(c for i, c in enumerate(line.split("\t")) if i != 7)
                               for line in path.read_text().split("\n")))
    expect_bad("mmbench missing column", t / "bad.tsv", [str(nocol), "'answer'"], "mmbench", "--input", nocol)
    corrupt = t / "corrupt.tsv"
    text = path.read_text().replace(imgs[4], base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20).decode())
    corrupt.write_text(text)
    expect_bad("mmbench unreadable image", t / "bad.tsv", [str(corrupt), "index 15", "not a readable image"],
               "mmbench", "--input", corrupt)


# ------------------------------------------------------------------------------------------------
def test_oodcv(t):
    root = t / "oodcv"
    (root / "images").mkdir(parents=True)
    data = []
    r = random.Random(5)
    for k in range(30):
        img = f"images/{k % 7}.jpg"
        (root / img).write_bytes(png((k * 8, 50, 90), fmt="JPEG"))
        if k % 4 == 3:
            data.append({"image": img, "question": f"Is there a car {k}?", "answer": "A", "text_answer": "Yes",
                         "options": ["A. Yes", "B. No"], "answer_type": "bool", "situation": "weather"})
            continue
        a, b = r.sample(range(6), 2)
        data.append({"image": img, "question": f"How many cars {k}?", "answer": "A", "text_answer": str(a),
                     "options": [f"A. {a}", f"B. {b}"] if k % 2 else [f"A. {b}", f"B. {a}"],
                     "answer_type": "number", "situation": ["iid", "pose", "shape"][k % 3]})
    js = root / "oodcv-vqa.json"
    js.write_text(json.dumps(data))
    numbers = [q for q in data if q["answer_type"] == "number"]

    def expected(seed):
        rng = random.Random(seed)
        out = []
        for q in numbers:
            own = [int(o.split(" ")[-1]) for o in q["options"]]
            allv = own + rng.choices([n for n in range(6) if n not in own], k=2)
            rng.shuffle(allv)
            out.append(([WORDS[n] for n in allv], LETTERS[allv.index(int(q["text_answer"]))]))
        return out

    _, rows = converted("oodcv", t / "oodcv.tsv", "--input", js)
    if not rows:
        return
    check(len(rows) == len(numbers), f"oodcv: only the number questions ({len(rows)} of {len(data)})")
    check([(options(r), r["answer"]) for r in rows] == expected(42), "oodcv: options and answers as the release (seed 42)")
    for i, (r, q) in enumerate(zip(rows, numbers)):
        own = [WORDS[int(o.split(" ")[-1])] for o in q["options"]]
        opts = options(r)
        extra = list(opts)
        for o in own:
            extra.remove(o)
        ok = (len(opts) == 4 and len(extra) == 2 and all(e in WORDS and e not in own for e in extra)
              and opts[LETTERS.index(r["answer"])] == WORDS[int(q["text_answer"])])
        check(ok, f"oodcv {i}: 2 extra numbers of 0-5 not among the own options, answer points at "
                  f"{q['text_answer']} ({opts}, {r['answer']})")
        check(r["index"] == str(i) and r["category"] == q["situation"] and r["hint"] == "",
              f"oodcv {i}: index, situation as category, no hint")
        check(image_of(rows, r) == (root / q["image"]).read_bytes(), f"oodcv {i}: its JPEG bytes")
    check(any(len(r["image"]) <= 64 for r in rows), "oodcv: shared images referenced by index")
    _, again = converted("oodcv again", t / "oodcv2.tsv", "--input", js)
    check((t / "oodcv2.tsv").read_bytes() == (t / "oodcv.tsv").read_bytes(), "oodcv: same seed, identical file")
    _, other = converted("oodcv --seed 7", t / "oodcv7.tsv", "--input", js, "--seed", "7")
    check([(options(r), r["answer"]) for r in other] == expected(7), "oodcv --seed 7: the seed's own draws")
    check([options(r) for r in other] != [options(r) for r in rows], "oodcv: another seed, other draws")
    _, lim = converted("oodcv --limit 5", t / "oodcv_lim.tsv", "--input", js, "--limit", "5")
    check(lim == rows[:5], "oodcv --limit 5: the first 5 rows of the full set")

    # Bad input: unreadable image, missing images folder, missing field.
    bad = root / "images" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    broken = [dict(q) for q in data]
    broken[5]["image"] = "images/broken.jpg"
    (root / "broken.json").write_text(json.dumps(broken))
    expect_bad("oodcv unreadable image", t / "bad.tsv", ["broken.json", "question 5", "broken.jpg"],
               "oodcv", "--input", root / "broken.json")
    expect_bad("oodcv missing images folder", t / "bad.tsv", ["nowhere", "--images"],
               "oodcv", "--input", js, "--images", t / "nowhere")
    missing = [dict(q) for q in data]
    del missing[2]["text_answer"]
    (root / "missing.json").write_text(json.dumps(missing))
    expect_bad("oodcv missing field", t / "bad.tsv", ["missing.json", "question 2", "text_answer"],
               "oodcv", "--input", root / "missing.json")


# ------------------------------------------------------------------------------------------------
def sqa_table(rows, drop=None):
    cols = {k: [r[k] for r in rows] for k in ["question", "choices", "answer", "hint", "task", "category"]}
    cols["image"] = [None if r["img"] is None else {"bytes": r["img"], "path": None} for r in rows]
    if drop:
        del cols[drop]
    return pa.table(cols)


def test_scienceqa(t):
    def q(text, choices, answer, img=True, task="closed choice", hint=""):
        return {"question": text, "choices": choices, "answer": answer, "hint": hint, "task": task,
                "category": "Physics", "img": png((len(text) * 9 % 255, 1, 2)) if img else None}
    val = [q("v0 two choices", ["hot", "cold"], 1, hint="Look at the picture."),
           q("v1 no image", ["a", "b"], 0, img=False),
           q("v2 five choices", ["c0", "c1", "c2", "c3", "c4"], 3),
           q("v3 yes/no task", ["yes", "no"], 0, task="yes or no")]
    test = [q("t0 four", ["w", "x", "y", "z"], 2),
            q("t1 three", ["p", "q", "r"], 0),
            q("t2 five", ["e0", "e1", "e2", "e3", "e4"], 0)]
    pv, pt = t / "validation-00000-of-00001.parquet", t / "test-00000-of-00001.parquet"
    pq.write_table(sqa_table(val), pv)
    pq.write_table(sqa_table(test), pt)
    kept = [val[0], val[2], test[0], test[1], test[2]]
    rng = random.Random(42)  # the release's draws, in its order
    exp = []
    for r in kept:
        c = list(r["choices"])
        if len(c) <= 4:
            for other in rng.choices(kept, k=4 - len(c)):
                c.append(rng.choice(other["choices"]))
            exp.append((c, LETTERS[r["answer"]]))
        else:
            rest = list(c)
            rest.remove(c[r["answer"]])
            exp.append(([c[r["answer"]]] + rng.choices(rest, k=3), "A"))

    _, rows = converted("scienceqa", t / "scienceqa.tsv", "--input", pv, pt)
    if not rows:
        return
    check([r["question"] for r in rows] == [r["question"] for r in kept],
          "scienceqa: validation then test, closed-choice rows with an image only")
    check([r["index"] for r in rows] == [str(i) for i in range(len(kept))], "scienceqa: index = position after filtering")
    check([(options(r), r["answer"]) for r in rows] == exp, "scienceqa: options and answers as the release (seed 42)")
    for r, src in zip(rows, kept):
        opts, correct = options(r), src["choices"][src["answer"]]
        check(len(opts) == 4 and opts[LETTERS.index(r["answer"])] == correct,
              f"scienceqa {r['index']}: 4 options, the answer letter points at {correct!r} ({opts} {r['answer']})")
        if len(src["choices"]) > 4:
            check(r["answer"] == "A" and all(o in src["choices"] and o != correct for o in opts[1:]),
                  f"scienceqa {r['index']}: > 4 choices cut to the correct one (A) + 3 others")
        else:
            check(opts[:len(src["choices"])] == src["choices"], f"scienceqa {r['index']}: own choices keep their letters")
        check(image_of(rows, r) == src["img"], f"scienceqa {r['index']}: its image bytes")
    check(rows[0]["hint"] == "Look at the picture." and rows[1]["category"] == "Physics", "scienceqa: hint and category")

    # Bad input.
    pq.write_table(sqa_table(val, drop="task"), t / "notask.parquet")
    expect_bad("scienceqa missing column", t / "bad.tsv", ["notask.parquet", "'task'"],
               "scienceqa", "--input", t / "notask.parquet", pt)
    (t / "junk.parquet").write_bytes(b"PAR1 not really")
    expect_bad("scienceqa unreadable parquet", t / "bad.tsv", ["junk.parquet"], "scienceqa", "--input", t / "junk.parquet")
    broken = [dict(r) for r in val]
    broken[2]["img"] = b"\x89PNG\r\n\x1a\n truncated"
    pq.write_table(sqa_table(broken), t / "brokenimg.parquet")
    expect_bad("scienceqa unreadable image", t / "bad.tsv", ["brokenimg.parquet", "row 2", "not a readable image"],
               "scienceqa", "--input", t / "brokenimg.parquet")


# ------------------------------------------------------------------------------------------------
def test_seedbench(t):
    root = t / "seed"
    (root / "SEED-Bench-image").mkdir(parents=True)
    qs = []
    for k, typ in enumerate([1, 5, 10, 9, 11, 12, 3]):
        name = f"{1000 + k}_{k}.jpg"
        fmt, mode = {3: ("GIF", "P"), 6: ("JPEG", "CMYK")}.get(k, ("JPEG", "RGB"))
        colour = (k * 30, 9, 200) if mode != "CMYK" else (k * 30, 9, 200, 7)
        (root / "SEED-Bench-image" / name).write_bytes(png(colour if mode != "P" else 3, fmt=fmt, mode=mode))
        qs.append({"answer": "ABCD"[k % 4], "choice_a": f"a{k}", "choice_b": f"b{k}", "choice_c": f"c{k}",
                   "choice_d": f"d{k}", "data_id": name if typ < 10 else f"v{k}.mp4",
                   "data_type": "image" if typ < 10 else "video", "question": f"Q{k}?", "question_id": str(500 + k),
                   "question_type_id": typ})
    js = root / "SEED-Bench.json"
    js.write_text(json.dumps({"questions": qs, "question_type": {"Scene Understanding": 1, "Instances Counting": 5}}))
    _, rows = converted("seedbench", t / "seed.tsv", "--input", js)
    if not rows:
        return
    keep = [q for q in qs if q["question_type_id"] < 10]
    check([r["index"] for r in rows] == [q["question_id"] for q in keep],
          f"seedbench: types 1-9 kept, 10-12 dropped ({len(rows)} of {len(qs)})")
    check(all(options(r) == [q[f"choice_{c}"] for c in "abcd"] and r["answer"] == q["answer"]
              for r, q in zip(rows, keep)), "seedbench: choice_a-d as A-D, answer letter kept")
    check([r["category"] for r in rows] == ["Scene Understanding", "Instances Counting", "Text Understanding",
                                            "Instance Location"], "seedbench: question type names as category")
    check(all(r["hint"] == "" for r in rows), "seedbench: no hint")
    for r, q in zip(rows, keep):
        src = root / "SEED-Bench-image" / q["data_id"]
        got = image_of(rows, r)
        if q["question_id"] in ("503", "506"):  # GIF, CMYK JPEG: a PNG of PIL's RGB conversion
            same = (Image.open(io.BytesIO(got)).format == "PNG" and
                    Image.open(io.BytesIO(got)).tobytes() == Image.open(src).convert("RGB").tobytes())
            check(same, f"seedbench {r['index']}: {Image.open(src).format} {Image.open(src).mode} stored as "
                        "the PNG of its RGB conversion")
        else:
            check(got == src.read_bytes(), f"seedbench {r['index']}: RGB JPEG bytes kept")
    bad = json.loads(js.read_text())
    bad["questions"][3]["question_type_id"] = 13
    (root / "type13.json").write_text(json.dumps(bad))
    expect_bad("seedbench unknown question type", t / "bad.tsv", ["type13.json", "questions[3]", "13"],
               "seedbench", "--input", root / "type13.json", "--images", root / "SEED-Bench-image")
    (root / "SEED-Bench-image" / qs[1]["data_id"]).unlink()
    expect_bad("seedbench missing image", t / "bad.tsv", ["SEED-Bench.json", "index 501", "--images"],
               "seedbench", "--input", js)


# ------------------------------------------------------------------------------------------------
def test_ai2d(t):
    root = t / "ai2d"
    (root / "questions").mkdir(parents=True)
    (root / "images").mkdir()
    for n in [0, 1, 2, 10]:
        (root / "images" / f"{n}.png").write_bytes(png((n * 20, 90, 9), mode="RGBA" if n == 2 else "RGB"))
        qd = {f"what is {n}-{j}?": {"abcLabel": False, "answerTexts": [f"t{n}{j}{c}" for c in "abcd"],
                                    "correctAnswer": (n + j) % 4, "questionId": f"{n}.png-{j}"} for j in range(2)}
        (root / "questions" / f"{n}.png.json").write_text(json.dumps({"imageName": f"{n}.png", "questions": qd}))
    _, rows = converted("ai2d", t / "ai2d.tsv", "--input", root)
    if not rows:
        return
    ids = [f"{n}.png-{j}" for n in [0, 1, 2, 10] for j in range(2)]
    check([r["index"] for r in rows] == ids, f"ai2d: every question, files in natural order ({[r['index'] for r in rows]})")
    ok = all(options(r) == [f"t{n}{j}{c}" for c in "abcd"] and r["answer"] == LETTERS[(n + j) % 4]
             and r["question"] == f"what is {n}-{j}?"
             for r, (n, j) in zip(rows, [(n, j) for n in [0, 1, 2, 10] for j in range(2)]))
    check(ok, "ai2d: answerTexts as A-D, correctAnswer as the letter, the question text")
    check(rows[1]["image"] == rows[0]["index"], "ai2d: the second question of an image references the first")
    check(image_of(rows, rows[2]) == (root / "images" / "1.png").read_bytes(), "ai2d: the PNG bytes")
    check(image_of(rows, rows[4]) == (root / "images" / "2.png").read_bytes(), "ai2d: an RGBA PNG kept as is")

    # An option a TSV would read as missing: refused for .tsv, written by .jsonl.
    qf = root / "questions" / "1.png.json"
    d = json.loads(qf.read_text())
    first = next(iter(d["questions"].values()))
    first["answerTexts"][2] = "None"
    qf.write_text(json.dumps(d))
    expect_bad("ai2d 'None' option in a TSV", t / "bad.tsv", ["1.png.json", "1.png-0", "jsonl"], "ai2d", "--input", root)
    out = t / "ai2d.jsonl"
    rc, so, se = convert("ai2d", "--input", root, "--out", out)
    if check(rc == 0 and out.exists(), f"ai2d --out .jsonl: converts ({se.strip()})"):
        lines = [json.loads(l) for l in out.read_text().splitlines()]
        check(lines[2]["options"] == ["t10a", "t10b", "None", "t10d"] and lines[2]["answer"] == "B",
              "ai2d jsonl: the 'None' option kept in place")
        check(all((out.parent / l["image"]).read_bytes() == (root / "images" / f"{l['index'].split('.')[0]}.png").read_bytes()
                  for l in lines), "ai2d jsonl: images written beside it (relative paths)")
        check(not (t / "ai2d.images.tmp").exists() and not (t / "ai2d.jsonl.tmp").exists(), "ai2d jsonl: no temp left")
    # Other bad input.
    d["questions"][next(iter(d["questions"]))]["correctAnswer"] = 4
    qf.write_text(json.dumps(d))
    expect_bad("ai2d correctAnswer out of range", t / "bad.tsv", ["1.png.json", "correctAnswer"], "ai2d", "--input", root)
    qf.write_text("{ not json")
    expect_bad("ai2d unreadable JSON", t / "bad.tsv", ["1.png.json", "JSON"], "ai2d", "--input", root)
    expect_bad("ai2d not a folder", t / "bad.tsv", ["nowhere"], "ai2d", "--input", t / "nowhere")


# ------------------------------------------------------------------------------------------------
def test_uqmerge_reads(t, binary, model):
    """uqmerge eval on every converted TSV: all rows load, answers match, every image decodes."""
    import h5py
    sets = [f"{n}.tsv" for n in ["mmbench", "oodcv", "scienceqa", "seed", "ai2d"] if (t / f"{n}.tsv").exists()]
    if (t / "ai2d.jsonl").exists():
        sets.append("ai2d.jsonl")
    work = t / "uq"
    work.mkdir()
    shutil.copytree(model, work / "cand")
    ds = "\n".join(f"    - {{name: {n.replace('.', '_')}, path: {t / n}}}" for n in sets)
    (work / "config.yaml").write_text(f"output_dir: out\nseed: 1\nthreads: 1\ndevice: cpu\ncandidates:\n"
                                      f"  - model: cand\nuq:\n  datasets:\n{ds}\n")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run([binary, "eval", "-c", "config.yaml"], cwd=work, capture_output=True, text=True, env=env)
    if not check(p.returncode == 0, f"uqmerge eval reads the converted sets (rc {p.returncode}) {p.stderr.strip()[-400:]}"):
        return
    with h5py.File(work / "out" / "eval.h5", "r") as h5:
        g = h5["eval"]["model_000"]
        for n in sets:
            if n.endswith(".jsonl"):
                rows = [json.loads(line) for line in (t / n).read_text().splitlines()]
            else:
                rows = read_tsv(t / n)[1]
            name = n.replace(".", "_")
            answers = list(g[name]["answer"][()])
            check(answers == [LETTERS.index(r["answer"]) for r in rows],
                  f"uqmerge eval: {n}: {len(rows)} rows, answers as written")
            check(len(g[name]["predicted"][()]) == len(rows), f"uqmerge eval: {n}: a prediction for every row")


def main():
    t = Path(tempfile.mkdtemp(prefix="release_data_"))
    try:
        for test in (test_mmbench, test_oodcv, test_scienceqa, test_seedbench, test_ai2d):
            d = t / test.__name__
            d.mkdir()
            test(d)
            for f in d.glob("*.tsv"):  # the good outputs, for the uqmerge check
                if f.stem in ("mmbench", "oodcv", "scienceqa", "seed", "ai2d"):
                    shutil.copy(f, t / f.name)
            if (d / "ai2d.jsonl").exists():
                shutil.copy(d / "ai2d.jsonl", t / "ai2d.jsonl")
                shutil.copytree(d / "ai2d.images", t / "ai2d.images")
        if len(sys.argv) >= 3:
            test_uqmerge_reads(t, str(Path(sys.argv[1]).resolve()), Path(sys.argv[2]))
    finally:
        shutil.rmtree(t, ignore_errors=True)
    return 1 if uqtest.summary() or not uqtest.passed else 0


if __name__ == "__main__":
    sys.exit(main())
