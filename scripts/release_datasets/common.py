"""What the release-data converters share: the program name used in messages, the option letters,
the cells a TSV reader takes for missing, the bad-input error (BadInput: "WHERE: PROBLEM; FIX",
reported by release_data.py as one stderr line and exit 2), the release's notion of an absent
option (common_utils.is_none / get_options), the Row every converter returns, and the checks of
fields, JSON files, --input and --images that all datasets use."""
import json
import math
from pathlib import Path

PROG = "release_data.py"
LETTERS = ["A", "B", "C", "D"]  # the release's OPTIONS
EXTRAS = ("I don't know", "None of the above")  # appended by uqmerge, never by this script
# Cells uqmerge's TSV reader (and pandas, hence VLMEvalKit) reads as missing (src/data/dataset.cpp).
TSV_MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
               "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


class BadInput(Exception):
    def __init__(self, where, problem, fix=""):
        super().__init__(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


def one_line(s):
    return " ".join(str(s).split())


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
