"""AI2D (ai2d-all.zip unpacked: questions/*.json, images/; data_utils/ai2d.py): every question of
every question file (files in natural order), answerTexts as options A-D and correctAnswer as the
letter; --input is the unpacked folder or question files, images are under --images (default:
the folder's images/)."""
import re
from pathlib import Path

from .common import LETTERS, BadInput, Row, images_dir, load_json, need, need_str, release_options


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
