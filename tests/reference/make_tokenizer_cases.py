#!/usr/bin/env python3
"""Tokenization references from transformers for the prompts uqmerge builds.

Trains a small LLaMA-style SentencePiece model (BPE, byte fallback, split digits, identity
normalisation, dummy prefix), saves it as a checkpoint's tokenizer (tokenizer.model +
tokenizer_config.json with "<image>" as an added special token) in two flavours (legacy false
and true), and writes OUT/cases.json with, for generated multiple-choice items:
  prompt       the llava_v1 / vicuna_v1 prompt (written here independently of uqmerge)
  split        ids by LLaVA's tokenizer_image_token (chunks around <image> tokenized apart,
               image as -200), with transformers' tokenizer
  special      ids of tokenizer(prompt) with <image> as a special token (llava-hf), the
               image id replaced by -200
  options      tokenizer(letter).input_ids[-1] for A..F
"""
import json
import random
import sys
from pathlib import Path

import sentencepiece as spm
from transformers import AutoTokenizer

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
rng = random.Random(7)

WORDS = ("what colour is the circle square triangle left right above below count how many objects "
         "red green blue yellow purple orange shape text word picture image scene cat dog car tree "
         "café naïve über 北京 東京 señor résumé smile").split()
SYSTEM = {
    "llava_v1": "A chat between a curious human and an artificial intelligence assistant. "
                "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "vicuna_v1": "A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.",
}


def phrase(n):
    out = []
    for _ in range(n):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.1:
            w = str(rng.randint(0, 99999))
        elif r < 0.15:
            w = w.capitalize() + rng.choice([",", ".", "?", "!", ":", ";", "'s", " -"])
        elif r < 0.18:
            w = w + "  "  # double spaces survive identity normalisation
        elif r < 0.2:
            w = "🙂" + w
        out.append(w)
    return " ".join(out)


corpus = [phrase(rng.randint(3, 15)) for _ in range(3000)]
corpus += [f"{c}. {phrase(3)}" for c in "ABCDEF" for _ in range(50)]
corpus += [SYSTEM["llava_v1"], SYSTEM["vicuna_v1"], "USER: ASSISTANT: Answer with the option's letter from the given choices directly."] * 20
(OUT / "corpus.txt").write_text("\n".join(corpus))
spm.SentencePieceTrainer.train(
    input=str(OUT / "corpus.txt"), model_prefix=str(OUT / "sp"), vocab_size=900, model_type="bpe",
    byte_fallback=True, split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
    add_dummy_prefix=True, allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    character_coverage=0.9995, minloglevel=2)

cases = {}
for legacy in (False, True):
    d = OUT / f"tok_legacy_{str(legacy).lower()}"
    d.mkdir(exist_ok=True)
    (d / "tokenizer.model").write_bytes((OUT / "sp.model").read_bytes())
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "legacy": legacy, "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": 4096,
        "added_tokens_decoder": {"900": {"content": "<image>", "special": True, "lstrip": False, "rstrip": False,
                                         "normalized": False, "single_word": False}}}))
    tok = AutoTokenizer.from_pretrained(d)
    image_id = tok.convert_tokens_to_ids("<image>")
    assert image_id == 900, image_id

    def split_ids(prompt):
        # LLaVA's tokenizer_image_token: chunks tokenized apart, BOS kept once, -200 between.
        chunks = [tok(c).input_ids for c in prompt.split("<image>")]
        out = [chunks[0][0]] if chunks[0] and chunks[0][0] == tok.bos_token_id else []
        skip = len(out)
        for i, c in enumerate(chunks):
            if i:
                out.append(-200)
            out.extend(c[skip:])
        return out

    items = []
    for i in range(400):
        tmpl = "llava_v1" if i % 3 else "vicuna_v1"
        n = rng.choice([2, 3, 4, 6])
        opts = [phrase(rng.randint(1, 4)) for _ in range(n)]
        if i % 7 == 0:
            opts[0] = " " + opts[0] + " "  # stray spaces
        hint = phrase(rng.randint(2, 8)) if i % 2 else ""
        if i % 11 == 0:
            hint = hint + "\n" + phrase(2)
        q = phrase(rng.randint(2, 10)) + "?"
        text = (hint + "\n" if hint else "") + q + "\n" + "".join(f"{chr(65 + k)}. {o}\n" for k, o in enumerate(opts))
        text += "Answer with the option's letter from the given choices directly."
        prompt = SYSTEM[tmpl] + " USER: <image>\n" + text + " ASSISTANT:"
        special = [-200 if t == image_id else t for t in tok(prompt).input_ids]
        items.append({"template": tmpl, "question": q, "hint": hint, "options": opts, "prompt": prompt,
                      "split": split_ids(prompt), "special": special})
    cases[d.name] = {"legacy": legacy, "items": items,
                     "options": {c: tok(c).input_ids[-1] for c in "ABCDEF"}}
(OUT / "cases.json").write_text(json.dumps(cases, ensure_ascii=False))
print(f"wrote {sum(len(c['items']) for c in cases.values())} tokenization cases to {OUT}")
