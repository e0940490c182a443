"""The eval stage: key-information retrieval and document QA at every length and position, and beyond the
training length.

    from mmprolong.eval import EvalConfig, evaluate, compare_runs
    evaluate(ModelConfig(path="out/final"), "niah", lengths="8k,16k,32k", out_dir="eval/niah",
             config=EvalConfig(store_dir="store"))
    compare_runs(["eval/base", "eval/trained"], "eval/compare")

Suites: niah, docvqa, synth-heldout (see mmprolong.eval.suites). Backends: hf, vllm, openai
(mmprolong.eval.backends). Metrics: mmprolong.eval.metrics.
"""

from mmprolong.eval.config import EvalConfig, format_length, parse_length, parse_lengths


def evaluate(*args, **kwargs):
    """See :func:`mmprolong.eval.runner.evaluate`."""
    from mmprolong.eval.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def compare_runs(*args, **kwargs):
    """See :func:`mmprolong.eval.report.compare_runs`."""
    from mmprolong.eval.report import compare_runs as _compare

    return _compare(*args, **kwargs)


__all__ = ["EvalConfig", "compare_runs", "evaluate", "format_length", "parse_length", "parse_lengths"]
