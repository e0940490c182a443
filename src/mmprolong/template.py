"""The one sequence layout of a sample, used to count tokens (synth, eval) and to encode them (train).

Qwen2.5-VL's chat format::

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{user parts}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n

where an image part is ``<|vision_start|>`` + n x ``<|image_pad|>`` + ``<|vision_end|>``. Text pieces are
tokenized separately and concatenated, so the count synth plans with is, by construction, the length
train feeds the model. Loss falls on the answer and its closing ``<|im_end|>`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmprolong.tokens import IMAGE_PAD, VISION_END, VISION_START

SYSTEM_PROMPT = "You are a helpful assistant."

# A user part: an int is one image with that many <|image_pad|> tokens, a str is text.
Part = int | str


@dataclass(frozen=True, slots=True)
class Encoded:
    input_ids: list[int]
    loss_mask: list[bool]  # True where the token is a training target (answer tokens)

    def __len__(self) -> int:
        return len(self.input_ids)


class ChatTemplate:
    """Encodes (user parts, answer) into token ids with a given tokenizer; caches the fixed pieces."""

    def __init__(self, tokenizer, *, system: str = SYSTEM_PROMPT):
        self.tokenizer = tokenizer
        ids = tokenizer.convert_tokens_to_ids
        self.vision_start, self.vision_end, self.image_pad = ids(VISION_START), ids(VISION_END), ids(IMAGE_PAD)
        self.im_end = ids("<|im_end|>")
        self.prefix = self.text_ids(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n")
        self.mid = self.text_ids("<|im_end|>\n<|im_start|>assistant\n")
        self.newline = self.text_ids("\n")

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, parts: Sequence[Part]) -> list[int]:
        """Ids of everything before the answer: what a model is given at inference."""
        ids = list(self.prefix)
        for part in parts:
            if isinstance(part, int):
                ids += [self.vision_start] + [self.image_pad] * part + [self.vision_end]
            else:
                ids += self.text_ids(part)
        return ids + self.mid

    def encode(self, parts: Sequence[Part], answer: str) -> Encoded:
        prompt = self.prompt_ids(parts)
        target = self.text_ids(answer) + [self.im_end]
        ids = prompt + target + self.newline
        mask = [False] * len(prompt) + [True] * len(target) + [False] * len(self.newline)
        return Encoded(ids, mask)

    def count(self, parts: Sequence[Part], answer: str) -> int:
        """Exact length of ``encode(parts, answer)`` without building the pad runs."""
        images = sum(p + 2 for p in parts if isinstance(p, int))
        texts = sum(len(self.text_ids(p)) for p in parts if isinstance(p, str))
        return (len(self.prefix) + images + texts + len(self.mid) + len(self.text_ids(answer)) + 1
                + len(self.newline))
