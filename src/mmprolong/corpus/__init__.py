"""The embedded document corpus: procedural, deterministic long PDFs with ground-truth facts.

    from mmprolong.corpus import make_corpus, load_truth
    pdfs = make_corpus("pdfs", docs=8, seed=0, min_pages=20, max_pages=60)
    truth = load_truth(pdfs[0])   # DocumentTruth: sections, facts (entity, attribute, value, page, bbox, ...)

Three kinds of document: ``report`` (US-letter annual report: cover, contents, numbered chapters and
subsections, tables, charts), ``manual`` (A4 operation and maintenance manual: procedures, specification
tables, warnings, fault codes) and ``slides`` (16:9 steering-committee deck). The schema is in ``truth``.

Modules: ``vocab`` (word lists, templates), ``facts`` (metrics, values, the unique-pair pool), ``content``
(document plan and block types), ``compose`` (writes blocks for a page), ``layout`` (line breaking, drawing,
fact boxes), ``charts`` (matplotlib), ``render`` (pagination into one PDF), ``generate`` (``make_corpus``).
"""

from mmprolong.corpus.content import KINDS
from mmprolong.corpus.generate import document_seed, generate_document, make_corpus
from mmprolong.corpus.truth import DocumentTruth, Fact, SectionTruth, load_truth, truth_path

__all__ = ["KINDS", "DocumentTruth", "Fact", "SectionTruth", "document_seed", "generate_document", "load_truth",
           "make_corpus", "truth_path"]
