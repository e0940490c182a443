"""Run a benchmark or CLI command with page labels in the chat layout: the text "Page k:" before the k-th image of
every prompt, in training samples, synth's exact counts and evaluation items alike.

    python benchmarks/page_labels.py benchmarks/longpt.py --run runs/quickstart --work runs/labels \\
        --variant 'labels, anchored={"synth.anchor_share": 1.0}'
    python benchmarks/page_labels.py -m mmprolong.cli eval --model MODEL ...

The paper's questions name their place ("on page 11", counted in the images the sample shows), and a model must
count images to use it; with a label before each image the anchor is text the model can match. This asks what the
labels change; it is an experiment, not a product setting: it wraps ``ChatTemplate.prompt_ids`` and
``ChatTemplate.count``, the two places every token count and every encoded prompt go through, so synth plans the
labelled lengths exactly, training encodes them and each evaluation item is counted and asked with them. A
variant of `longpt.py` must make its own data (a ``synth.`` override), since data made without labels counts other
lengths. The niah haystack builder picks pages by their image tokens, not their labels: a few long haystacks then
miss their length's tolerance and are reported as items that could not be built, not counted in a score.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from mmprolong.template import ChatTemplate

LABEL = "Page {}:"


def labelled(parts):
    """``parts`` (ints: images, strs: text) with ``LABEL`` before each image, numbered from 1."""
    out, page = [], 0
    for part in parts:
        if isinstance(part, int):
            page += 1
            out.append(LABEL.format(page))
        out.append(part)
    return out


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prompt_ids, count = ChatTemplate.prompt_ids, ChatTemplate.count
    ChatTemplate.prompt_ids = lambda self, parts: prompt_ids(self, labelled(parts))
    ChatTemplate.count = lambda self, parts, answer, followups=(): count(self, labelled(parts), answer, followups)
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))  # the script's own imports (common, ...)
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
