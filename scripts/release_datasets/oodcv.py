"""OODCV-VQA (oodcv-vqa.json of PahaII/vllm_safety_evaluation; data_utils/oodcv.py): the 'number'
questions only, each with 2 numbers of 0-5 not among its options drawn (with replacement) and
the 4 numbers shuffled, written as words (Zero..Five); images are files under --images (default:
the JSON's folder)."""
from .common import LETTERS, BadInput, Row, images_dir, load_json, need, need_str, one_input

OODCV_WORDS = ["Zero", "One", "Two", "Three", "Four", "Five"]  # the release's COUNT_MAPPING


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
