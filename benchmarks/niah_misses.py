"""Why a needle is missed: the same needle among fewer of its haystack's pages, and the one page that makes the miss.

    python benchmarks/niah_misses.py --eval 'NAME=DIR' --model 'NAME=PATH' [--eval ... --model ...]
        [--length 4k] [--pages 4,12,20,28] [--out benchmarks/results/niah-misses.json]

DIR is a finished niah evaluation (`mmprolong eval --suite niah`, a quickstart's RUN/eval-trained-niah, a
`niah_models.py` model folder) of the model at PATH; NAME pairs them. For each needle DIR's model missed at
--length, the model answers the same item again (its settings: DIR's config) with only the k images nearest the
needle in the haystack's order, for each k of --pages (the needle and the pages after it at depth 0, before it at
depth 1, both sides in between): whether it misses with the whole haystack only, or already among a few pages.
At the fewest pages where it still misses, each page is dropped in turn: a page whose absence makes the answer
right is a culprit. A figure is a run of 3 or more digits in a page's text layer (thousands separators dropped);
the wrong answer "opens" a figure when its first 3 digits are that figure's (and not the code's own): the model
began the code with another page's number. As a baseline, how often the codes of the needles it found open a
figure of their own haystacks by chance.

Writes --out (a row per model and in all: misses, right again at each k, misses with a culprit, misses opening a
culprit's figure, misses and found codes opening any figure of their haystack, in %; each miss under "misses" with
its answers by k, culprits and their figures) and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from common import report
from heldout_misses import shown_texts
from niah_models import parse_pair
from tqdm import tqdm

from mmprolong.eval.backends import make_backend
from mmprolong.eval.backends.base import GenerationSettings, template_parts
from mmprolong.eval.config import EvalConfig, format_length, parse_lengths
from mmprolong.eval.items import EvalItem, read_items, read_results
from mmprolong.eval.pages import ImageLoader
from mmprolong.eval.scoring import score_item

PREFIX = 3  # digits of a wrong answer compared with the start of a figure


def figures(text: str) -> list[str]:
    """The numbers of 3 or more digits a text layer prints, thousands separators dropped ("1,161" -> "1161")."""
    return re.findall(r"\d{3,}", re.sub(r"(?<=\d),(?=\d{3})", "", text))


def opens(answer: str, gold: str, numbers: list[str]) -> bool:
    """Whether ``answer`` begins as one of ``numbers`` does and not as the code ``gold`` does."""
    head = answer[:PREFIX]
    return len(head) == PREFIX and head != gold[:PREFIX] and any(n.startswith(head) for n in numbers)


def nearest(item: EvalItem, k: int) -> EvalItem:
    """``item`` with only the ``k`` images nearest its needle (ties: the earlier), in their order, and its text."""
    images = [i for i, part in enumerate(item.parts) if not isinstance(part, str)]
    needle = images[item.evidence[0]]
    keep = set(sorted(images, key=lambda i: (abs(i - needle), i))[:k])
    return dataclasses.replace(item, parts=tuple(p for i, p in enumerate(item.parts)
                                                 if isinstance(p, str) or i in keep))


def without(item: EvalItem, drop: int) -> EvalItem:
    return dataclasses.replace(item, parts=item.parts[:drop] + item.parts[drop + 1:])


class Asker:
    """One model's answers to edited items, with its evaluation's settings."""

    def __init__(self, path: str, config: EvalConfig):
        self.backend = make_backend(path, config)
        self.loader = ImageLoader()
        self.settings = GenerationSettings(max_new_tokens=config.max_new_tokens)

    def __call__(self, item: EvalItem) -> tuple[bool, str]:
        ids = self.backend.template.prompt_ids(template_parts(item))
        answer = self.backend.generate_one(dataclasses.replace(item, prompt_tokens=len(ids)), self.loader,
                                           self.settings)
        return score_item(item, answer.text)[0] >= 1.0, answer.text


def page_name(part) -> str:
    return f"{part.doc_id}/{part.page_index}" if part.kind == "store" else Path(part.path).name


def diagnose(ask: Asker, item: EvalItem, answer: str, pages: list[int], texts: dict) -> dict:
    """One miss: its answers with the k nearest pages, and the culprits among the fewest pages it still misses."""
    images = len(item.images)
    by_k = {k: ask(nearest(item, k)) for k in pages if k < images}
    fewest = min((k for k, (right, _) in by_k.items() if not right), default=images)
    shown = nearest(item, fewest)
    culprits = []
    for i, part in enumerate(shown.parts):
        if isinstance(part, str) or part.kind != "store":
            continue
        right, _ = ask(without(shown, i))
        if right:
            numbers = figures(texts.get((part.doc_id, part.page_index), ""))
            culprits.append({"page": page_name(part), "figures": numbers})
    wrong = by_k[fewest][1] if fewest in by_k else answer
    return {"item_id": item.item_id, "depth": item.depth, "code": item.answers[0], "answer": answer,
            "by_pages": {k: {"right": right, "answer": text} for k, (right, text) in by_k.items()},
            "fewest_missed": fewest, "answer_there": wrong, "culprits": culprits,
            "opens_culprit": any(opens(wrong, item.answers[0], c["figures"]) for c in culprits)}


def pct(part: int, whole: int) -> float | str:
    return round(100 * part / whole, 1) if whole else ""


def haystack_figures(item: EvalItem, texts: dict) -> list[str]:
    return [n for image in item.images if image.kind == "store"
            for n in figures(texts.get((image.doc_id, image.page_index), ""))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=DIR", help="a finished niah eval folder")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="the checkpoint that answered NAME's folder")
    parser.add_argument("--length", default="4k", help="the length whose misses are diagnosed")
    parser.add_argument("--pages", default="4,12,20,28", help="images kept around the needle, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/niah-misses.json"))
    args = parser.parse_args()

    evals = dict(parse_pair(e, "--eval", "NAME=DIR") for e in args.eval)
    models = dict(parse_pair(m, "--model", "NAME=PATH") for m in args.model)
    if not evals or set(evals) != set(models):
        parser.error(f"give one --model for each --eval, by name (evals: {sorted(evals)}, models: {sorted(models)})")
    (length,) = parse_lengths(args.length)
    pages = sorted({int(k) for k in args.pages.split(",")})
    if not pages or pages[0] < 1:
        parser.error("--pages: counts of images >= 1")

    rows, misses = [], {}
    counts: dict[str, dict] = {}
    for name, folder in evals.items():
        folder = Path(folder)
        for needed in ("items.jsonl", "results.jsonl", "config.json"):
            if not (folder / needed).is_file():
                raise SystemExit(f"{folder}: no {needed}; expected a finished niah evaluation folder")
        config = EvalConfig.from_dict(json.loads((folder / "config.json").read_text())["config"])
        if config.backend != "hf":
            raise SystemExit(f"{folder}: answered by the {config.backend} backend; this asks a local model (hf)")
        items = {i.item_id: i for i in read_items(folder / "items.jsonl")}
        results = [r for r in read_results(folder / "results.jsonl")
                   if r.length == length and r.status == "ok" and items[r.item_id].task == "single"]
        if not results:
            raise SystemExit(f"{folder}: no single-needle answers at {format_length(length)}")
        texts = shown_texts([items[r.item_id] for r in results])
        ask = Asker(models[name], config)
        found = [r for r in results if r.score >= 1.0]
        missed = [r for r in results if r.score < 1.0]
        misses[name] = [diagnose(ask, items[r.item_id], r.prediction.strip(), pages, texts)
                        for r in tqdm(missed, desc=f"{name}: misses at {format_length(length)}", unit="miss")]
        ask.backend.close()
        c = counts[name] = {
            "n": len(results), "misses": len(missed),
            "right again": {k: sum(m["by_pages"].get(k, {}).get("right", False) for m in misses[name])
                            for k in pages},
            "with a culprit": sum(bool(m["culprits"]) for m in misses[name]),
            "opening a culprit's figure": sum(m["opens_culprit"] for m in misses[name]),
            "misses opening a haystack figure": sum(
                opens(r.prediction.strip(), items[r.item_id].answers[0], haystack_figures(items[r.item_id], texts))
                for r in missed),
            # chance: a found code's first digits against its own haystack's figures
            "found codes opening a haystack figure": sum(
                any(n.startswith(items[r.item_id].answers[0][:PREFIX])
                    for n in haystack_figures(items[r.item_id], texts)) for r in found)}
    counts_all = {key: (sum(c[key] for c in counts.values()) if key != "right again" else
                        {k: sum(c[key][k] for c in counts.values()) for k in pages})
                  for key in next(iter(counts.values()))}
    for name, c in {**counts, "all": counts_all}.items():
        m, f = c["misses"], c["n"] - c["misses"]
        rows.append({"model": name, "length": format_length(length), "needles": c["n"], "misses": m,
                     **{f"right with {k} images": pct(c["right again"][k], m) for k in pages},
                     "with a culprit page": pct(c["with a culprit"], m),
                     "opening a culprit's figure": pct(c["opening a culprit's figure"], m),
                     "misses opening a haystack figure": pct(c["misses opening a haystack figure"], m),
                     "found codes opening one (chance)": pct(c["found codes opening a haystack figure"], f)})
    report(rows, args.out, length=length, pages=pages, evals=evals, models=models, counts=counts, misses=misses)


if __name__ == "__main__":
    main()
