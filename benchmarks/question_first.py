"""Run a benchmark or CLI command with each prompt's question also written before its images: the question, the
pages, the question again (query-aware contextualisation, Liu et al. 2023, "Lost in the Middle", section 2.3).

    python benchmarks/question_first.py benchmarks/longpt.py --run runs/quickstart --work runs/question-first \\
        --variant 'question first={"synth.anchor_share": 0.0}'
    python benchmarks/question_first.py -m mmprolong.cli eval --model MODEL ...

A decoder reads the pages before the question, so nothing it computes at a page can depend on what will be asked:
choosing a note among look-alikes must all happen at the question's few tokens, attending over every page at
once. With the question first, each page's tokens can already match it, as they are read. This asks whether that
helps a small model choose at length; it is an experiment, not a product setting (``prompt_layout.run_with``:
synth, training and evaluation all see the layout). Only the first question moves: follow-up turns are asked
after the answer as before. A variant of `longpt.py` must make its own data (a ``synth.`` override), since data
made in the plain layout counts other lengths.
"""

from __future__ import annotations

from prompt_layout import run_with


def question_first(parts):
    """``parts`` (ints: images, strs: text) with the last text part, the question, also before the first part, when
    the prompt has an image and ends with text; otherwise ``parts`` unchanged."""
    parts = list(parts)
    if parts and isinstance(parts[-1], str) and any(isinstance(p, int) for p in parts):
        return [parts[-1] + "\n", *parts]
    return parts


if __name__ == "__main__":
    run_with(question_first, __doc__)
