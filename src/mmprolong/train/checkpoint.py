"""Resumable checkpoints and the final Hugging Face model.

A checkpoint is a folder ``RUN/checkpoints/step-00000012`` holding

  .metadata, *.distcp     model and optimizer state (torch.distributed.checkpoint: sharded under FSDP2, one file
                          per rank, reloadable at another world size)
  rank-00000.pt ...       per rank: data loader position (PackedLoader.state_dict) and RNG states (python, torch,
                          cuda)
  trainer.json            step, tokens seen, LR schedule state, the settings a resume must share

It is written to ``.step-00000012.tmp`` and renamed when every rank is done, so a folder named ``step-*`` is
complete; ``latest`` picks the highest such step. ``keep_last`` older ones are deleted after a save.

A checkpoint folder may come from anywhere (a shared cluster disk, a downloaded run), and resuming it runs no code
from it: rank files hold tensors and plain values and are read with ``torch.load(weights_only=True)``; DCP reads
``.metadata`` with ``pickle.load`` and its non-tensor entries (the optimizer's param-group settings) with
``torch.load(weights_only=False)``, so ``load`` first reads the one with only DCP's metadata classes allowed and
the others with ``weights_only=True``. Anything else is refused with a ResumeError before it is unpickled.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import pickle
import random
import re
import shutil
import time
import warnings
from pathlib import Path

import torch

from mmprolong.errors import ResumeError

log = logging.getLogger(__name__)

NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if NAME.match(p.name) and (p / "trainer.json").is_file()]
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class Checkpointer:
    """Saves and loads checkpoints of one run; every rank calls ``save``/``load`` (they are collective)."""

    def __init__(self, run_dir: str | Path, *, rank: int, world_size: int, keep_last: int):
        self.folder = checkpoint_dir(run_dir)
        self.rank, self.world_size, self.keep_last = rank, world_size, keep_last

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}"

    def save(self, step: int, model, optimizer, *, trainer_state: dict, rank_state: dict) -> Path:
        """Write checkpoint ``step`` (model, optimizer, ``trainer_state`` once, ``rank_state`` per rank)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        final = self.path(step)
        tmp = self.folder / f".{final.name}.tmp"
        start = time.perf_counter()
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        _barrier(self.world_size)
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        with _quiet_single_process(self.world_size):
            dcp.save(state, checkpoint_id=str(tmp), no_dist=self.world_size == 1)
        torch.save({**rank_state, "rng": rng_state()}, tmp / f"rank-{self.rank:05d}.pt")
        _barrier(self.world_size)
        if self.rank == 0:
            meta = {**trainer_state, "step": step, "world_size": self.world_size, "saved_at": time.time()}
            (tmp / "trainer.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            self._prune()
        _barrier(self.world_size)
        if self.rank == 0:
            log.info("checkpoint %s saved in %.1f s", final, time.perf_counter() - start)
        return final

    def load(self, path: str | Path, model, optimizer) -> tuple[dict, dict]:
        """Load model and optimizer state in place; returns (trainer_state, this rank's state) and restores RNGs."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            get_model_state_dict,
            get_optimizer_state_dict,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        path = Path(path)
        meta_path = path / "trainer.json"
        if not meta_path.is_file():
            raise ResumeError(f"{path} is not a complete checkpoint (no trainer.json)")
        meta = json.loads(meta_path.read_text())
        rank_file = path / f"rank-{self.rank:05d}.pt"
        if meta.get("world_size") != self.world_size or not rank_file.is_file():
            raise ResumeError(f"{path} was written by {meta.get('world_size')} processes, this run has "
                              f"{self.world_size}: the data position is per rank, resume with the same world size")
        rank_state = load_rank_state(rank_file)
        check_metadata(path)
        state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        with _quiet_single_process(self.world_size), _refusals_unwrapped():
            dcp.load(state, checkpoint_id=str(path), planner=plain_values_planner(), no_dist=self.world_size == 1)
        set_model_state_dict(model, state["model"])
        set_optimizer_state_dict(model, optimizer, state["optim"])
        set_rng_state(rank_state.pop("rng"))
        return meta, rank_state

    def _prune(self) -> None:
        for stale in self.folder.glob(".step-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        found = list_checkpoints(self.folder.parent)
        for old in found[: max(0, len(found) - self.keep_last)]:
            shutil.rmtree(old, ignore_errors=True)


# --- reading a checkpoint without running code from it ----------------------------------------------------


def load_rank_state(path: Path) -> dict:
    """A rank file's loader position and RNG states, refused (ResumeError) unless it is tensors and plain values."""
    try:
        state = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(path, _weights_only_reason(exc)) from None
    rng = state.get("rng") if isinstance(state, dict) else None
    if not (isinstance(rng, dict) and isinstance(state.get("data"), dict) and isinstance(rng.get("python"), tuple)
            and isinstance(rng.get("torch"), torch.Tensor)):
        raise ResumeError(f"{path} is not a rank state of an mmprolong checkpoint (expected the keys 'data' and "
                          f"'rng', found {sorted(state) if isinstance(state, dict) else type(state).__name__}); "
                          "resume from a checkpoint this version wrote, or use a new run_dir")
    return state


def check_metadata(folder: Path) -> None:
    """Read DCP's metadata files with only DCP's metadata classes, torch dtypes and sizes, and paths allowed."""
    for path in [folder / ".metadata", *sorted(folder.glob("__*.metadata"))]:
        if not path.is_file():
            continue
        with path.open("rb") as f:
            try:
                _MetadataUnpickler(f, path).load()
            except (pickle.UnpicklingError, EOFError) as exc:
                raise ResumeError(f"{path} is not a readable checkpoint metadata file ({exc})") from None


class _MetadataUnpickler(pickle.Unpickler):
    """Builds only DCP's metadata classes (dataclasses, enums), torch dtypes and sizes, layouts and paths."""

    MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem")
    OTHERS = {("torch", "Size"), ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"),
              ("pathlib", "PurePosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PureWindowsPath")}

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        if module in self.MODULES:
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type) and found.__module__ == module:
                return found
        elif (module, name) in self.OTHERS or (module == "torch" and isinstance(getattr(torch, name, None),
                                                                                 torch.dtype)):
            return getattr(importlib.import_module(module), name)
        raise _refused(self.path, f"it names {module}.{name}")


def plain_values_planner():
    """DCP's default load planner, except that a non-tensor entry is first read with ``weights_only=True``."""
    from torch.distributed.checkpoint import DefaultLoadPlanner

    class PlainValuesLoadPlanner(DefaultLoadPlanner):
        def load_bytes(self, read_item, value) -> None:
            data = value.read()
            try:
                torch.load(io.BytesIO(data), weights_only=True)
            except pickle.UnpicklingError as exc:
                raise _refused(read_item.dest_index.fqn, _weights_only_reason(exc)) from None
            super().load_bytes(read_item, io.BytesIO(data))

    return PlainValuesLoadPlanner()


@contextlib.contextmanager
def _refusals_unwrapped():
    """DCP wraps what a planner raises in a CheckpointException of all ranks' failures: raise the refusal."""
    from torch.distributed.checkpoint import CheckpointException

    try:
        yield
    except CheckpointException as exc:
        refused = [e for e, _ in exc.failures.values() if isinstance(e, ResumeError)]
        if refused:
            raise refused[0] from None
        raise


def _weights_only_reason(exc: pickle.UnpicklingError) -> str:
    """What torch's weights_only unpickler refused (its message also suggests weights_only=False: not for us)."""
    found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed|$)", str(exc), re.MULTILINE)
    return found.group(1) if found else str(exc).splitlines()[0]


def _refused(what, why: str) -> ResumeError:
    return ResumeError(f"checkpoint entry {what} holds more than tensors and plain values ({why}): refused "
                       "without loading it, as unpickling it could run code; resume only checkpoints written by "
                       "mmprolong, or use a new run_dir")


@contextlib.contextmanager
def _quiet_single_process(world_size: int):
    """DCP warns that it saves in a single process even when told so (no_dist=True): that is the intent here."""
    with warnings.catch_warnings():
        if world_size == 1:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


# --- the final model --------------------------------------------------------------------------------------


def save_final_model(model, tokenizer, image_processor, out_dir: str | Path, *, rank: int, world_size: int,
                     sharded: bool, dtype: str = "same") -> Path | None:
    """Write ``out_dir`` with ``save_model`` (save_pretrained, safetensors) so transformers and vLLM load it as
    any checkpoint of its family. Under FSDP2 the full weights are gathered to rank 0 (on CPU) first.
    Returns the folder on rank 0, None elsewhere."""
    from mmprolong.models import family_of_config
    from mmprolong.models.loading import reset_rotary_buffers, save_model
    from mmprolong.train.parallelize import unwrap

    core = unwrap(model)
    if not sharded:
        if rank != 0:
            return None
        if dtype != "same":
            core = core.to(getattr(torch, dtype))
        return save_model(core, tokenizer, image_processor, out_dir, overwrite=True)
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
    )

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank != 0:
        return None
    if dtype != "same":
        full = {k: v.to(getattr(torch, dtype)) for k, v in full.items()}
    with torch.device("meta"):
        copy = family_of_config(core.config).model_type()._from_config(core.config)  # not type(core): FSDP2's
    copy.load_state_dict(full, assign=True)
    for module in copy.modules():  # non-persistent buffers (rotary inv_freq) are still on meta
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_meta:
                module._buffers[name] = torch.empty_like(buffer, device="cpu")
    reset_rotary_buffers(copy)
    return save_model(copy, tokenizer, image_processor, out_dir, overwrite=True)
