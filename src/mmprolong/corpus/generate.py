"""``make_corpus``: documents written one by one, deterministic per (seed, index), resumable.

Document i draws everything from ``random.Random(document_seed(seed, i))``, so its bytes depend only on
(seed, i, min_pages, max_pages, layout): ``docs=5`` makes a prefix of ``docs=10``, and a rerun skips documents
whose PDF and truth are both present. Files are written under a temporary name, then renamed.

Layouts: ``standard`` (reports, manuals and slide decks at the paper's scale: prose, tables, charts) and
``large-print`` (decks of fact cards legible at a CPU-sized pixel budget, ``corpus.cards``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from pathlib import Path

from mmprolong.corpus import vocab
from mmprolong.corpus.cards import (
    REGISTER_SHARE,
    SPECIMEN_SHARE,
    deck_truth_sections,
    register_sections,
    render_cards_pdf,
    render_register_pdf,
    render_specimen_pdf,
)
from mmprolong.corpus.compose import Composer
from mmprolong.corpus.content import KINDS, plan_document
from mmprolong.corpus.render import render_pdf
from mmprolong.corpus.truth import DocumentTruth, SectionTruth, fact_groups, load_truth, truth_path
from mmprolong.errors import ConfigError, ResumeError

log = logging.getLogger(__name__)

LAYOUTS = ("standard", "large-print")


def make_corpus(out_dir: str | Path, *, docs: int, seed: int, min_pages: int = 20, max_pages: int = 200,
                layout: str = "standard", register_share: float = REGISTER_SHARE,
                specimen_share: float = SPECIMEN_SHARE, register_gap: int = 0,
                show_progress: bool = False) -> list[Path]:
    """Writes docs PDFs + one ground-truth JSON each into out_dir; returns the PDF paths (sorted).

    ``register_share`` and ``specimen_share`` (large-print only): the expected shares of archive registers and type
    specimens among the documents; the rest are fact-card decks. ``register_gap``: at most this many white
    catalogue cards after each note of a register (0: notes only; ``cards.render_register_pdf``)."""
    _validate(docs=docs, seed=seed, min_pages=min_pages, max_pages=max_pages, layout=layout,
              shares=(register_share, specimen_share))
    if not isinstance(register_gap, int) or isinstance(register_gap, bool) or register_gap < 0:
        raise ConfigError("register_gap", register_gap, "must be an integer >= 0")
    shares = (register_share, specimen_share)
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, made = [], 0
    for index in tqdm(range(docs), desc="corpus", unit="doc", disable=not show_progress):
        pdf = out / f"doc-{index:05d}.pdf"
        if pdf.is_file() and truth_path(pdf).is_file():
            _check_existing(pdf, seed=seed, index=index, min_pages=min_pages, max_pages=max_pages, layout=layout,
                            shares=shares, register_gap=register_gap)
        else:
            data, truth = generate_document(index, seed=seed, min_pages=min_pages, max_pages=max_pages,
                                            layout=layout, shares=shares, register_gap=register_gap)
            _write_atomic(pdf, data)
            _write_atomic(truth_path(pdf), truth.to_json().encode("utf-8"))
            made += 1
        paths.append(pdf)
    log.info("corpus: %d documents in %s (%d made, %d already there)", docs, out, made, docs - made)
    return sorted(paths)


def document_seed(seed: int, index: int) -> int:
    """A 63-bit seed per document from (corpus seed, index); stable across processes and platforms."""
    digest = hashlib.sha256(f"mmprolong-corpus/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate_document(index: int, *, seed: int, min_pages: int, max_pages: int, layout: str = "standard",
                      shares: tuple[float, float] = (REGISTER_SHARE, SPECIMEN_SHARE),
                      register_gap: int = 0) -> tuple[bytes, DocumentTruth]:
    """One document's PDF bytes and its ground truth; ``shares``: (registers, specimens) of large-print documents,
    ``register_gap``: catalogue cards after each note of a register, at most."""
    doc_seed = document_seed(seed, index)
    rng = random.Random(doc_seed)
    num_pages, kind = draw_kind(rng, min_pages=min_pages, max_pages=max_pages, layout=layout, shares=shares)
    if kind in ("notes", "specimen"):
        organisation = f"{rng.choice(vocab.ORG_NAMES)} {rng.choice(sorted(vocab.INDUSTRIES))}"
        if kind == "notes":
            title = f"{organisation} Archive Register {rng.randint(2019, 2025)}"
            data, facts = render_register_pdf(title, organisation, num_pages, rng, register_gap)
            sections = register_sections(num_pages)
        else:
            title, facts = f"{organisation} Type Specimen", []
            data = render_specimen_pdf(title, organisation, num_pages, rng)
            sections = (SectionTruth(title="Specimen", level=1, start_page=0, end_page=num_pages - 1),)
    else:
        plan, pool = plan_document(rng, kind, num_pages)
        title, organisation = plan.title, plan.organisation
        if layout == "large-print":
            data, facts = render_cards_pdf(plan, pool, rng)
            sections = deck_truth_sections(plan)
        else:
            data, facts = render_pdf(plan, Composer(rng, plan, pool))
            sections = tuple(SectionTruth(title=s.title, level=s.level, start_page=s.start_page,
                                          end_page=s.end_page) for s in plan.sections)
    truth = DocumentTruth(doc_name=f"doc-{index:05d}", kind=kind, title=title, organisation=organisation,
                          num_pages=num_pages, seed=doc_seed, sections=sections, facts=tuple(facts),
                          groups=fact_groups(facts), layout=layout)
    return data, truth


def draw_kind(rng: random.Random, *, min_pages: int, max_pages: int, layout: str,
              shares: tuple[float, float]) -> tuple[int, str]:
    """The first draws of a document: its page count and kind (a deck's topic kind, "notes" or "specimen")."""
    num_pages = rng.randint(min_pages, max_pages)
    kind = rng.choice(KINDS)
    draw = rng.random() if layout == "large-print" else 1.0
    if draw < shares[0]:
        return num_pages, "notes"
    return num_pages, "specimen" if draw < sum(shares) else kind


def _validate(*, docs: int, seed: int, min_pages: int, max_pages: int, layout: str,
              shares: tuple[float, float]) -> None:
    if layout not in LAYOUTS:
        raise ConfigError("layout", layout, f"expected one of {', '.join(LAYOUTS)}")
    for name, value in zip(("register_share", "specimen_share"), shares):
        if not 0 <= value <= 1:
            raise ConfigError(name, value, "must be in [0, 1]")
    if sum(shares) > 1:
        raise ConfigError("specimen_share", shares[1], "register_share + specimen_share must not exceed 1")
    for name, value in (("docs", docs), ("seed", seed), ("min_pages", min_pages), ("max_pages", max_pages)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(name, value, "must be an integer")
    if docs < 1:
        raise ConfigError("docs", docs, "make at least one document (docs >= 1)")
    if min_pages < 1:
        raise ConfigError("min_pages", min_pages, "a document has at least one page (min_pages >= 1)")
    if max_pages < min_pages:
        raise ConfigError("max_pages", max_pages, f"must be >= min_pages ({min_pages})")


def _check_existing(pdf: Path, *, seed: int, index: int, min_pages: int, max_pages: int, layout: str,
                    shares: tuple[float, float], register_gap: int = 0) -> None:
    """A document already on disk must be the one this call would make, else resuming mixes two corpora."""
    truth = load_truth(pdf)
    pages, kind = draw_kind(random.Random(document_seed(seed, index)), min_pages=min_pages, max_pages=max_pages,
                            layout=layout, shares=shares)
    if (truth.seed, truth.num_pages, truth.kind, truth.layout) != (document_seed(seed, index), pages, kind, layout):
        raise ResumeError(f"{pdf} was made with other settings (its truth: seed {truth.seed}, {truth.num_pages} "
                          f"pages, {truth.kind}, {truth.layout}); use an empty folder or the original settings")
    # A register without catalogue cards has a note (one fact) on every page after its cover.
    if kind == "notes" and pages > 2 and (len(truth.facts) < pages - 1) != (register_gap > 0):
        raise ResumeError(f"{pdf} is a register made with {'no ' if register_gap else ''}catalogue cards "
                          f"(register_gap={register_gap} now); use an empty folder or the original settings")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target under a dot-name, then rename: a killed run leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
