"""Where held-out answers go wrong: another value the pages show, or one they do not show.

    python benchmarks/heldout_misses.py --run runs/quickstart [--eval NAME=DIR ...] [--task extract-single]
                                        [--out benchmarks/results/heldout-misses.json]

A held-out extract-single question asks for one value on the pages shown: a note's code named by its archive
(among the other notes, its look-alikes), a table's cell, a number in a sentence. A wrong answer either is
another value those pages show (a whole word of their text layer, as long as a gold answer: the model read a
value but picked the wrong one; a short answer, a two-digit number say, may also be there by chance) or one they
do not show (it misread the value, or found nothing). The two call for different remedies: the first for
questions that teach choosing among look-alikes, the second for reading at length. (`code_questions.py` splits
the questions for a note's code alone by how many notes stand beside them; this takes every extract-single
question.)

--run RUN takes a finished quickstart's two held-out evaluations (RUN/eval-base-synth-heldout as "starting point",
RUN/eval-trained-synth-heldout as "after LongPT"); --eval NAME=DIR adds any `mmprolong eval --suite synth-heldout`
folder (e.g. a `benchmarks/longpt.py` variant's synth-heldout folder); folders given the same NAME are pooled
(LongPT seeds). The pages' text comes from each item's own page store. Writes --out (one row per model and
length: items answered, right, another value shown, not shown, each in % with its 95% interval, and the share of
wrong answers that are another value shown; the shares and intervals also under "scores") and prints the table.
"""

from __future__ import annotations

import argparse
import functools
import re
from collections import defaultdict
from pathlib import Path

from code_questions import page_texts
from common import report

from mmprolong.eval.config import format_length
from mmprolong.eval.items import EvalItem, EvalResult, read_items, read_results
from mmprolong.stats import wilson

OUTCOMES = ("right", "another value shown", "not shown")


@functools.cache
def store_texts(root: str) -> dict[tuple[str, int], str]:
    """One store's text layer, read once: folders pooled by name (LongPT seeds) share their run's store."""
    return page_texts(Path(root))


def shown_texts(items: list[EvalItem]) -> dict[tuple[str, int], str]:
    """(doc_id, page index) -> text layer, over the page stores the items show their pages from."""
    texts = {}
    for root in sorted({image.root for item in items for image in item.images if image.kind == "store"}):
        texts.update(store_texts(root))
    return texts


def outcome(item: EvalItem, result: EvalResult, texts: dict[tuple[str, int], str]) -> str:
    """``right``, ``another value shown`` (a whole word of the pages shown, as long as a gold answer) or ``not
    shown``."""
    if result.score >= 1.0:
        return "right"
    answer = result.prediction.strip().strip(".,;:'\"")
    if not answer or len(answer) not in {len(a) for a in item.answers}:
        return "not shown"
    shown = " ".join(texts.get((i.doc_id, i.page_index), "") for i in item.images)
    return "another value shown" if re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", shown) else "not shown"


def classify(folder: Path, task: str) -> dict[int, list[str]]:
    """Each answered ``task`` item's outcome in one eval folder, by length."""
    for name in ("items.jsonl", "results.jsonl"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder}: no {name}; expected a finished `mmprolong eval --suite synth-heldout` folder")
    items = {i.item_id: i for i in read_items(folder / "items.jsonl") if i.task == task and not i.error}
    results = [r for r in read_results(folder / "results.jsonl") if r.item_id in items and r.status == "ok"]
    texts = shown_texts([items[r.item_id] for r in results])
    by_length: dict[int, list[str]] = defaultdict(list)
    for r in results:
        by_length[r.length].append(outcome(items[r.item_id], r, texts))
    return by_length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished quickstart folder: its starting point and LongPT")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=DIR",
                        help="a synth-heldout eval folder under NAME (repeatable; one NAME pools its folders)")
    parser.add_argument("--task", default="extract-single")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/heldout-misses.json"))
    args = parser.parse_args()

    folders: dict[str, list[Path]] = defaultdict(list)
    if args.run:
        folders["starting point"].append(args.run / "eval-base-synth-heldout")
        folders["after LongPT"].append(args.run / "eval-trained-synth-heldout")
    for spec in args.eval:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--eval {spec}: expected NAME=DIR")
        folders[name].append(Path(path))
    if not folders:
        parser.error("give --run or --eval")

    rows, scores = [], {}
    for name, paths in folders.items():
        pooled: dict[int, list[str]] = defaultdict(list)
        for path in paths:
            for length, outcomes in classify(path, args.task).items():
                pooled[length] += outcomes
        for length, outcomes in sorted(pooled.items()):
            n = len(outcomes)
            cells = {o: {"share": outcomes.count(o) / n, "ci95": [round(b, 4) for b in wilson(outcomes.count(o), n)]}
                     for o in OUTCOMES}
            scores.setdefault(name, {})[length] = {"n": n, **cells}
            wrong, shown = n - outcomes.count("right"), outcomes.count("another value shown")
            rows.append({"model": name, "runs": len(paths), "length": format_length(length), "n": n,
                         **{o: f"{100 * c['share']:.1f} [{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}]"
                            for o, c in cells.items()},
                         "shown, of the wrong": round(100 * shown / wrong, 1) if wrong else ""})
    report(rows, args.out, task=args.task, folders={k: [str(p) for p in v] for k, v in folders.items()},
           scores=scores)


if __name__ == "__main__":
    main()
