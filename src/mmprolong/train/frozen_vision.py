"""A frozen vision tower runs once per distinct image, not once per row that shows it.

With ``model.train_vision`` and ``model.train_merger`` off, what the tower hands the language model for an image
depends on its pixels only, and a LongPT mixture shows each page in many samples (the quickstart's: each page about
8 times). On the quickstart's CPU the tower took a third of a training step; memoised, its features are looked up by
a digest of the decoded image and the image processor's settings (``Batch.image_keys``, made in the DataLoader
workers). Each image missing from the cache is encoded on its own: each image attends only to itself in the tower,
but the tower's matmuls round differently with the number of patches they take at once (on one of the CPUs this
project runs on, an image's features were not bitwise the same alone and among others), and features that depended
on which images happened to be missing together would make a resumed run, whose cache starts empty, differ from an
uninterrupted one (tests/train/test_train_resume.py).

One process only: under FSDP2 or DDP every rank must run the tower's forward together (its weights are gathered
there), and a rank that skipped it would hang the others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from mmprolong.models.features import FeatureCache

if TYPE_CHECKING:
    from mmprolong.models.base import ModelFamily
    from mmprolong.train.collate import Batch

log = logging.getLogger(__name__)


class FrozenVisionFeatures:
    """``mm_encoder_outputs`` for a batch, each distinct image encoded once while it stays in ``max_bytes``."""

    def __init__(self, family: "ModelFamily", max_bytes: int):
        self.family = family
        self.cache = FeatureCache(max_bytes)
        self.images = self.encoded = 0

    def __call__(self, model, batch: "Batch") -> dict:
        grids = batch.image_grid_thw.split(1)
        images = batch.pixel_values.split(batch.image_grid_thw.prod(dim=1).tolist())  # patches of each image
        keys = batch.image_keys
        if len(keys) != len(images):
            raise ValueError(f"the batch has {len(images)} images but {len(keys)} image_keys; build it with "
                             "train.collate's collate_packed or collate_padded")
        found = {key: entry for key in dict.fromkeys(keys) if (entry := self.cache.get(key)) is not None}
        missing = {key: i for i, key in enumerate(keys) if key not in found}  # key -> its last image
        self.images += len(keys)
        self.encoded += len(missing)
        for key, i in missing.items():
            with torch.no_grad():
                (parts,) = self.family.image_feature_parts(model.model.get_image_features(images[i], grids[i]))
            found[key] = (parts,)
            self.cache.put(key, found[key])
        return {"image": self.family.image_encoder_output([found[key][0] for key in keys])}

    def stats(self) -> dict:
        return {"images": self.images, "encoded": self.encoded,
                "reused": round(1 - self.encoded / self.images, 4) if self.images else 0.0,
                "cache_mb": round(self.cache.bytes / 2**20, 1)}


def frozen_vision_applies(config, world) -> str | None:
    """None when the features can be memoised for this run, else why not."""
    if config.model.train_vision or config.model.train_merger:
        return "the vision tower or merger is trained"
    if world.distributed:
        return "several processes (every rank must run the tower together)"
    if config.parallel.fused_loss != "none":
        return "the fused loss calls the model itself"
    if config.parallel.vision_cache_mb <= 0:
        return "parallel.vision_cache_mb is 0"
    return None
