"""Fixtures every test folder shares: the tiny preset's tokenizer and the chat template over it; one CPU thread."""

import pytest

from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import load_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="session")
def template(tokenizer):
    return ChatTemplate(tokenizer)


@pytest.fixture(scope="session", autouse=True)
def _one_cpu_thread():
    """One intra-op thread: on a shared 2-core machine torch's OpenMP threads slow the tiny models ~10x."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
