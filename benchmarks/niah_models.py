"""Needle accuracy of several models on many needles, and pooled over runs of one setting: tells differences
between models (starting points, LongPT seeds and settings) from the noise of a single run's few needles a length.

    mmprolong quickstart --out runs/quickstart          # first: the store and the needles' settings
    python benchmarks/niah_models.py --run runs/quickstart --model 'NAME=PATH' [--model ...]
        [--group 'LABEL=NAME,NAME,...' ...] [--compare 'LABEL,LABEL' ...] [--items 10] [--seed 1]
        [--lengths 1k,2k,4k,8k] [--attn-logn-window W] [--haystack blank] [--lookalikes 0,1,3]
        [--settings 'NAME={"rope_scaling": "yarn-dynamic", "rope_window": 4096}' ...]
        [--work runs/niah-models] [--out benchmarks/results/niah-models.json]

Each model answers the quickstart's niah (its store, haystacks and question: RUN/eval-trained-niah/config.json)
with --items needles per (length, depth) cell drawn with --seed; the quickstart draws 5 with seed 0, so another
seed asks needles none of its numbers came from. A group (LongPT runs of one setting on several seeds, say) is
reported two ways per length: pooled over all its needles (Wilson), which says how well these runs did, and over
its runs (Student-t of the runs' accuracies), which says how well a run of the setting does, seed to seed.
--compare A,B adds, per length, A's accuracy minus B's with 95% intervals both ways (Newcombe over needles,
Welch over runs). Resumable: answers come from each model's eval cache. --haystack blank hides the same needles
among blank cards instead of the store's pages (cards of the corpus' size with a page label and nothing else,
ingested at the quickstart's budget into WORK/blank-store): whether a model's misses at length come from what the
other pages say or from the length itself. --lookalikes L hides L notes about other archives, with other codes,
beside each needle (the niah suite's lookalikes-L variant, RULER's multi-key needle; the same needles and questions
as without): whether a model picks the note the question names, as synth's extract-single questions about a
register need, and when it does not, whether it answers with a look-alike's code ("look-alike" in the results).
With a list (0,1,3) every model, group and comparison is asked at each L and named "NAME, L look-alikes", one
plot for all. --settings gives one model inference settings of its own (EvalConfig fields: RoPE scaling, page-local
attention); the same folder under two names, each with its settings, compares settings on the same needles.

Writes --out (a row per model, then per group: exact answers and code characters in place per length, in %; the
intervals, counts and accuracy by depth under "scores"; the comparisons under "compare") and beside it a plot of
each group's pooled accuracy against length, with its interval over runs and each run as a dot.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.eval import EvalConfig
from mmprolong.eval.backends.hf import VISION_CACHE_BYTES
from mmprolong.eval.config import format_length, parse_lengths
from mmprolong.eval.items import EvalResult, read_results
from mmprolong.eval.report import plot_accuracy_vs_length, summarize
from mmprolong.models.features import FeatureCache
from mmprolong.stats import difference95, interval95


def parse_pair(text: str, flag: str, example: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise SystemExit(f"{flag} {text!r}: write {flag} '{example}'")
    return name.strip(), value.strip()


def ask(run: Path, folder: Path, name: str, model: str, items: int, seed: int, lengths: list[int],
        logn: int | None, store: Path, features: FeatureCache | None = None, lookalikes: int = 0,
        settings: dict | None = None) -> list:
    """``model``'s answers to RUN's niah with ``items`` needles a cell drawn with ``seed`` among ``store``'s pages
    (and log-length scaling past ``logn`` tokens at inference, when set; ``lookalikes`` other notes beside each
    needle, when set; ``settings``, EvalConfig fields of its own), cached in ``folder``; ``features``: the vision
    features shared by the models (those with one tower encode each page once)."""
    saved = json.loads((run / "eval-trained-niah" / "config.json").read_text())["config"]
    config = {**saved, "store_dir": str(store), "label": name, "items_per_cell": items, "seed": seed,
              "lengths": lengths, "attn_logn_window": logn, "needles": [] if lookalikes else [1],
              "lookalikes": [lookalikes] if lookalikes else [], **(settings or {})}
    api.evaluate(model, folder, EvalConfig.from_dict(config), vision_features=features)
    return read_results(folder)


def blank_store(folder: Path, docs: int = 8, pages: int = 40) -> Path:
    """A page store of blank cards (the corpus' card size, a small page label as the only text) at the
    quickstart's budget: a haystack with nothing in it to read."""
    from reportlab.pdfgen import canvas

    from mmprolong.corpus.cards import CARD_SIZE
    from mmprolong.ingest import IngestConfig
    from mmprolong.quickstart import INGEST, WORKERS

    pdfs = folder / "blank-pdfs"
    pdfs.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        pdf = canvas.Canvas(str(pdfs / f"blank-{d:02d}.pdf"), pagesize=CARD_SIZE)
        for p in range(pages):
            pdf.setFont("Courier-Bold", 14)
            pdf.drawString(14, 14, f"{d}-{p}")  # ingest keeps a page's text layer; an empty one is a scan
            pdf.showPage()
        pdf.save()
    api.ingest(pdfs, folder / "blank-store", IngestConfig(**INGEST, workers=WORKERS), show_progress=False)
    return folder / "blank-store"


def by_length(results: list[EvalResult]) -> dict[int, list[EvalResult]]:
    """Answered needles per length (errors are counted in the eval run's own table, not scored here)."""
    out: dict[int, list[EvalResult]] = {}
    for r in results:
        if r.status == "ok":
            out.setdefault(r.length, []).append(r)
    return out


def in_place(results: list[EvalResult]) -> list[float]:
    return [json.loads(r.metadata)["in_place"] for r in results]


def lookalike(results: list[EvalResult]) -> dict:
    """On lookalikes items, the share of answers that hold a look-alike's code (a note picked by mistake) with its
    interval; {} on items without look-alikes."""
    picked = [m["lookalike"] for m in (json.loads(r.metadata) for r in results) if "lookalike" in m]
    return {"lookalike": mean(picked), "lookalike_ci95": rounded(interval95(picked))} if picked else {}


def model_scores(results: list[EvalResult]) -> dict[str, dict]:
    """Per length: accuracy, n, ci95, code characters in place with its interval, accuracy by depth, and on
    lookalikes items the share of answers with a look-alike's code."""
    rows = [r for r in summarize(results) if r["task"] in {x.task for x in results}]
    out = {}
    for length, answered in sorted(by_length(results).items()):
        cell = next(r for r in rows if r["length"] == length and r["depth"] == "all")
        out[str(length)] = {"accuracy": cell["score"], "n": cell["ok"], "ci95": cell["ci95"],
                            "in_place": cell["in_place"], "in_place_ci95": cell["in_place_ci95"],
                            **lookalike(answered),
                            "by_depth": {str(r["depth"]): r["score"] for r in rows
                                         if r["length"] == length and r["depth"] != "all"}}
    return out


def rounded(bounds: tuple[float, float]) -> list[float]:
    return [round(bounds[0], 4), round(bounds[1], 4)]


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6)


def run_scores(group: dict[str, list[EvalResult]], length: int) -> list[list[float]]:
    """Each run's needle scores at ``length`` (runs with no answer there left out)."""
    return [s for s in ([r.score for r in by_length(results).get(length, [])] for results in group.values()) if s]


def lengths_of(*groups: dict[str, list[EvalResult]]) -> list[int]:
    return sorted({n for group in groups for results in group.values() for n in by_length(results)})


def group_scores(members: dict[str, list[EvalResult]]) -> dict[str, dict]:
    """Per length, over the members' needles pooled and over the members as runs."""
    out = {}
    for length in lengths_of(members):
        runs = run_scores(members, length)
        pooled = [score for run in runs for score in run]
        answered = [r for results in members.values() for r in by_length(results).get(length, [])]
        places = in_place(answered)
        per_run = [mean(run) for run in runs]
        out[str(length)] = {"accuracy": mean(pooled), "n": len(pooled), "ci95": rounded(interval95(pooled)),
                            "in_place": mean(places), "in_place_ci95": rounded(interval95(places)),
                            **lookalike(answered),
                            "runs": len(per_run), "per_run": per_run,
                            # a run's spread needs two runs at least
                            "ci95_over_runs": rounded(interval95(per_run)) if len(per_run) > 1 else None}
    return out


def comparison(a: dict[str, list[EvalResult]], b: dict[str, list[EvalResult]]) -> dict[str, dict]:
    """Per length: accuracy of group a minus group b, with intervals over needles and, when each group has two runs
    or more, over runs."""
    out = {}
    for length in lengths_of(a, b):
        runs = [run_scores(g, length) for g in (a, b)]
        if not all(runs):
            continue
        needles = [[score for run in group for score in run] for group in runs]
        per_run = [[mean(run) for run in group] for group in runs]
        spread = min(map(len, per_run)) > 1
        low, high = difference95(*per_run) if spread else (0.0, 0.0)
        out[str(length)] = {"difference": round(mean(needles[0]) - mean(needles[1]), 6),
                            "ci95": rounded(difference95(*needles)),
                            "difference_over_runs": round(mean(per_run[0]) - mean(per_run[1]), 6),
                            "ci95_over_runs": rounded((max(-1.0, low), min(1.0, high))) if spread else None}
    return out


def signed(value: float, bounds: list[float]) -> str:
    return f"{100 * value:+.1f} [{100 * bounds[0]:+.1f}, {100 * bounds[1]:+.1f}]"


def columns(cells: dict[str, dict]) -> dict:
    out = {}
    for length, cell in sorted(cells.items(), key=lambda kv: int(kv[0])):
        name = format_length(int(length))
        low, high = cell["ci95"]
        out[f"niah {name}"] = f"{100 * cell['accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={cell['n']})"
        out[f"in place {name}"] = round(100 * cell["in_place"], 1)
        if "lookalike" in cell:
            out[f"look-alike {name}"] = round(100 * cell["lookalike"], 1)
    return out


def tagged(name: str, level: int, levels: list[int]) -> str:
    """A model's or group's name at ``level`` look-alikes: as given when only one level is asked."""
    return name if len(levels) == 1 else f"{name}, {level} look-alike{'s' * (level != 1)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart folder")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="a model folder to ask, and its name in the results (repeatable)")
    parser.add_argument("--group", action="append", default=[], metavar="LABEL=NAME,NAME",
                        help="models (by --model name) to report together, e.g. one setting's seeds (repeatable)")
    parser.add_argument("--compare", action="append", default=[], metavar="A,B",
                        help="two groups (or models) to compare, A minus B (repeatable)")
    parser.add_argument("--items", type=int, default=10, help="needles per (length, depth) cell (quickstart: 5)")
    parser.add_argument("--seed", type=int, default=1, help="the needles' seed (quickstart: 0)")
    parser.add_argument("--lengths", default="1k,2k,4k,8k")
    parser.add_argument("--attn-logn-window", type=int, default=None, metavar="W",
                        help="every model answers with log-length attention scaling past W tokens at inference (as the "
                             "quickstart's -logn evaluations; default: none, as the paper evaluates)")
    parser.add_argument("--haystack", choices=("store", "blank"), default="store",
                        help="the run's own pages (default) or blank cards around the same needles")
    parser.add_argument("--lookalikes", default="0", metavar="L,L",
                        help="L notes about other archives beside each needle, one or more counts (default 0: the "
                             "plain needle)")
    parser.add_argument("--settings", action="append", default=[], metavar="NAME=JSON",
                        help="inference settings of the model NAME, EvalConfig fields as a JSON object (repeatable)")
    parser.add_argument("--work", type=Path, default=Path("runs/niah-models"), help="the models' answers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/niah-models.json"))
    args = parser.parse_args()
    if not (args.run / "eval-trained-niah" / "config.json").is_file():
        sys.exit(f"--run {args.run}: no eval-trained-niah/config.json; first `mmprolong quickstart --out {args.run}`")
    if args.items < 1:
        sys.exit(f"--items {args.items}: ask at least one needle a cell")
    try:
        levels = [int(n) for n in args.lookalikes.split(",")]
    except ValueError:
        levels = [-1]
    if any(n < 0 for n in levels) or len(set(levels)) < len(levels):
        sys.exit(f"--lookalikes {args.lookalikes}: distinct counts of other notes, 0 or more, e.g. 0,1,3")
    models = dict(parse_pair(m, "--model", "NAME=PATH") for m in args.model)
    if any("," in name for name in models):  # --group and --compare list names with commas
        sys.exit(f"--model: a name may not hold a comma ({', '.join(repr(n) for n in models if ',' in n)})")
    groups = {label: [n.strip() for n in names.split(",")]
              for label, names in (parse_pair(g, "--group", "LABEL=NAME,NAME") for g in args.group)}
    unknown = sorted({n for names in groups.values() for n in names} - set(models))
    if unknown:
        sys.exit(f"--group names models not given with --model: {', '.join(unknown)}")
    for name, path in models.items():
        if not (Path(path) / "config.json").is_file():
            sys.exit(f"--model {name}={path}: not a model folder (no config.json)")
    settings = {}
    for text in args.settings:
        name, value = parse_pair(text, "--settings", 'NAME={"rope_window": 4096}')
        try:
            settings[name] = json.loads(value)
        except json.JSONDecodeError as err:
            sys.exit(f"--settings {text!r}: not JSON after '=' ({err})")
        if name not in models or not isinstance(settings[name], dict):
            sys.exit(f"--settings {text!r}: name a --model and give a JSON object of EvalConfig fields")
    pairs = [tuple(p.strip() for p in c.split(",")) for c in args.compare]
    for pair in pairs:
        if len(pair) != 2 or not set(pair) <= set(groups) | set(models):
            sys.exit(f"--compare {','.join(pair)}: name two groups or models, A,B")

    lengths = parse_lengths(args.lengths)
    store = blank_store(args.work) if args.haystack == "blank" else args.run / "store"
    answers, features = {}, FeatureCache(VISION_CACHE_BYTES)
    for level in levels:
        for i, (name, path) in enumerate(models.items()):
            print(f"[{i + 1}/{len(models)}] {tagged(name, level, levels)}: {path}", flush=True)
            folder = args.work / ((re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"model-{i}")
                                  + (f"-lookalikes-{level}" if level else ""))
            answers[tagged(name, level, levels)] = ask(args.run, folder, name, path, args.items, args.seed, lengths,
                                                       args.attn_logn_window, store, features, level,
                                                       settings.get(name))
    groups = {tagged(label, level, levels): [tagged(n, level, levels) for n in names]
              for level in levels for label, names in groups.items()}
    pairs = [(tagged(a, level, levels), tagged(b, level, levels)) for level in levels for a, b in pairs]
    members = {label: {n: answers[n] for n in names} for label, names in groups.items()}
    members.update({name: {name: results} for name, results in answers.items() if name not in members})

    scores = {name: model_scores(results) for name, results in answers.items()}
    pooled = {label: group_scores(members[label]) for label in groups}
    compared = {f"{a} - {b}": comparison(members[a], members[b]) for a, b in pairs}
    rows = ([{"model": name, "runs": 1, **columns(cells)} for name, cells in scores.items()]
            + [{"model": label, "runs": len(groups[label]), **columns(cells)} for label, cells in pooled.items()])
    figure = args.out.with_suffix(".png")
    train = args.run / "train-long" / "config.yaml"
    window = None
    if train.is_file():
        import yaml

        window = yaml.safe_load(train.read_text())["data"]["max_seq_len"]
    if pooled:
        def per_length(key: str) -> dict:  # series named with their number of runs
            return {f"{label} ({len(groups[label])} run{'s' * (len(groups[label]) > 1)})":
                    {int(n): c[key] for n, c in cells.items()} for label, cells in pooled.items()}

        plot_accuracy_vs_length(per_length("accuracy"), figure, training_length=window,
                                title="niah exact, pooled over runs (bars: 95% over runs; dots: each run)",
                                intervals=per_length("ci95_over_runs"), runs=per_length("per_run"))
    report(rows, args.out, run=str(args.run), items_per_cell=args.items, seed=args.seed, lengths=lengths,
           attn_logn_window=args.attn_logn_window, haystack=args.haystack, lookalikes=levels,
           models=models, settings=settings, groups=groups, plot=str(figure) if pooled else "", scores=scores,
           pooled=pooled,
           compare=compared)
    for key, cells in compared.items():
        print(key + ": " + "; ".join(f"{format_length(int(n))} {signed(c['difference'], c['ci95'])}" + (
            f" (over runs {signed(c['difference_over_runs'], c['ci95_over_runs'])})" if c["ci95_over_runs"] else "")
            for n, c in cells.items()))


if __name__ == "__main__":
    main()
