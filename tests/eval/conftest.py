"""Fixtures for the eval tests: the shipped tokenizer, a page store with text layers, the tiny Qwen2.5-VL."""

import pytest
from eval_fixtures import write_text_store


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    """12 documents of 12 pages (about 3,000 tokens of pages)."""
    path = tmp_path_factory.mktemp("store")
    write_text_store(path, docs=12, pages=12, seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_backend():
    from mmprolong.eval.backends.hf import HFBackend
    from mmprolong.models.config import ModelConfig

    return HFBackend.load(ModelConfig(), device="cpu")
