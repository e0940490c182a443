"""The one sequence layout of a sample, used to count tokens (synth, eval) and to encode them (train).

The Qwen-VL chat format, as each family's chat template writes it::

    [<|im_start|>system\\n{system}<|im_end|>\\n]<|im_start|>user\\n{user parts}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n

    [<|im_start|>user\\n{follow-up question}<|im_end|>\\n<|im_start|>assistant\\n{its answer}<|im_end|>\\n ...]

where an image part is the vision start token + n image pads + the vision end token, and the system turn is the
family's default one (Qwen2-VL and Qwen2.5-VL: "You are a helpful assistant."; Qwen3-VL writes none). Text pieces
are tokenized separately and concatenated, so the count synth plans with is, by construction, the length train
feeds the model. Loss falls on each answer and its closing ``<|im_end|>`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmprolong.models import DEFAULT_FAMILY, ModelFamily, get_family
from mmprolong.tokens import IMAGE_WRAPPER_TOKENS

# A user part: an int is one image with that many image pad tokens, a str is text.
Part = int | str
Turn = tuple[str, str]  # a follow-up (question, answer) after the first answer


@dataclass(frozen=True, slots=True)
class Encoded:
    input_ids: list[int]
    loss_mask: list[bool]  # True where the token is a training target (answer tokens)

    def __len__(self) -> int:
        return len(self.input_ids)


def system_turn(family: ModelFamily) -> str:
    """The family's default system turn as text ("" when it writes none)."""
    t = family.tokens
    return f"{t.turn_start}system\n{family.system_prompt}{t.turn_end}\n" if family.system_prompt is not None else ""


def prompt_text(family: ModelFamily, user: str) -> str:
    """The text of a prompt whose user turn is ``user`` (images already written as placeholders), up to the
    assistant's turn: what an engine that expands image placeholders itself is given."""
    t = family.tokens
    return f"{system_turn(family)}{t.turn_start}user\n{user}{t.turn_end}\n{t.turn_start}assistant\n"


class ChatTemplate:
    """Encodes (user parts, answer) into token ids with a tokenizer in a family's layout; caches the fixed pieces."""

    def __init__(self, tokenizer, *, family: ModelFamily | str = DEFAULT_FAMILY):
        self.tokenizer = tokenizer
        self.family = get_family(family) if isinstance(family, str) else family
        t = self.family.tokens
        ids = tokenizer.convert_tokens_to_ids
        self.vision_start, self.vision_end, self.image_pad = ids(t.vision_start), ids(t.vision_end), ids(t.image_pad)
        self.im_end = ids(t.turn_end)
        self.prefix = self.text_ids(f"{system_turn(self.family)}{t.turn_start}user\n")
        self.user = self.text_ids(f"{t.turn_start}user\n")
        self.mid = self.text_ids(f"{t.turn_end}\n{t.turn_start}assistant\n")
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

    def encode(self, parts: Sequence[Part], answer: str, followups: Sequence[Turn] = ()) -> Encoded:
        ids, mask = self.prompt_ids(parts), []
        for question, reply in [(None, answer), *followups]:
            if question is not None:
                ids += self.user + self.text_ids(question) + self.mid
            mask += [False] * (len(ids) - len(mask))
            target = self.text_ids(reply) + [self.im_end]
            ids += target + self.newline
            mask += [True] * len(target) + [False] * len(self.newline)
        return Encoded(ids, mask)

    def count(self, parts: Sequence[Part], answer: str, followups: Sequence[Turn] = ()) -> int:
        """Exact length of ``encode(parts, answer, followups)`` without building the pad runs."""
        images = sum(p + IMAGE_WRAPPER_TOKENS for p in parts if isinstance(p, int))
        texts = sum(len(self.text_ids(p)) for p in parts if isinstance(p, str))
        turns = sum(len(self.user) + len(self.text_ids(q)) + len(self.mid) for q, _ in followups)
        answers = sum(len(self.text_ids(a)) + 1 + len(self.newline) for a in [answer, *(a for _, a in followups)])
        return len(self.prefix) + images + texts + len(self.mid) + turns + answers

    def mm_token_type_ids(self, input_ids):
        """``mm_token_type_ids`` of ``input_ids`` (a tensor): the image pads marked as the family's processor does."""
        return self.family.mm_token_type_ids(input_ids, self.image_pad)
