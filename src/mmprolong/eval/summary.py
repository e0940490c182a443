"""What became of every question of a run: per task and length, the questions in the source (``records``),
how many were not drawn (``not_sampled``), ``scored``, the ``errors`` counted by reason, and the ``score``. So
``records = not_sampled + scored + sum(errors)`` always, and a score always says how many questions it is of.

Written as OUT/summary.json and printed by ``mmprolong eval``. A reason is the text of an item's error before
its first ": " (suites and the runner write errors as "<reason>: <details>").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from mmprolong.eval.config import format_length
from mmprolong.eval.items import EvalResult
from mmprolong.eval.report import ALL, summarize

MAX_REASON_CHARS = 80


def reason_of(error: str) -> str:
    return error.split(": ", 1)[0][:MAX_REASON_CHARS]


def account(results: Sequence[EvalResult], records: Mapping[tuple[str, int], int] | None = None) -> list[dict]:
    """One row per (suite, task, length) in result order; ``records`` gives the source's question count per
    (task, length) where a suite knows it (docvqa), else the items asked are the records."""
    records = records or {}
    groups: dict[tuple, list[EvalResult]] = defaultdict(list)
    for r in results:
        groups[(r.suite, r.task, r.length)].append(r)
    scores = {(row["suite"], row["task"], row["length"]): row["score"] for row in summarize(results)
              if row["depth"] == ALL}
    rows = []
    for (suite, task, length), group in groups.items():
        errors: dict[str, int] = {}
        examples: dict[str, str] = {}
        for r in group:
            if r.status != "ok":
                reason = reason_of(r.error)
                errors[reason] = errors.get(reason, 0) + 1
                examples.setdefault(reason, r.error)
        asked = len(group)
        total = records.get((task, length), asked)
        rows.append({"suite": suite, "task": task, "length": length, "records": total,
                     "not_sampled": max(total - asked, 0), "scored": asked - sum(errors.values()),
                     "errors": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
                     "error_examples": examples, "score": scores.get((suite, task, length))})
    return rows


def nothing_scored(rows: Sequence[dict]) -> bool:
    return not any(row["scored"] for row in rows)


def first_reasons(rows: Sequence[dict], limit: int = 3) -> list[str]:
    """The first distinct error messages, one per reason, most frequent reasons first."""
    seen: dict[str, str] = {}
    for row in rows:
        for reason in row["errors"]:
            seen.setdefault(reason, row["error_examples"][reason])
    return list(seen.values())[:limit]


def markdown(rows: Sequence[dict]) -> str:
    """The accounting as a Markdown table: every score says how many questions of how many it is."""
    lines = ["| suite | task | length | score | scored | not sampled | errors |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        score = "—" if row["score"] is None else f"{100 * row['score']:.1f}"
        errors = ", ".join(f"{n} {reason}" for reason, n in row["errors"].items()) or "none"
        lines.append(f"| {row['suite']} | {row['task']} | {format_length(row['length'])} | {score} | "
                     f"{row['scored']} of {row['records']} questions | {row['not_sampled']} | {errors} |")
    return "\n".join(lines) + "\n"
