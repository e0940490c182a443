"""The Python API: one function per stage. The CLI calls these and nothing else.

    from mmprolong import api
    api.make_corpus("pdfs", docs=8, seed=0)
    api.ingest("pdfs", "store", IngestConfig())
    api.synth("store", "data", SynthConfig(target_tokens=4096))
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def make_corpus(out_dir, *, docs: int, seed: int, show_progress: bool = True, **options) -> list[Path]:
    """Generate the embedded document corpus: realistic PDFs with ground-truth facts beside each. ``options``:
    min_pages, max_pages, layout ("standard" pages, or "large-print" fact cards legible at a small pixel budget),
    register_share, specimen_share and register_gap (large-print); see :func:`mmprolong.corpus.make_corpus`."""
    from mmprolong.corpus import make_corpus as _make

    return _make(out_dir, docs=docs, seed=seed, show_progress=show_progress, **options)


def ingest(pdf_dir, out_dir, config=None, *, overwrite: bool = False, show_progress: bool = True):
    """PDFs -> page store (images, text layer, exact vision tokens per page)."""
    from mmprolong.ingest import IngestConfig
    from mmprolong.ingest import ingest as _ingest

    return _ingest(pdf_dir, out_dir, config or IngestConfig(), overwrite=overwrite, show_progress=show_progress)


def synth(store_dir, out_dir, config=None, *, overwrite: bool = False, show_progress: bool = True,
          api_key: str | None = None) -> dict:
    """Page store -> length-controlled long-document VQA samples; returns the summary."""
    from mmprolong.synth.config import SynthConfig
    from mmprolong.synth.run import synth as _synth

    return _synth(store_dir, out_dir, config or SynthConfig(), overwrite=overwrite, show_progress=show_progress,
                  api_key=api_key)


def decontaminate(store_dir, sources, out_dir, config=None, *, show_progress: bool = True) -> dict:
    """Find the page store's documents that match an evaluation document in ``sources`` (page stores, folders of
    PDFs or page images, docvqa data folders); writes OUT/report.json, report.md and exclude.txt (synth's
    ``exclude``) and returns the summary: matches, matches_by_kind, excluded_documents, exclusion_list, ..."""
    from mmprolong.decontam import DecontamConfig
    from mmprolong.decontam import decontaminate as _decontaminate

    return _decontaminate(store_dir, list(sources), out_dir, config or DecontamConfig(), show_progress=show_progress)


def export(data_dir, out_dir, *, fmt: str) -> dict:
    """Synth samples -> LLaMA-Factory or ms-swift datasets."""
    from mmprolong.synth.export import export as _export

    return _export(data_dir, out_dir, fmt=fmt)


def train(config, *, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> dict:
    """Continued pre-training as ``config`` (TrainConfig) says; one process or one of many under torchrun."""
    from mmprolong.train.run import train as _train

    return _train(config, rank=rank, world_size=world_size, local_rank=local_rank)


def evaluate(model, out_dir, config=None, *, overwrite: bool = False, api_key: str | None = None,
             judge_api_key: str | None = None, show_progress: bool = True, vision_features=None) -> dict:
    """Evaluate a model (checkpoint folder, ModelConfig, or None: the tiny preset) as ``config`` says;
    ``vision_features``: a ``FeatureCache`` to share between evaluations of models with the same vision tower."""
    from mmprolong.eval import EvalConfig
    from mmprolong.eval import evaluate as _evaluate

    return _evaluate(model, out_dir=out_dir, config=config or EvalConfig(), overwrite=overwrite, api_key=api_key,
                     judge_api_key=judge_api_key, show_progress=show_progress, vision_features=vision_features)


def compare(run_dirs, out_dir, *, training_length: int | None = None) -> dict:
    """Compare eval runs side by side: tables and charts in ``out_dir``."""
    from mmprolong.eval import compare_runs

    return compare_runs(run_dirs, out_dir, training_length=training_length)


def train_corpus_tokenizer(pdf_dir, out_dir, *, vocab_size: int):
    """Train the tiny preset's byte-level BPE on the text layer of a folder of PDFs."""
    import pypdfium2 as pdfium

    from mmprolong.tokenizer import train_tokenizer

    def texts():
        for path in sorted(Path(pdf_dir).rglob("*.pdf")):
            pdf = pdfium.PdfDocument(str(path))
            try:
                for page in pdf:
                    yield page.get_textpage().get_text_range().replace("\r\n", "\n")
            finally:
                pdf.close()

    return train_tokenizer(texts(), vocab_size=vocab_size, out_dir=out_dir)


def quickstart(out_dir, **options) -> dict:
    """The recipe end to end on the embedded default, sized for a CPU (or, with ``recipe`` and ``model``, a
    training recipe such as the paper's); writes RUN/report.md, report.html and quickstart.json.
    See :func:`mmprolong.quickstart.make_plan` for the options."""
    from mmprolong.quickstart import quickstart as _quickstart

    return _quickstart(out_dir, **options)


def reproduce(out_dir, config=None, *, show_progress: bool = True) -> dict:
    """The paper's findings tested in miniature (ReproduceConfig: findings, seeds, per-arm budget): trains each
    finding's arms, evaluates them on one grid and writes OUT/report.md, report.html and reproduce.json with a
    verdict per finding. See :mod:`mmprolong.reproduce`."""
    from mmprolong.reproduce import reproduce as _reproduce

    return _reproduce(out_dir, config, show_progress=show_progress)


def brief(summary) -> dict:
    """A stage's summary (dataclass or mapping) as a plain dict without its config, for printing and reports."""
    import dataclasses

    data = dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else dict(summary)
    return {k: v for k, v in data.items() if k != "config"}
