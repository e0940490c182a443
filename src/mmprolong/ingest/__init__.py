"""Ingest: a folder of PDFs -> a page store (Parquet shards of PageRecord: page image, text layer, exact
vision tokens), rendered in parallel, resumable after a kill, with every skipped file and page reported.

    from mmprolong.ingest import IngestConfig, ingest, read_store
    summary = ingest("pdfs/", "store/", IngestConfig(workers=8))
    table = read_store("store/", columns=["doc_id", "page_index", "vision_tokens"])

See :mod:`mmprolong.ingest.store` for the folder layout.
"""

from mmprolong.ingest.config import IngestConfig
from mmprolong.ingest.pdf import SkipReport, process_file
from mmprolong.ingest.runner import IngestSummary, discover_pdfs, ingest
from mmprolong.ingest.store import iter_documents, read_store

__all__ = ["IngestConfig", "IngestSummary", "SkipReport", "discover_pdfs", "ingest", "iter_documents",
           "process_file", "read_store"]
