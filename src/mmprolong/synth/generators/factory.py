"""Build the generator a SynthConfig names."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mmprolong.synth.generators import QAGenerator, QARequest
from mmprolong.synth.qa import QACandidate


class FirstOf:
    """Asks each generator in turn; a request goes to the next one only where the previous gave None."""

    def __init__(self, generators: Sequence[QAGenerator]):
        self.generators = list(generators)
        self.name = "+".join(g.name for g in self.generators)

    @property
    def stats(self) -> Counter:
        """The counters of the generators that keep any (the endpoint's: calls, failures by reason)."""
        total = Counter()
        for generator in self.generators:
            total.update(getattr(generator, "stats", {}))
        return total

    def propose_many(self, requests: Sequence[QARequest]) -> list[QACandidate | None]:
        results: list[QACandidate | None] = [None] * len(requests)
        for generator in self.generators:
            open_ = [i for i, r in enumerate(results) if r is None]
            if not open_:
                break
            for i, candidate in zip(open_, generator.propose_many([requests[i] for i in open_])):
                results[i] = candidate
        return results


def make_generator(config, *, api_key: str | None = None) -> QAGenerator:
    """offline: ground truth where a document has it, else text-layer clozes (OCR tasks: text layer).
    endpoint: the VLM endpoint, with the text layer for OCR tasks (which need no model)."""
    from mmprolong.synth.generators.textlayer import TextLayerGenerator
    from mmprolong.synth.generators.truth import TruthGenerator

    if config.generator == "endpoint":
        from mmprolong.synth.generators.endpoint import EndpointConfig, EndpointGenerator

        endpoint = EndpointGenerator(EndpointConfig.from_dict(config.endpoint, prefix="endpoint."), api_key=api_key)
        return FirstOf([endpoint, TextLayerGenerator(tasks=("ocr-full", "ocr-needle"))])
    items = tuple(config.multi_items)
    truth = TruthGenerator(multi_items=items, anchor_share=config.anchor_share)
    return FirstOf([truth, TextLayerGenerator(multi_items=items)])
