"""Run a benchmark script or ``-m`` module with every prompt's user parts rewritten by one function: the experiment
harnesses ``page_labels.py`` and ``question_first.py`` share this.

It wraps ``ChatTemplate.prompt_ids`` and ``ChatTemplate.count``, the two places every token count and every
encoded prompt go through, so synth plans the rewritten lengths exactly, training encodes them and each evaluation
item is counted and asked with them. Data made without the rewrite counts other lengths: a run must make its own.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mmprolong.template import ChatTemplate, Part


def run_with(rewrite: Callable[[Sequence[Part]], list[Part]], usage: str) -> None:
    """Patch the chat layout with ``rewrite`` and run what ``sys.argv[1:]`` names (a script, or ``-m`` module)."""
    if len(sys.argv) < 2:
        sys.exit(usage)
    prompt_ids, count = ChatTemplate.prompt_ids, ChatTemplate.count
    ChatTemplate.prompt_ids = lambda self, parts: prompt_ids(self, rewrite(parts))
    ChatTemplate.count = lambda self, parts, answer, followups=(): count(self, rewrite(parts), answer, followups)
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))  # the script's own imports (common, ...)
        runpy.run_path(sys.argv[0], run_name="__main__")
