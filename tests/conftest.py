"""Fixtures every test folder shares: the tiny preset's tokenizer and the chat template over it."""

import pytest

from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import load_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="session")
def template(tokenizer):
    return ChatTemplate(tokenizer)
