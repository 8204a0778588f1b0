"""SEED-Bench (v1: SEED-Bench.json + SEED-Bench-image/; data_utils/seedbench.py): the image
question types 1-9 (10-12 are video questions and are dropped), choice_a-d as options A-D, the
question type's name as category; images are files under --images (default: the JSON's folder's
SEED-Bench-image/)."""
from .common import LETTERS, BadInput, Row, images_dir, load_json, need, need_str, one_input, release_options

SEED_TYPES = {1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Location", 4: "Instance Attributes",
              5: "Instances Counting", 6: "Spatial Relation", 7: "Instance Interaction", 8: "Visual Reasoning",
              9: "Text Understanding", 10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding"}


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
