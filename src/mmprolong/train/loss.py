"""The training loss: cross-entropy over the answer tokens only, never building full-vocabulary logits for a row."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from mmprolong.train.collate import Batch


def answer_loss_sum(model, batch: "Batch", images=None) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(sum of cross-entropy over the batch's target tokens, number of target tokens), as 0-d tensors.

    Projects only the hidden states that predict a target onto the vocabulary (``logits_to_keep`` mask), so a
    128K-token row never materialises 128K x vocab logits. Divide the all-reduced sum by the all-reduced count
    to average over the global batch. Equals HF's ``model(**inputs, labels=...).loss * count``. ``images``
    (``train.frozen_vision.FrozenVisionFeatures``): the images' features come from it instead of the vision tower.
    """
    import torch
    import torch.nn.functional as F

    inputs = batch.model_inputs(labels=False)
    if images is not None and batch.pixel_values is not None:
        inputs["mm_encoder_outputs"] = images(model, batch)
        del inputs["pixel_values"]
    keep = batch.logits_mask()
    logits = model(**inputs, logits_to_keep=keep.to(inputs["input_ids"].device)).logits
    targets = batch.target_ids().to(logits.device)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least, float64 kept
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, reduction="sum")
    return loss, targets.new_tensor(targets.numel())
