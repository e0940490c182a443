"""What a run reports, from rank 0: RUN/config.yaml at the start, one RUN/metrics.jsonl line and one log line
per step, a tqdm bar (tokens/s, ETA), TensorBoard scalars when ``tensorboard`` is installed, and at the end
RUN/loss.png and RUN/summary.json.

On resume, metrics lines past the resumed step (written after the last checkpoint) are dropped, so the file
holds each step once.
"""

from __future__ import annotations

import json
import logging
import resource
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocated on GPU, resident set size of the process on CPU (GB = 2^30 bytes)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # Linux: KiB


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsLogger:
    """Rank 0 writes everything; other ranks' calls do nothing."""

    def __init__(self, run_dir: str | Path, *, enabled: bool, total_steps: int, progress_bar: bool = True,
                 tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled, self.total_steps = enabled, total_steps
        self.want_bar, self.want_tensorboard = progress_bar, tensorboard
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._file = self._bar = self._tb = self._redirect = None

    def write_config(self, config: dict) -> None:
        import yaml

        if self.enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / ".config.yaml.tmp"
            tmp.write_text(yaml.safe_dump(config, sort_keys=False))
            tmp.replace(self.run_dir / "config.yaml")

    def open(self, start_step: int) -> None:
        if not self.enabled:
            return
        kept = [m for m in read_metrics(self.metrics_path) if m["step"] <= start_step]
        self.metrics_path.write_text("".join(json.dumps(m) + "\n" for m in kept))
        self._file = self.metrics_path.open("a")
        if self.want_tensorboard:
            self._tb = _tensorboard_writer(self.run_dir / "tensorboard")
        if self.want_bar:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = tqdm(total=self.total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                             desc="train")
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()

    def log_step(self, metrics: dict) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(metrics) + "\n")
        self._file.flush()
        log.info("step %d/%d | loss %.4f | lr %.3g | grad_norm %.3f | %.0f tok/s | peak mem %.2f GB",
                 metrics["step"], self.total_steps, metrics["loss"], metrics["lr"], metrics["grad_norm"],
                 metrics["tokens_per_s"], metrics["peak_memory_gb"])
        if self._tb is not None:
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", "peak_memory_gb", "tokens_seen"):
                self._tb.add_scalar(f"train/{key}", metrics[key], metrics["step"])
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", tok_s=f"{metrics['tokens_per_s']:.0f}",
                                  refresh=False)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def finish(self, summary: dict, *, plot: bool) -> None:
        """Write RUN/summary.json and (``plot``) RUN/loss.png."""
        if not self.enabled:
            return
        self.close()
        if plot:
            plot_loss(read_metrics(self.metrics_path), self.run_dir / "loss.png")
        tmp = self.run_dir / ".summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.run_dir / "summary.json")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: TensorBoard logging is off (pip install tensorboard); "
                 "metrics.jsonl has every step")
        return None
    return SummaryWriter(str(folder))


def plot_loss(metrics: list[dict], out: Path) -> None:
    """Loss per step with the learning rate on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics:
        return
    steps = [m["step"] for m in metrics]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [m["loss"] for m in metrics], color="tab:blue", label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("answer-token loss (nats)", color="tab:blue")
    lr_ax = ax.twinx()
    lr_ax.plot(steps, [m["lr"] for m in metrics], color="tab:orange", alpha=0.6, label="lr")
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    ax.set_title("training loss")
    fig.tight_layout()
    tmp = out.with_name(".loss.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)
