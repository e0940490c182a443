"""Run a benchmark or CLI command with page labels in the chat layout: the text "Page k:" before the k-th image of
every prompt, in training samples, synth's exact counts and evaluation items alike.

    python benchmarks/page_labels.py benchmarks/longpt.py --run runs/quickstart --work runs/labels \\
        --variant 'labels, anchored={"synth.anchor_share": 1.0}'
    python benchmarks/page_labels.py -m mmprolong.cli eval --model MODEL ...

The paper's questions name their place ("on page 11", counted in the images the sample shows), and a model must
count images to use it; with a label before each image the anchor is text the model can match. This asks what the
labels change; it is an experiment, not a product setting (``prompt_layout.run_with``: synth, training and
evaluation all see the labels). A variant of `longpt.py` must make its own data (a ``synth.`` override), since
data made without labels counts other lengths. The niah haystack builder picks pages by their image tokens, not
their labels: a few long haystacks then miss their length's tolerance and are reported as items that could not be
built, not counted in a score.
"""

from __future__ import annotations

from prompt_layout import run_with

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


if __name__ == "__main__":
    run_with(labelled, __doc__)
