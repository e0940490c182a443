"""The paper's findings as ablations: the arms each trains, the claim it makes, and the rule that turns measured
scores into a verdict. Pure data and arithmetic: nothing here trains or reads files.

An arm is a LongPT run that differs from the miniature's default (``balanced``: synth's paper recipe at the 4K
window, RoPE base raised 4x) in one setting. Arms are named once and shared: the balanced arm is the "VQA" arm of
the task finding, the 8:2 arm of the mix finding, the 4x arm of the RoPE finding, the 0% arm of the short-data
finding and the "longer mixture" arm of nothing (the match finding compares against ``target``), so it is
trained once per seed.

The verdict rule. Each finding states its claim as one or more comparisons "arm A scores higher than arm B" on the
finding's scored lengths. For a comparison, the per-item scores of each arm are pooled over those lengths, both
suites and every seed, and ``stats.difference95(A, B)`` gives a 95% interval for mean(A) - mean(B):
    above 0 (low > 0)    the comparison agrees with the claim
    below 0 (high < 0)   it disagrees
    otherwise            inconclusive
A finding agrees when every comparison agrees, disagrees when any comparison disagrees, and is inconclusive
otherwise. The intervals treat items as independent: the same items are asked of every arm and seed, so they
count seed-to-seed noise only through the spread it adds to the pooled scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mmprolong.errors import ConfigError
from mmprolong.stats import difference95

VERDICTS = ("agrees", "disagrees", "inconclusive")


@dataclass(frozen=True)
class Arm:
    """One LongPT run's departure from the default: SynthConfig fields (fixed, and those that depend on the
    mixture's length buckets and the window) and the RoPE base as a multiple of the starting point's."""

    synth: dict = field(default_factory=dict)
    rope_factor: float = 4.0  # the paper raises 1e6 to 4e6 for a 4x window
    note: str = ""  # what the arm is, for the report
    shaped: Callable[[Sequence[int], int], dict] | None = None  # (bucket boundaries, window) -> SynthConfig fields

    def synth_fields(self, boundaries: Sequence[int], window: int) -> dict:
        """The arm's SynthConfig fields for a mixture with these length-bucket boundaries and window."""
        return {**self.synth, **(self.shaped(boundaries, window) if self.shaped else {})}


def short_samples(share: float) -> Callable[[Sequence[int], int], dict]:
    """``share`` of the tokens in short samples: below the first length bucket, at most synth's default 4,096
    (the paper's scale; the miniature's first bucket starts at 1K)."""
    return lambda boundaries, window: {"short_share": share, "short_tokens": min(4096, boundaries[0] - 1)}


def at_half_window(boundaries: Sequence[int], window: int) -> dict:
    """Every sample in the longest bucket that ends at or below half the window (the length it is scored at)."""
    fits = [i for i, end in enumerate(boundaries[1:]) if end <= window // 2]
    if not fits:
        raise ConfigError("buckets", list(boundaries), f"no length bucket ends at or below half the window "
                                                       f"({window // 2:,} tokens): the match finding needs one")
    weights = [0.0] * (len(boundaries) - 1)
    weights[fits[-1]] = 1.0
    return {"distribution": "custom", "bucket_weights": weights}


# The miniature's buckets are [1024, 2048, 3072, 4097] (quickstart.LONG_SYNTH): three buckets up to the 4K window;
# a recipe's are synth's default, four doubling buckets ending at its window.
ARMS: dict[str, Arm] = {
    "balanced": Arm(note="synth's default: equal tokens per length bucket, 40/40/20 extract-single/extract-multi/"
                         "reasoning, no short data, RoPE base x4"),
    "target": Arm({"distribution": "target", "target_share": 0.8}, note="80% of tokens in the bucket at the window"),
    "native": Arm({"distribution": "native"}, note="the store's own document lengths"),
    "ocr-full": Arm({"task_mix": {"ocr-full": 1.0}}, note="transcribe every page"),
    "ocr-needle": Arm({"task_mix": {"ocr-needle": 1.0}}, note="transcribe 1-3 named pages"),
    "mix-2:8": Arm({"task_mix": {"extract-single": 0.1, "extract-multi": 0.1, "reasoning": 0.8}},
                   note="extraction:reasoning 2:8"),
    "rope-kept": Arm(rope_factor=1.0, note="RoPE base kept at the starting point's"),
    "rope-2x": Arm(rope_factor=2.0, note="RoPE base x2"),
    "rope-8x": Arm(rope_factor=8.0, note="RoPE base x8"),
    "short-20": Arm(shaped=short_samples(0.2), note="20% of tokens in short samples, below the first bucket"),
    "eval-length": Arm(shaped=at_half_window, note="every sample in the bucket that ends at half the window, the "
                                                   "length it is scored at (1K-2K in the miniature)"),
}


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str  # the paper's claim, with its numbers
    arms: dict[str, str]  # label in this finding -> arm id in ARMS
    better_than: tuple[tuple[str, str], ...]  # (label A, label B): the claim says A scores higher than B
    scored: str  # which grid lengths the verdict pools: "all", "beyond" (> window) or "half" (window / 2)


FINDINGS: dict[str, Finding] = {f.name: f for f in (
    Finding("length", "A spread of lengths beats a long-biased mix, most of all beyond the window (paper: "
                      "pool-native 55.7-56.9 vs long-biased 54.4-56.8 overall; the abstract calls the winner "
                      "balanced).",
            {"balanced": "balanced", "target-heavy": "target", "native": "native"},
            (("balanced", "target-heavy"),), "beyond"),
    Finding("task", "Long-document VQA beats OCR-style data at the same tokens (paper: 55.7-56.9 vs ocr-full 33.2 "
                    "and ocr-needle 43.8).",
            {"vqa": "balanced", "ocr-full": "ocr-full", "ocr-needle": "ocr-needle"},
            (("vqa", "ocr-full"), ("vqa", "ocr-needle")), "all"),
    Finding("mix", "Retrieval-heavy 8:2 extraction:reasoning beats 2:8 (paper: 57.70 vs 56.13).",
            {"8:2": "balanced", "2:8": "mix-2:8"}, (("8:2", "2:8"),), "all"),
    Finding("rope", "Raising the RoPE base 2-4x with a 4x window works about equally; 8x is worse (paper: 1e6 -> "
                    "2e6 about equal to 4e6, 8e6 worse). The verdict tests the testable half: 2x and 4x each beat "
                    "8x; kept is shown for reference.",
            {"kept": "rope-kept", "2x": "rope-2x", "4x": "balanced", "8x": "rope-8x"},
            (("2x", "8x"), ("4x", "8x")), "all"),
    Finding("short", "Adding short samples does not help (paper: 0% short 57.70 vs 20% short 55.57).",
            {"0% short": "balanced", "20% short": "short-20"}, (("0% short", "20% short"),), "all"),
    Finding("match", "LightOn (arXiv 2602.15257): training at the evaluation length beats training on longer "
                     "contexts. Tested at half the window: every sample near that length vs the target-heavy mix.",
            {"at eval length": "eval-length", "longer": "target"}, (("at eval length", "longer"),), "half"),
)}


def scored_lengths(finding: Finding, lengths: Sequence[int], window: int) -> list[int]:
    """The grid lengths a finding's verdict pools."""
    keep = {"all": lambda n: True, "beyond": lambda n: n > window, "half": lambda n: n == window // 2}[finding.scored]
    return [n for n in lengths if keep(n)]


def comparison_verdict(interval: tuple[float, float]) -> str:
    """The verdict of one comparison from the 95% interval of (claimed better) - (claimed worse)."""
    low, high = interval
    return "agrees" if low > 0 else "disagrees" if high < 0 else "inconclusive"


def combine(verdicts: Sequence[str]) -> str:
    """A finding's verdict from its comparisons': all agree -> agrees; any disagrees -> disagrees."""
    if verdicts and all(v == "agrees" for v in verdicts):
        return "agrees"
    return "disagrees" if "disagrees" in verdicts else "inconclusive"


def judge(finding: Finding, pooled: dict[str, list[float]]) -> tuple[str, list[dict]]:
    """The finding's verdict and each comparison (labels, difference, interval, verdict) from each arm label's
    pooled per-item scores."""
    comparisons = []
    for better, worse in finding.better_than:
        a, b = pooled[better], pooled[worse]
        interval = difference95(a, b)
        diff = sum(a) / len(a) - sum(b) / len(b) if a and b else None
        comparisons.append({"better": better, "worse": worse, "difference": diff, "ci95": list(interval),
                            "n": [len(a), len(b)], "verdict": comparison_verdict(interval)})
    return combine([c["verdict"] for c in comparisons]), comparisons
