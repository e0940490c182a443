"""Samples + page images -> model inputs: one sample (``encode_sample``), packed rows (``collate_packed``) or a
padded batch (``collate_padded``, for the packed-vs-padded benchmark).

A packed row is several samples laid end to end with no padding between them. Every supported family computes
such a row in transformers 5.x exactly as it computes each sample alone when it is given what the model family
layer says (``mmprolong.models.base``; STACK-NOTES.md):

- ``position_ids`` of shape (4, rows, length): each sample's own rows (``ModelFamily.sample_positions``: row 0
  the text positions 0..n-1, rows 1-3 its mRoPE (t, h, w) positions from the model's ``get_rope_index`` run on
  the sample alone), so all four restart at every sample. The model reads the restarts in row 0 to keep
  attention inside each sample.
  With position skipping (``SampleEncoder.position_skip`` > 1, PoSE) rows 1-3 jump ahead once inside the sample;
  row 0 never does.
- ``attention_mask=None`` and ``use_cache=False`` (with a cache, packing detection is silently off);
- ``mm_token_type_ids`` (1 on image pads), ``pixel_values``/``image_grid_thw`` concatenated in order (Qwen3-VL's
  DeepStack features follow the same order).

``Batch.model_inputs()`` returns exactly those keyword arguments. Labels are the input ids on the answer
tokens (answer + ``<|im_end|>``) and -100 elsewhere, *unshifted*: the model shifts them (token i predicts
label i+1). Every sample begins with its prompt and ends with a masked newline, so no target crosses a sample.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import torch

from mmprolong.errors import DataError
from mmprolong.models import family_of_config
from mmprolong.models.base import ModelFamily, RopeIndex
from mmprolong.records import SampleRecord
from mmprolong.template import ChatTemplate

if TYPE_CHECKING:
    from PIL import Image

IGNORE_INDEX = -100


@dataclass(frozen=True, eq=False)
class EncodedSample:
    """One sample, encoded: 1-D token tensors of its length, its position rows and its images' patches."""

    sample_id: str
    input_ids: torch.Tensor  # (n,) long
    labels: torch.Tensor  # (n,) long: input id on answer tokens, -100 elsewhere (unshifted)
    mm_token_type_ids: torch.Tensor  # (n,) long: 1 on image pads, 0 elsewhere
    position_ids: torch.Tensor  # (4, n) long: text positions, then t, h, w as get_rope_index gives them alone
    pixel_values: torch.Tensor | None  # (patches, channels * temporal * patch * patch) float32
    image_grid_thw: torch.Tensor | None  # (images, 3) long
    image_keys: tuple[bytes, ...] = ()  # image_key() of each image

    def __len__(self) -> int:
        return int(self.input_ids.numel())

    @property
    def num_target_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


@dataclass(frozen=True, eq=False)
class Batch:
    """Model inputs of ``rows`` rows plus bookkeeping. Packed: ``position_ids`` has 4 rows and
    ``attention_mask`` is None; padded: 3 rows and a (rows, length) mask. Call the model as
    ``model(**batch.model_inputs())``.
    """

    input_ids: torch.Tensor  # (rows, length) long
    labels: torch.Tensor  # (rows, length) long, -100 = no loss; unshifted (the model shifts)
    position_ids: torch.Tensor  # (4, rows, length) packed; (3, rows, length) padded
    mm_token_type_ids: torch.Tensor  # (rows, length) long
    attention_mask: torch.Tensor | None  # None packed; (rows, length) long padded (1 = token, 0 = padding)
    pixel_values: torch.Tensor | None  # (patches, dim): every image of every row, in sequence order
    image_grid_thw: torch.Tensor | None  # (images, 3) long
    num_target_tokens: torch.Tensor  # (rows,) long: label tokens per row (the loss normaliser's share)
    num_tokens: torch.Tensor  # (rows,) long: non-padding tokens per row
    cu_seqlens: torch.Tensor  # (segments + 1,) int32: segment boundaries over the flattened rows (padding
    #                           tails are segments too). For reference; do NOT pass it to the model
    seq_lens: tuple[tuple[int, ...], ...]  # sample lengths per row (padding excluded)
    sample_ids: tuple[tuple[str, ...], ...]  # sample ids per row
    packed: bool
    epoch: int = -1  # set by mmprolong.train.data: where this row sits in the plan, for resuming
    row: int = -1
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (sample_id, reason) dropped while building it
    image_keys: tuple[bytes, ...] = field(default=())  # image_key() of each image, in image_grid_thw's order

    def model_inputs(self, *, labels: bool = True) -> dict:
        """Keyword arguments for the model's ``forward`` (``use_cache=False``)."""
        inputs = {"input_ids": self.input_ids, "position_ids": self.position_ids,
                  "attention_mask": self.attention_mask, "mm_token_type_ids": self.mm_token_type_ids,
                  "use_cache": False}
        if self.pixel_values is not None:
            inputs["pixel_values"] = self.pixel_values
            inputs["image_grid_thw"] = self.image_grid_thw
        if labels:
            inputs["labels"] = self.labels
        return inputs

    def logits_mask(self) -> torch.Tensor:
        """(rows, length) bool: positions whose next token is a target (``logits_to_keep`` for the model)."""
        keep = torch.zeros_like(self.labels, dtype=torch.bool)
        keep[:, :-1] = self.labels[:, 1:] != IGNORE_INDEX
        return keep

    def target_ids(self) -> torch.Tensor:
        """(targets,) long: the target token ids, in the order ``logits_mask`` selects their logits."""
        shifted = self.labels[:, 1:]
        return shifted[shifted != IGNORE_INDEX]

    def to(self, device, *, non_blocking: bool = False) -> "Batch":
        """A copy with every tensor on ``device`` (``cu_seqlens`` included)."""
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                 for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved)

    def pin_memory(self) -> "Batch":
        """Called by DataLoader(pin_memory=True)."""
        pinned = {f.name: getattr(self, f.name).pin_memory()
                  for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **pinned)


@dataclass(frozen=True)
class SampleEncoder:
    """What ``encode_sample`` needs, bundled: the family's chat template, the image processor and the rope index.

    ``SampleEncoder.build(tokenizer, image_processor, model.config)``; picklable for DataLoader workers.
    """

    template: ChatTemplate
    image_processor: object
    rope_index: RopeIndex
    pad_token_id: int
    position_skip: float = 1.0  # see skip_positions; 1 = off
    skip_seed: int = 0

    @classmethod
    def build(cls, tokenizer, image_processor, model_config, *, position_skip: float = 1.0,
              skip_seed: int = 0) -> "SampleEncoder":
        family = family_of_config(model_config)
        return cls(ChatTemplate(tokenizer, family=family), image_processor, family.rope_index(model_config),
                   pad_token_id(tokenizer, family), position_skip, skip_seed)

    def encode(self, sample: SampleRecord, images: Sequence["Image.Image"]) -> EncodedSample:
        encoded = encode_sample(sample, images, template=self.template, image_processor=self.image_processor,
                                rope_index=self.rope_index)
        if self.position_skip == 1:
            return encoded
        skipped = skip_positions(encoded.position_ids, encoded.input_ids, self.template, factor=self.position_skip,
                                 rng=random.Random(f"{self.skip_seed}:{sample.sample_id}"))
        return replace(encoded, position_ids=skipped)


def encode_sample(sample: SampleRecord, images: Sequence["Image.Image"], *, template: ChatTemplate,
                  image_processor, rope_index: RopeIndex) -> EncodedSample:
    """Encode one sample: page images (``sample.pages`` order), then the question, then the answer, then each
    follow-up question and its answer.

    Each image takes ``PageRef.vision_tokens`` pads, the count the store recorded; it must equal what the image
    processor makes of the decoded image, and the encoded length must equal ``sample.tokens`` (what packing
    planned with). Either mismatch raises DataError naming the sample (and page).
    """
    if len(images) != len(sample.pages):
        raise DataError(f"sample {sample.sample_id}: {len(images)} images given for {len(sample.pages)} pages")
    pixel_values = grid = None
    keys = ()
    if images:
        processed = image_processor(images=list(images), return_tensors="pt")
        settings = image_processor.to_json_string()
        keys = tuple(image_key(image, settings) for image in images)
        pixel_values, grid = processed["pixel_values"], processed["image_grid_thw"].long()
        made = template.family.grid_tokens(grid).tolist()
        for i, (page, count) in enumerate(zip(sample.pages, made)):
            if page.vision_tokens != count:
                raise DataError(
                    f"sample {sample.sample_id} page {i} (document {page.doc_id} page {page.page_index}): the store "
                    f"says {page.vision_tokens} vision tokens but the image processor makes {count} of the "
                    f"{images[i].width}x{images[i].height} image; the data was built with another pixel budget "
                    "(set model.min_pixels/max_pixels to the store's)")
    encoded = template.encode([p.vision_tokens for p in sample.pages] + [sample.question], sample.answer,
                              [(f.question, f.answer) for f in sample.followups])
    if len(encoded) != sample.tokens:
        raise DataError(f"sample {sample.sample_id}: encodes to {len(encoded)} tokens but the record says "
                        f"{sample.tokens}; the data was built with another tokenizer or template")
    input_ids = torch.tensor(encoded.input_ids, dtype=torch.long)
    mask = torch.tensor(encoded.loss_mask, dtype=torch.bool)
    labels = torch.where(mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    types = template.mm_token_type_ids(input_ids)
    positions = template.family.sample_positions(rope_index, input_ids, types, grid)
    return EncodedSample(sample.sample_id, input_ids, labels, types, positions, pixel_values, grid, keys)


def skip_positions(positions: torch.Tensor, input_ids: torch.Tensor, template: ChatTemplate, *, factor: float,
                   rng: random.Random) -> torch.Tensor:
    """Position skipping (PoSE, Zhu et al., ICLR 2024) over page boundaries: (4, n) position rows whose mRoPE rows
    (1-3) jump ahead by a skip drawn from [0, (factor - 1) * span] at a boundary drawn among the sample's page
    starts (after its first page) and the end of its last page, so that a window's samples reach relative positions
    up to ``factor`` times their own ``span`` (the positions they cover). Row 0 (the text positions a packed row's
    attention reads its sample boundaries from) is kept. A sample without pages is returned as it is.

    Why: a page spans far fewer positions than tokens (max(h, w) of its merged grid), so a model whose pretraining
    never saw long text (the quickstart's miniature, unlike Qwen2.5-VL-7B's 32K) meets relative positions at twice
    its LongPT window that it never trained at; skipping shows them to it inside the window.
    """
    starts = (input_ids == template.vision_start).nonzero().flatten().tolist()
    if not starts:
        return positions
    last_end = int((input_ids == template.vision_end).nonzero().flatten()[-1])
    cut = rng.choice(starts[1:] + [last_end + 1])
    span = int(positions[1:].max()) + 1
    out = positions.clone()
    out[1:, cut:] += rng.randint(0, int((factor - 1) * span))
    return out


def collate_packed(rows: Sequence[Sequence[EncodedSample]], *, pad_token_id: int,
                   pad_to: int | None = None) -> Batch:
    """Lay each row's samples end to end; rows are right-padded to the longest row (or ``pad_to``).

    A padding tail is its own segment (positions 0.., labels -100), so it changes no sample's outputs. Prefer
    one row per micro-batch: HF's flash_attention_2 path detects packing only for a batch of one row.
    """
    if not rows or any(not row for row in rows):
        raise ValueError("collate_packed needs at least one row and no empty row")
    lengths = [sum(len(s) for s in row) for row in rows]
    length = max(lengths) if pad_to is None else pad_to
    if length < max(lengths):
        raise ValueError(f"pad_to={pad_to} is shorter than the longest row ({max(lengths)} tokens)")
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    types = torch.zeros((len(rows), length), dtype=torch.long)
    positions = torch.zeros((rows[0][0].position_ids.shape[0], len(rows), length), dtype=torch.long)
    segments = []
    for r, row in enumerate(rows):
        start = 0
        for s in row:
            end = start + len(s)
            input_ids[r, start:end] = s.input_ids
            labels[r, start:end] = s.labels
            types[r, start:end] = s.mm_token_type_ids
            positions[:, r, start:end] = s.position_ids
            segments.append(len(s))
            start = end
        if start < length:
            positions[:, r, start:] = torch.arange(length - start)
            segments.append(length - start)
    samples = [s for row in rows for s in row]
    return Batch(
        input_ids=input_ids, labels=labels, position_ids=positions, mm_token_type_ids=types, attention_mask=None,
        **_images(samples), num_target_tokens=(labels != IGNORE_INDEX).sum(-1),
        num_tokens=torch.tensor(lengths, dtype=torch.long), cu_seqlens=_cumulative(segments),
        seq_lens=tuple(tuple(len(s) for s in row) for row in rows),
        sample_ids=tuple(tuple(s.sample_id for s in row) for row in rows), packed=True)


def collate_padded(samples: Sequence[EncodedSample], *, pad_token_id: int) -> Batch:
    """One sample per row, right-padded to the longest, with an attention mask and 3-row mRoPE positions
    (the layout HF uses for ordinary batches; the packed-vs-padded benchmark's baseline)."""
    if not samples:
        raise ValueError("collate_padded needs at least one sample")
    length = max(len(s) for s in samples)
    rows = len(samples)
    input_ids = torch.full((rows, length), pad_token_id, dtype=torch.long)
    labels = torch.full((rows, length), IGNORE_INDEX, dtype=torch.long)
    types = torch.zeros((rows, length), dtype=torch.long)
    attention = torch.zeros((rows, length), dtype=torch.long)
    positions = torch.zeros((len(ModelFamily.unpacked_positions(samples[0].position_ids)), rows, length),
                            dtype=torch.long)
    for r, s in enumerate(samples):
        n = len(s)
        input_ids[r, :n], labels[r, :n], types[r, :n] = s.input_ids, s.labels, s.mm_token_type_ids
        attention[r, :n] = 1
        positions[:, r, :n] = ModelFamily.unpacked_positions(s.position_ids)
    segments = [x for s in samples for x in ((len(s), length - len(s)) if len(s) < length else (len(s),))]
    return Batch(
        input_ids=input_ids, labels=labels, position_ids=positions, mm_token_type_ids=types,
        attention_mask=attention, **_images(samples), num_target_tokens=(labels != IGNORE_INDEX).sum(-1),
        num_tokens=attention.sum(-1), cu_seqlens=_cumulative(segments),
        seq_lens=tuple((len(s),) for s in samples), sample_ids=tuple((s.sample_id,) for s in samples),
        packed=False)


def pad_token_id(tokenizer, family: ModelFamily) -> int:
    """The id padding tails are filled with: the tokenizer's pad token, else the family's."""
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.convert_tokens_to_ids(family.tokens.pad))


def image_key(image: "Image.Image", processor_settings: str) -> bytes:
    """SHA-256 of one decoded image (mode, size, pixels) and the image processor's settings: all its patches, and
    so a frozen vision tower's output, depend on (the key of ``train.frozen_vision``'s memo)."""
    # the decoded 8-bit pixels, not the float32 patches made from them: 8x fewer bytes (a 4K row of the
    # quickstart's pages: 8 MB against 68 MB, whose hashing took a quarter of its DataLoader work)
    digest = hashlib.sha256(str((processor_settings, image.mode, image.size)).encode())
    digest.update(image.tobytes())
    return digest.digest()


def _images(samples: Sequence[EncodedSample]) -> dict:
    with_images = [s for s in samples if s.pixel_values is not None]
    if not with_images:
        return {"pixel_values": None, "image_grid_thw": None}
    # keyed where the patches are made (the DataLoader workers): the training process neither hashes a row's
    # images nor, on a GPU, copies its patches back from the device
    return {"pixel_values": torch.cat([s.pixel_values for s in with_images]),
            "image_grid_thw": torch.cat([s.image_grid_thw for s in with_images]),
            "image_keys": tuple(k for s in with_images for k in s.image_keys)}


def _cumulative(segments: Sequence[int]) -> torch.Tensor:
    out = torch.zeros(len(segments) + 1, dtype=torch.int32)
    out[1:] = torch.tensor(segments, dtype=torch.int64).cumsum(0)
    return out
