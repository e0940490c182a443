"""The offline BPE tokenizer and the one chat template that synth counts with and train encodes with."""

import random

import pytest

from mmprolong.errors import DataError
from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import SPECIAL_TOKENS, load_tokenizer, train_tokenizer

WORDS = "revenue of northwind logistics grew in 2023 to 1,840 units while pressure reached 12.5 bar".split()


def _texts(seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(300)]


def test_trained_tokenizer_round_trips_and_is_deterministic(tmp_path):
    a = train_tokenizer(_texts(0), vocab_size=400, out_dir=tmp_path / "a")
    b = train_tokenizer(_texts(0), vocab_size=400, out_dir=tmp_path / "b")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    text = "Pressure reached 12.5 bar in 2023 — über naïve 日本"  # bytes outside the training text still encode
    ids = a(text, add_special_tokens=False)["input_ids"]
    assert a.decode(ids) == text
    # Digits are split one by one, as Qwen2's pre-tokenizer does.
    assert [a.decode([i]) for i in a("2023", add_special_tokens=False)["input_ids"]] == ["2", "0", "2", "3"]
    for token in SPECIAL_TOKENS:
        assert len(a(token, add_special_tokens=False)["input_ids"]) == 1
    assert b.eos_token == "<|im_end|>"


def test_shipped_tokenizer_loads_offline():
    tokenizer = load_tokenizer()
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") != tokenizer.unk_token_id
    assert len(tokenizer) > 256 + len(SPECIAL_TOKENS)


def test_load_refuses_a_folder_without_tokenizer(tmp_path):
    with pytest.raises(DataError, match="no tokenizer"):
        load_tokenizer(tmp_path)


def test_template_count_equals_encoded_length_and_mask_is_the_answer():
    template = ChatTemplate(load_tokenizer())
    tokenizer = template.tokenizer
    rng = random.Random(1)
    for _ in range(50):
        parts = [rng.randint(1, 40) if rng.random() < 0.5 else " ".join(rng.choices(WORDS, k=rng.randint(1, 9)))
                 for _ in range(rng.randint(1, 6))]
        answer = " ".join(rng.choices(WORDS, k=rng.randint(1, 5)))
        encoded = template.encode(parts, answer)
        assert template.count(parts, answer) == len(encoded.input_ids) == len(encoded.loss_mask)
        target = [i for i, m in zip(encoded.input_ids, encoded.loss_mask) if m]
        assert tokenizer.decode(target) == answer + "<|im_end|>"
        pads = encoded.input_ids.count(template.image_pad)
        assert pads == sum(p for p in parts if isinstance(p, int))
        assert encoded.input_ids.count(template.vision_start) == sum(isinstance(p, int) for p in parts)
    prompt = template.prompt_ids([3, "What is the pressure?"])
    assert tokenizer.decode(prompt).endswith("What is the pressure?<|im_end|>\n<|im_start|>assistant\n")


def test_followup_turns_are_counted_exactly_and_each_answer_is_a_target():
    template = ChatTemplate(load_tokenizer())
    tokenizer = template.tokenizer
    parts = [5, "Which code does the note give?", 7]
    turns = [("And the archive?", "North Hall"), ("Which year?", "1987")]
    encoded = template.encode(parts, "408 215", turns)
    assert template.count(parts, "408 215", turns) == len(encoded.input_ids) == len(encoded.loss_mask)
    assert encoded.input_ids[:len(template.prompt_ids(parts))] == template.prompt_ids(parts)
    text = tokenizer.decode(encoded.input_ids)
    assert text.endswith("408 215<|im_end|>\n<|im_start|>user\nAnd the archive?<|im_end|>\n<|im_start|>assistant\n"
                         "North Hall<|im_end|>\n<|im_start|>user\nWhich year?<|im_end|>\n<|im_start|>assistant\n"
                         "1987<|im_end|>\n")
    runs, run = [], []  # the maximal runs of target tokens: one a turn
    for token, target in zip(encoded.input_ids + [None], encoded.loss_mask + [False]):
        if target:
            run.append(token)
        elif run:
            runs, run = runs + [tokenizer.decode(run)], []
    assert runs == ["408 215<|im_end|>", "North Hall<|im_end|>", "1987<|im_end|>"]
    assert template.encode(parts, "408 215", []) == template.encode(parts, "408 215")
