"""ScienceQA validation + test (derek-thomas/ScienceQA parquet files, in that order;
data_utils/scienceqa.py): the 'closed choice' rows with an embedded image; <= 4 choices are padded
to 4 with choices of random rows (--no-pad keeps them), > 4 are cut to the correct choice (as A)
plus 3 drawn with replacement from the others. Reading parquet needs pyarrow."""
import sys
from pathlib import Path

from .common import LETTERS, PROG, BadInput, Row, no_images_flag, one_line, release_options


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
