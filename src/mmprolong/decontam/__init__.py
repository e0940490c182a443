"""Decontamination: find the training documents of a page store that match an evaluation document (exactly, by
text shingles or by page images), report them and write the exclusion list synth honours.

    from mmprolong.decontam import DecontamConfig, decontaminate
    summary = decontaminate("store", ["mmlongbench/"], "decontam", DecontamConfig())
    # then: synth with exclude="decontam/exclude.txt"

Modules: ``config``, ``sources`` (what --against reads), ``fingerprints`` (shingles, MinHash, perceptual hash),
``index`` (the evaluation side), ``match`` (scoring a pair), ``tasks`` (run by ingest's executors), ``report``,
``exclusion`` (the list synth reads), ``runner``.
"""

from mmprolong.decontam.config import DecontamConfig
from mmprolong.decontam.runner import decontaminate

__all__ = ["DecontamConfig", "decontaminate"]
