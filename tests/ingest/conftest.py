import pytest
from ingest_fixtures import SMALL_BUDGET, make_corpus

from mmprolong.ingest import IngestConfig


@pytest.fixture
def small_config():
    """A fast config: small pixel budget, 2 documents per shard."""
    def build(**overrides):
        return IngestConfig(**{**SMALL_BUDGET, "docs_per_shard": 2, **overrides})

    return build


@pytest.fixture
def corpus(tmp_path):
    """5 PDFs of 3 pages: ({relative path: page markers}, folder)."""
    folder = tmp_path / "pdfs"
    return make_corpus(folder, docs=5, pages=3), folder
