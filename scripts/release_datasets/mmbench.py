"""MMBench dev (mmbench_dev_20230712.tsv; data_utils/mmbench.py): every row as it is, a row with
fewer than 4 options padded in place with the A-D values of randomly drawn rows as the release
does (--no-pad keeps the row's own options); an image cell holding an earlier row's index
(VLMEvalKit's shared image) is resolved to that row's image."""
import csv
import sys

from .common import LETTERS, TSV_MISSING, BadInput, Row, no_images_flag, one_input, one_line, release_options


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
