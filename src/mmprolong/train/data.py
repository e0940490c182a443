"""A synth ``DATA_DIR`` as a stream of packed rows for one rank: read, plan, shard, encode, resume.

    encoder = SampleEncoder.build(tokenizer, image_processor, model.config)
    rows = PackedRows("data", encoder, max_seq_len=131072, seed=0, rank=rank, world_size=world_size)
    loader = PackedLoader(rows, num_workers=4, pin_memory=True)
    loader.load_state_dict(checkpoint["data"])          # on resume
    for batch in loader:                                 # one packed row per item (a Batch of 1 row)
        loss_sum, targets = answer_loss_sum(model, batch.to(device))   # mmprolong.train.loss
        ...                                              # all-reduce targets; backward(loss_sum / global count)
        checkpoint["data"] = loader.state_dict()          # the position after the last row received

The plan of an epoch is a pure function of (samples, max_seq_len, seed, epoch): the kept samples are shuffled
with the seed and epoch, packed first-fit decreasing into rows of ``max_seq_len`` tokens, the rows shuffled
again, cut to a multiple of ``world_size`` (so every rank runs the same number of steps; the cut rows are
counted) and dealt out ``rows[rank::world_size]``. DataLoader workers take ``rank_rows[worker::workers]``, which
the DataLoader hands back in order, so the stream is the same for any number of workers.

Several synth outputs train together when ``mix_dirs`` names more folders than ``data_dir``: their samples are one
pool (planned, packed and shuffled as above), each read with its own page store, so documents of different
corpora meet in the same rows; each folder's share is the tokens it holds (set by its synth budget).

Samples longer than ``max_seq_len`` are never cut: they are skipped and counted (``stats``), as are samples whose
pages are missing from the store. A sample that fails to encode (vision-token or length mismatch) is dropped
from its row and reported in ``Batch.skipped``; ``PackedLoader.stats`` counts them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError, DataError, ResumeError
from mmprolong.ingest.store import PageStore
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.models.loading import pixel_budget
from mmprolong.records import SampleRecord
from mmprolong.train.collate import Batch, SampleEncoder, collate_packed
from mmprolong.train.packing import pack_first_fit_decreasing, packing_efficiency

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DataConfig(Config):
    """Where the samples are and how they are packed and loaded."""

    data_dir: str = field(help="synth output folder: *.parquet samples and summary.json (whose 'store' is the "
                               "page store, relative to data_dir)")
    mix_dirs: list[str] = field(default_factory=list, help="further synth output folders trained on with "
                                                           "data_dir's samples, each with its own page store, "
                                                           "packed into the same rows; each folder's share is the "
                                                           "tokens it holds")
    max_seq_len: int = field(131_072, help="tokens per packed row (paper: 131072); longer samples are skipped")
    seed: int = field(0, help="shuffle seed: the same data, seed and world size give the same rows")
    num_workers: int = field(2, help="DataLoader worker processes per rank (0: load in the training process)")
    prefetch_factor: int = field(2, help="rows each worker prepares ahead (with num_workers > 0)")
    num_epochs: int | None = field(None, help="passes over the data; none: repeat until the trainer stops")
    position_skip: float = field(1.0, help="position skipping (PoSE): each sample's mRoPE positions jump ahead once, "
                                           "at a page boundary, so a sample reaches relative positions up to this "
                                           "many times its own span (the skip drawn from the sample id and seed, "
                                           "the same every epoch); 1 = off (the paper's LongPT)")

    def validate(self) -> None:
        if len({Path(d).resolve() for d in [self.data_dir, *self.mix_dirs]}) != 1 + len(self.mix_dirs):
            raise ConfigError("mix_dirs", self.mix_dirs, "names a folder twice (or data_dir again): each synth "
                                                         "output is read once")
        if self.max_seq_len <= 0:
            raise ConfigError("max_seq_len", self.max_seq_len, "must be a positive number of tokens")
        if self.num_workers < 0:
            raise ConfigError("num_workers", self.num_workers, "must be 0 or more")
        if self.prefetch_factor <= 0:
            raise ConfigError("prefetch_factor", self.prefetch_factor, "must be positive")
        if not self.position_skip >= 1:
            raise ConfigError("position_skip", self.position_skip, "must be 1 (off) or more")
        if self.num_epochs is not None and self.num_epochs <= 0:
            raise ConfigError("num_epochs", self.num_epochs, "must be positive, or none to repeat")


# --- reading ----------------------------------------------------------------------------------------------


def read_samples(data_dir: str | Path) -> list[SampleRecord]:
    """Every SampleRecord of ``DATA_DIR/*.parquet``, shards in name order, rows in file order."""
    shards = sorted(Path(data_dir).glob("*.parquet"))
    if not shards:
        raise DataError(f"{data_dir} holds no sample shards (*.parquet): run `mmprolong synth` first")
    return [SampleRecord.from_row(r) for shard in shards for r in pq.read_table(shard).to_pylist()]


def read_data_summary(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "summary.json"
    if not path.is_file():
        raise DataError(f"{data_dir} has no summary.json: it is not a finished synth output")
    summary = json.loads(path.read_text())
    if "store" not in summary:
        raise DataError(f"{path} names no page store (key 'store')")
    return summary


# --- the dataset ------------------------------------------------------------------------------------------


class PackedRows(IterableDataset):
    """This rank's packed rows, epoch after epoch, from a position (``set_position``); each item a 1-row Batch.

    Use through ``PackedLoader``, which tracks the position for ``state_dict``.
    """

    def __init__(self, data_dir: str | Path, encoder: SampleEncoder, *, max_seq_len: int, seed: int,
                 rank: int = 0, world_size: int = 1, num_epochs: int | None = None,
                 mix_dirs: Sequence[str | Path] = ()):
        super().__init__()
        if world_size <= 0 or not 0 <= rank < world_size:
            raise ConfigError("rank", rank, f"need 0 <= rank < world_size (world_size={world_size})")
        if max_seq_len <= 0:
            raise ConfigError("max_seq_len", max_seq_len, "must be a positive number of tokens")
        self.data_dir = Path(data_dir)
        self.encoder = encoder
        self.max_seq_len, self.seed = max_seq_len, seed
        self.rank, self.world_size, self.num_epochs = rank, world_size, num_epochs
        # samples of every folder in one list; source[i] is the folder (and page store) of sample i
        self.samples, self.source, self.stores = [], [], []
        for k, folder in enumerate([self.data_dir, *map(Path, mix_dirs)]):
            summary = read_data_summary(folder)
            self._check_vision_counts(folder, summary)
            samples = read_samples(folder)
            self.stores.append(PageStore((folder / summary["store"]).resolve(),
                                         {(p.doc_id, p.page_index) for s in samples for p in s.pages}))
            self.samples += samples
            self.source += [k] * len(samples)
        self.kept, reasons = self._select()
        self.fingerprint = _fingerprint(self.samples, self.source)
        self.position = (0, 0)
        self.stats = self._stats(reasons)
        if rank == 0:
            log.info("data %s: %d samples, %d kept; skipped %s; %d rows/epoch at %.1f%% packing efficiency",
                     " + ".join(map(str, [self.data_dir, *mix_dirs])), len(self.samples), len(self.kept),
                     dict(reasons) or "none",
                     self.stats["rows_per_epoch"], 100 * self.stats["packing_efficiency"])

    def _check_vision_counts(self, folder: Path, summary: dict) -> None:
        """ConfigError unless the data of ``folder`` counted vision tokens for this model's family and pixel budget."""
        family = self.encoder.template.family
        counted_for = summary.get("family", DEFAULT_FAMILY.name)  # data made before families: Qwen2.5-VL's counts
        if counted_for != family.name:
            raise ConfigError("model.family", family.name, f"{folder} counts vision tokens for {counted_for}: "
                                                           f"give a {counted_for} model, or ingest and synth for "
                                                           f"{family.name}")
        lo, hi = pixel_budget(self.encoder.image_processor)
        for name, ours in (("min_pixels", lo), ("max_pixels", hi)):
            theirs = summary.get(name)
            if theirs is not None and theirs != ours:
                raise ConfigError(f"model.{name}", ours, f"{folder} was built with {name}={theirs}: set "
                                                         f"model.{name} to {theirs} so vision tokens match")

    def _select(self) -> tuple[list[int], Counter]:
        kept, reasons, examples = [], Counter(), {}
        for i, s in enumerate(self.samples):
            if s.tokens > self.max_seq_len:
                reason = "too_long"
            elif any((p.doc_id, p.page_index) not in self.stores[self.source[i]] for p in s.pages):
                reason = "missing_page"
            else:
                kept.append(i)
                continue
            reasons[reason] += 1
            examples.setdefault(reason, s.sample_id)
        if self.rank == 0:
            for reason, count in reasons.items():
                log.warning("skipping %d samples (%s; e.g. %s%s)", count, reason, examples[reason],
                            f", longer than max_seq_len={self.max_seq_len}" if reason == "too_long" else "")
        return kept, reasons

    def _stats(self, reasons: Counter) -> dict:
        """Counts of the samples read and skipped, and of epoch 0's rows (later epochs differ only by ties)."""
        lengths = [s.tokens for s in self.samples]
        rows = self.global_rows(0)
        return {"samples": len(self.samples), "samples_kept": len(self.kept),
                "skipped_too_long": reasons.get("too_long", 0), "skipped_missing_page": reasons.get("missing_page", 0),
                "tokens_per_epoch": sum(lengths[i] for i in self.kept),
                "tokens_per_epoch_by_folder": [sum(lengths[i] for i in self.kept if self.source[i] == k)
                                               for k in range(len(self.stores))],
                "rows_per_epoch": len(rows) - len(rows) % self.world_size,
                "rows_dropped_per_epoch": len(rows) % self.world_size,
                "rows_per_rank_per_epoch": len(rows) // self.world_size,
                "packing_efficiency": packing_efficiency(rows, lengths, self.max_seq_len)}

    # -- plan ----------------------------------------------------------------------------------------------

    def global_rows(self, epoch: int) -> list[list[int]]:
        """Every rank's rows of ``epoch`` (sample indices into ``self.samples``), before the rank cut."""
        order = list(self.kept)
        random.Random(f"{self.seed}:{epoch}:samples").shuffle(order)
        bins = pack_first_fit_decreasing([self.samples[i].tokens for i in order], self.max_seq_len)
        rows = [[order[j] for j in row] for row in bins]
        random.Random(f"{self.seed}:{epoch}:rows").shuffle(rows)
        return rows

    def rank_rows(self, epoch: int) -> list[list[int]]:
        """This rank's rows of ``epoch``: the global rows cut to a multiple of world_size, every world_size-th."""
        rows = self.global_rows(epoch)
        rows = rows[: len(rows) - len(rows) % self.world_size]
        return rows[self.rank :: self.world_size]

    def set_position(self, epoch: int, row: int) -> None:
        """Start the next iteration at ``row`` of this rank's rows of ``epoch``."""
        self.position = (epoch, row)

    # -- iteration -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, start = self.position
        k = 0  # index in the stream from the start position; worker w builds k = w, w + workers, ...
        while self.num_epochs is None or epoch < self.num_epochs:
            rows = self.rank_rows(epoch)
            if not rows:
                raise DataError(f"{self.data_dir}: no row for rank {self.rank} of {self.world_size} "
                                f"({len(self.kept)} usable samples)")
            for r in range(start, len(rows)):
                if k % workers == worker:
                    yield self.build_row(rows[r], epoch=epoch, row=r)
                k += 1
            epoch, start = epoch + 1, 0

    def build_row(self, indices: Sequence[int], *, epoch: int = -1, row: int = -1) -> Batch:
        """Load, encode and pack the samples ``indices`` into one row; failing samples are dropped and reported."""
        encoded, skipped = [], []
        for i in indices:
            sample = self.samples[i]
            try:
                images = [self.stores[self.source[i]].image(p.doc_id, p.page_index) for p in sample.pages]
                encoded.append(self.encoder.encode(sample, images))
            except DataError as exc:
                log.warning("dropping sample %s from row %d of epoch %d: %s", sample.sample_id, row, epoch, exc)
                skipped.append((sample.sample_id, str(exc)))
        if not encoded:
            raise DataError(f"every sample of row {row} of epoch {epoch} failed to encode; first: {skipped[0][1]}")
        batch = collate_packed([encoded], pad_token_id=self.encoder.pad_token_id)
        return replace(batch, epoch=epoch, row=row, skipped=tuple(skipped))


def _fingerprint(samples: Sequence[SampleRecord], source: Sequence[int]) -> str:
    """What a checkpoint's data position refers to; a sample of a mixed-in folder counts with its folder's index
    (the data_dir's samples alone, as before folders could be mixed, so older checkpoints still resume)."""
    digest = hashlib.sha256()
    for s, k in zip(samples, source, strict=True):
        digest.update(f"{f'{k}/' if k else ''}{s.sample_id}:{s.tokens};".encode())
    return digest.hexdigest()[:16]


# --- the loader -------------------------------------------------------------------------------------------


class PackedLoader:
    """Iterates a PackedRows (in worker processes when ``num_workers > 0``) and records the position reached.

    ``state_dict()`` is the position after the last row *received* here, so rows prefetched by workers but not
    yet consumed are produced again after ``load_state_dict``: a resumed run continues exactly where it stopped.
    """

    def __init__(self, dataset: PackedRows, *, num_workers: int = 0, prefetch_factor: int = 2,
                 pin_memory: bool = False):
        self.dataset = dataset
        self.num_workers, self.prefetch_factor, self.pin_memory = num_workers, prefetch_factor, pin_memory
        self.epoch, self.row = dataset.position
        self.skipped: Counter = Counter()

    def __iter__(self) -> Iterator[Batch]:
        self.dataset.set_position(self.epoch, self.row)
        if self.num_workers == 0:
            source = iter(self.dataset)
        else:
            source = iter(torch.utils.data.DataLoader(
                self.dataset, batch_size=None, num_workers=self.num_workers, prefetch_factor=self.prefetch_factor,
                pin_memory=self.pin_memory, in_order=True))
        for batch in source:
            self.epoch, self.row = batch.epoch, batch.row + 1
            self.skipped["encode_failed"] += len(batch.skipped)
            yield batch

    @property
    def stats(self) -> dict:
        """The dataset's plan statistics plus the samples dropped while encoding so far."""
        return {**self.dataset.stats, "skipped_encode_failed": self.skipped["encode_failed"]}

    def state_dict(self) -> dict:
        d = self.dataset
        return {"epoch": self.epoch, "row": self.row, "seed": d.seed, "rank": d.rank, "world_size": d.world_size,
                "max_seq_len": d.max_seq_len, "fingerprint": d.fingerprint,
                "skipped_encode_failed": self.skipped["encode_failed"]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``; ResumeError if it was saved with other data, seed, length or ranks."""
        d = self.dataset
        ours = {"seed": d.seed, "rank": d.rank, "world_size": d.world_size, "max_seq_len": d.max_seq_len,
                "fingerprint": d.fingerprint}
        changed = {k: (state.get(k), v) for k, v in ours.items() if state.get(k) != v}
        if changed:
            raise ResumeError(f"data loader state was saved with other settings (saved, now): {changed}; resume "
                              "with the same data, seed, max_seq_len and world size")
        self.epoch, self.row = int(state["epoch"]), int(state["row"])
        self.skipped = Counter({"encode_failed": int(state.get("skipped_encode_failed", 0))})
        d.set_position(self.epoch, self.row)
