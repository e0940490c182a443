"""Results -> tables (JSON, Markdown) and plots (matplotlib Agg, no timestamps or version in the PNGs).

A cell's score is the mean over its items that were answered (status ok); items with an error are counted in
``errors`` and left out of the mean, so a broken input does not read as a wrong answer (a model that cannot take
the length at all shows errors and no score). A suite's score at a length is the mean over its tasks of their
means (for docvqa: the mean over the three datasets, as the paper reports). Every score carries a 95% interval
(``ci95``, ``mmprolong.stats``) and its item count, ``ok``. Needle rows also carry partial credit, ``in_place``
(the share of the code's characters the answer has at their place) with ``in_place_ci95``: where sub-EM is 0 at
every length it still shows how near a model came.

Needle rows also carry ``in_place_by_position``: per character of the code, the share of answers with it in place
(which part of the code a model gets right), with ``in_place_by_position_ci95``.

Plots: the needle heatmap (depth x length, one panel per needle variant), accuracy against length (one line
per model) and, comparing runs, the characters in place by place in the code (length x place, a panel per run).
``compare_runs(run_dirs, out_dir)`` puts several runs (e.g. base vs trained) side by side.
"""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from mmprolong.eval.config import format_length
from mmprolong.eval.items import NO_DEPTH, EvalResult, read_results, write_text_atomic
from mmprolong.stats import interval95, mean_of_means95

ALL = "all"


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def summarize(results: Sequence[EvalResult]) -> list[dict]:
    """Rows per (suite, task, length, depth), then per (suite, task, length) with depth "all", then per
    (suite, length) with task "all" (mean of the task means)."""
    cells: dict[tuple, list[EvalResult]] = defaultdict(list)
    for r in results:
        depth = ALL if r.depth == NO_DEPTH else r.depth
        cells[(r.suite, r.task, r.length, depth)].append(r)
        if depth != ALL:
            cells[(r.suite, r.task, r.length, ALL)].append(r)
    rows = [_row(key, group) for key, group in cells.items()]
    tasks: dict[tuple, list[list[float]]] = defaultdict(list)  # (suite, length) -> per task, the answered scores
    partials: dict[tuple, list[list]] = defaultdict(list)  # the same for the partial credit (None: not scored so)
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (suite, _, length, depth), group in cells.items():
        if depth == ALL:
            tasks[(suite, length)].append([r.score for r in group if r.status == "ok"])
            partials[(suite, length)].append(_in_place([r for r in group if r.status == "ok"]))
            for i, value in enumerate((len(group), sum(r.status == "ok" for r in group),
                                       sum(r.status != "ok" for r in group))):
                counts[(suite, length)][i] += value
    for key, (n, ok, errors) in counts.items():
        row = {"suite": key[0], "task": ALL, "length": key[1], "depth": ALL, "n": n, "ok": ok, "errors": errors}
        row["score"], row["ci95"] = _mean_of_means([g for g in tasks[key] if g])
        partial = [g for g in partials[key] if g]
        if partial and not any(None in g for g in partial):  # partial credit only where every answered task has it
            row["in_place"], row["in_place_ci95"] = _mean_of_means(partial)
        rows.append(row)
    return sorted(rows, key=_sort_key)


def _mean_of_means(groups: list[list[float]]) -> tuple[float | None, list[float] | None]:
    return _mean([sum(g) / len(g) for g in groups]), _interval(mean_of_means95(groups)) if groups else None


def _in_place(answered: list[EvalResult], key: str = "in_place") -> list:
    """The answers' partial credit for needle codes (``scoring.score_item``: ``key`` "in_place" or
    "in_place_by_position"), None for answers without one."""
    return [json.loads(r.metadata).get(key) for r in answered]


def _interval(bounds: tuple[float, float]) -> list[float]:
    return [round(bounds[0], 4), round(bounds[1], 4)]


def _row(key: tuple, group: list[EvalResult]) -> dict:
    ok = [r.score for r in group if r.status == "ok"]
    row = {"suite": key[0], "task": key[1], "length": key[2], "depth": key[3], "n": len(group), "ok": len(ok),
           "errors": len(group) - len(ok), "score": _mean(ok), "ci95": _interval(interval95(ok)) if ok else None}
    answered = [r for r in group if r.status == "ok"]
    partial = _in_place(answered)
    if partial and None not in partial:  # needle codes (scoring.score_item): partial credit beside the score
        row["in_place"], row["in_place_ci95"] = _mean(partial), _interval(interval95(partial))
    places = _in_place(answered, "in_place_by_position")
    if places and None not in places and len({len(p) for p in places}) == 1:  # codes of one length: per place
        row["in_place_by_position"] = [_mean(column) for column in zip(*places)]
        row["in_place_by_position_ci95"] = [_interval(interval95(column)) for column in zip(*places)]
    return row


def _sort_key(row: dict):
    depth = -1.0 if row["depth"] == ALL else row["depth"]
    return (row["suite"], row["task"] == ALL, row["task"], row["length"], row["depth"] == ALL, depth)


def _fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{100 * score:.1f}"


def fmt_interval(row: dict) -> str:
    """"62.5 [43.7, 78.3] (n=24)": the score with its 95% interval and answered items, in %."""
    if row.get("score") is None:
        return "—"
    low, high = row["ci95"]
    return f"{100 * row['score']:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={row['ok']})"


def _fmt_depth(depth) -> str:
    return ALL if depth == ALL else f"{100 * depth:.0f}%"


def one_task_suites(rows: Sequence[dict]) -> set[str]:
    """The suites whose rows hold one task: their task "all" rows repeat that task's, so tables leave them out."""
    tasks: dict[str, set] = defaultdict(set)
    for row in rows:
        if row["task"] != ALL:
            tasks[row["suite"]].add(row["task"])
    return {suite for suite, names in tasks.items() if len(names) == 1}


def _without_repeats(rows: Sequence[dict]) -> list[dict]:
    single = one_task_suites(rows)
    return [row for row in rows if row["task"] != ALL or row["suite"] not in single]


def markdown_table(rows: Sequence[dict], *, title: str = "") -> str:
    """The long table (suite, task, length, depth, n, errors, score in %) and, for niah, depth x length grids; a
    suite of one task without its repeated "all" rows."""
    rows = _without_repeats(rows)
    lines = [f"# {title}", ""] if title else []
    lines += ["| suite | task | length | depth | items | errors | score % [95% interval] (answered) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['suite']} | {row['task']} | {format_length(row['length'])} | {_fmt_depth(row['depth'])} "
                     f"| {row['n']} | {row['errors']} | {fmt_interval(row)} |")
    for task, grid in _niah_grids(rows).items():
        lengths = sorted({length for (_, length) in grid})
        depths = sorted({depth for (depth, _) in grid})
        lines += ["", f"## niah {task}: score (%) by depth x length", "",
                  "| depth | " + " | ".join(format_length(n) for n in lengths) + " |",
                  "| --- |" + " --- |" * len(lengths)]
        for depth in depths:
            lines.append(f"| {_fmt_depth(depth)} | " + " | ".join(_fmt_score(grid.get((depth, n))) for n in lengths)
                         + " |")
    partial = [row for row in rows if "in_place" in row and row["depth"] == ALL]
    for task in sorted({row["task"] for row in partial}):
        lines += ["", f"## niah {task}: characters of the code in place (%)", "", IN_PLACE_NOTE, "",
                  "| length | in place % [95% interval] (answered) | by place in the code (%) |", "| --- | --- | --- |"]
        lines += [f"| {format_length(row['length'])} | {fmt_in_place(row)} | "
                  f"{fmt_places(row.get('in_place_by_position'))} |" for row in partial if row["task"] == task]
    return "\n".join(lines) + "\n"


IN_PLACE_NOTE = ("Partial credit: the share of the code's characters that the answer has at their place (a random "
                 "digit scores 10%); the score above counts a needle only when the whole code is in the answer.")


def fmt_in_place(row: dict) -> str:
    """A row's partial credit for needle codes, formatted as ``fmt_interval`` formats its score."""
    return fmt_interval({"score": row.get("in_place"), "ci95": row.get("in_place_ci95"), "ok": row["ok"]})


def fmt_places(shares: list[float] | None) -> str:
    """Per place in a code, the share of answers with that character in place: "63 93 93 100 100 67" (%)."""
    return "—" if not shares else " ".join(f"{100 * share:.0f}" for share in shares)


def fmt_compared_in_place(entry: dict, label: str) -> str:
    """``fmt_in_place`` of one run's column in a ``compare_runs`` row."""
    return fmt_in_place({"in_place": entry["in_place"][label], "in_place_ci95": entry["in_place_ci95"][label],
                         "ok": entry["ok"][label]})


def _niah_grids(rows: Sequence[dict]) -> dict[str, dict[tuple, float | None]]:
    grids: dict[str, dict] = defaultdict(dict)
    for row in rows:
        if row["suite"] == "niah" and row["task"] != ALL and row["depth"] != ALL:
            grids[row["task"]][(row["depth"], row["length"])] = row["score"]
    return dict(sorted(grids.items()))


def by_length(rows: Sequence[dict], suite: str, task: str = ALL, field: str = "score") -> dict[int, float | None]:
    return {r["length"]: r.get(field) for r in rows
            if r["suite"] == suite and r["task"] == task and r["depth"] == ALL}


# --- plots -------------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes
    tmp.replace(path)
    return path


def plot_needle_heatmaps(panels: dict[str, dict[tuple, float | None]], path: str | Path, *, title: str = "",
                         ncols: int | None = None) -> Path:
    """One heatmap per panel (``ncols`` per row): depth (rows, 0% at the top) x length (columns), score 0-100."""
    return _heatmaps(panels, path, title=title, ncols=ncols, rows=("needle depth", lambda d: f"{100 * d:.0f}%"),
                     columns=("input length (tokens)", format_length), legend="score (%)")


def plot_code_places(panels: dict[str, dict[int, list[float] | None]], path: str | Path, *, title: str = "",
                     ncols: int | None = None) -> Path:
    """One heatmap per panel (a model): length (rows) x place in the needle's code (columns), the share of answers
    with that character in place, 0-100: a model that finds the note but misreads its first digits shows it."""
    grids = {name: {(length, place): share for length, shares in by_len.items() if shares
                    for place, share in enumerate(shares, start=1)} for name, by_len in panels.items()}
    return _heatmaps(grids, path, title=title, ncols=ncols, rows=("input length (tokens)", format_length),
                     columns=("character of the code", str), legend="answers with it in place (%)")


def _heatmaps(panels: dict[str, dict[tuple, float | None]], path: str | Path, *, title: str, ncols: int | None,
              rows: tuple, columns: tuple, legend: str) -> Path:
    """Grids keyed (row value, column value) -> share 0..1, drawn 0-100 with the value in each cell; ``rows`` and
    ``columns``: (axis label, tick label of a value)."""
    plt = _pyplot()
    import numpy as np

    names = list(panels)
    ncols = max(1, min(ncols or len(names), len(names)))
    nrows = max(1, -(-len(names) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 + 3.2 * ncols, 0.4 + 3.2 * nrows), squeeze=False,
                             layout="constrained")
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(names):]:
        ax.axis("off")
    image = None
    for ax, name in zip(flat, names):
        grid = panels[name]
        ys = sorted({y for (y, _) in grid})
        xs = sorted({x for (_, x) in grid})
        data = np.full((len(ys), len(xs)), np.nan)
        for (y, x), share in grid.items():
            if share is not None:
                data[ys.index(y), xs.index(x)] = 100 * share
        image = ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
        ax.set_xticks(range(len(xs)), [columns[1](x) for x in xs])
        ax.set_yticks(range(len(ys)), [rows[1](y) for y in ys])
        ax.set_xlabel(columns[0])
        ax.set_ylabel(rows[0])
        ax.set_title(textwrap.fill(name, 36), fontsize=9)  # long run names would run into the next panel's
        for i in range(len(ys)):
            for j in range(len(xs)):
                text = "—" if np.isnan(data[i, j]) else f"{data[i, j]:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=flat, shrink=0.8, label=legend)
    if title:  # wrapped to the figure's width (about 10 characters an inch at this size): a run's settings in it
        fig.suptitle(textwrap.fill(title, int(10 * fig.get_figwidth())), fontsize=10)
    out = _save(fig, Path(path))
    plt.close(fig)
    return out


def plot_accuracy_vs_length(series: dict[str, dict[int, float | None]], path: str | Path, *, title: str = "",
                            training_length: int | None = None,
                            in_place: dict[str, dict[int, float | None]] | None = None,
                            intervals: dict[str, dict[int, list[float] | None]] | None = None,
                            runs: dict[str, dict[int, list[float]]] | None = None) -> Path:
    """A line per series (model, or suite/task): score (%) against length on a log2 axis; where ``in_place`` has
    the series' name, its partial credit for needle codes as a dotted line of the same colour; where ``intervals``
    has it, error bars (low, high); where ``runs`` has it, each run's score as a dot (a series pooled over runs)."""
    plt = _pyplot()
    entries = len(series) + sum(any(v is not None for v in p.values()) for p in (in_place or {}).values())
    beside = entries > 6  # a long legend goes beside the axes, not over the lines
    fig, ax = plt.subplots(figsize=(9.5 if beside else 6.0, 3.8))
    lengths = sorted({n for s in series.values() for n in s})
    for i, (name, points) in enumerate(series.items()):
        present = [n for n in lengths if points.get(n) is not None]
        ys = [100 * points[n] for n in present]
        bars = (intervals or {}).get(name)
        # with error bars, series stand side by side so that their bars do not hide each other
        shift = 2 ** (0.05 * (i - (len(series) - 1) / 2)) if bars is not None else 1.0
        xs = [n * shift for n in present]
        if bars is not None:
            bounds = [bars.get(n) or [y / 100] * 2 for n, y in zip(present, ys)]
            # bounds are stored rounded to 4 digits, scores to 6: a zero-width interval can then miss its point by
            # a hair (0.9667 over 0.966667), which matplotlib refuses as a negative bar
            errors = [[max(0.0, y - 100 * b[0]) for b, y in zip(bounds, ys)],
                      [max(0.0, 100 * b[1] - y) for b, y in zip(bounds, ys)]]
            line = ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=name).lines[0]
        else:
            [line] = ax.plot(xs, ys, marker="o", label=name)
        for x, n in zip(xs, present):
            scores = (runs or {}).get(name, {}).get(n, [])
            ax.scatter([x] * len(scores), [100 * s for s in scores], s=12, alpha=0.5, color=line.get_color())
        partial = (in_place or {}).get(name, {})
        scored = [n for n in lengths if partial.get(n) is not None]
        if scored:
            ax.plot([n * shift for n in scored], [100 * partial[n] for n in scored], marker="x", linestyle=":",
                    color=line.get_color(), label=f"{name}: code characters in place")
    if training_length:
        ax.axvline(training_length, color="grey", linestyle="--", linewidth=1, label="training length")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [format_length(n) for n in lengths])
    ax.minorticks_off()
    ax.set_ylim(-2, 102)
    ax.set_xlabel("input length (tokens)")
    ax.set_ylabel("score (%)")
    ax.grid(alpha=0.3)
    if beside:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = _save(fig, Path(path))
    plt.close(fig)
    return out


# --- one run, several runs ---------------------------------------------------------------------------------


def write_report(out_dir: str | Path, results: Sequence[EvalResult], *, label: str, questions_md: str = "") -> dict:
    """table.json, table.md, accuracy_vs_length.png and (niah) needle_heatmap.png in ``out_dir``. ``questions_md``
    (how many questions each score is of: ``mmprolong.eval.summary.markdown``) ends table.md."""
    out = Path(out_dir)
    rows = summarize(results)
    write_text_atomic(out / "table.json", json.dumps({"label": label, "rows": rows}, indent=1, sort_keys=True) + "\n")
    questions = f"\n## Questions\n\n{questions_md}" if questions_md else ""
    write_text_atomic(out / "table.md", markdown_table(rows, title=f"{label}: results") + questions)
    files = {"table_json": str(out / "table.json"), "table_md": str(out / "table.md")}
    shown = _without_repeats(rows)
    suites = sorted({r["suite"] for r in shown})
    tasks = [(s, t) for s in suites for t in sorted({r["task"] for r in shown if r["suite"] == s})]
    series = {f"{s}/{t}": by_length(rows, s, t) for s, t in tasks}
    in_place = {f"{s}/{t}": by_length(rows, s, t, field="in_place") for s, t in tasks}
    files["accuracy_vs_length"] = str(plot_accuracy_vs_length(series, out / "accuracy_vs_length.png",
                                                              title=label, in_place=in_place))
    grids = _niah_grids(rows)
    if grids:
        files["needle_heatmap"] = str(plot_needle_heatmaps(grids, out / "needle_heatmap.png", title=label))
    return files


def _run_label(run_dir: Path) -> str:
    for name in ("run.json", "table.json"):
        path = run_dir / name
        if path.is_file():
            label = json.loads(path.read_text()).get("label")
            if label:
                return str(label)
    return run_dir.name


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, *, training_length: int | None = None) -> dict:
    """Side-by-side comparison of eval runs (e.g. base vs trained): compare.md / compare.json with a column per
    run, accuracy_vs_length.png with a line per run and suite (a dashed line at ``training_length`` when given,
    to show generalisation past it), needle_heatmaps.png with a row per run."""
    if not run_dirs:
        raise ValueError("compare_runs needs at least one run folder")
    out = Path(out_dir)
    runs = []
    for run in map(Path, run_dirs):
        label = _run_label(run)
        while label in [r[0] for r in runs]:
            label += "'"
        runs.append((label, summarize(read_results(run))))
    keys = {(r["suite"], r["task"], r["length"]) for _, rows in runs for r in rows if r["depth"] == ALL}
    single = one_task_suites([{"suite": suite, "task": task} for suite, task, _ in keys])
    keys = sorted((k for k in keys if k[1] != ALL or k[0] not in single), key=lambda k: (k[0], k[1] == ALL, k[1], k[2]))
    table = []
    for suite, task, length in keys:
        entry = {"suite": suite, "task": task, "length": length, "scores": {}, "errors": {}, "ci95": {}, "ok": {},
                 "in_place": {}, "in_place_ci95": {}, "in_place_by_position": {}}
        for label, rows in runs:
            match = [r for r in rows if (r["suite"], r["task"], r["length"], r["depth"]) == (suite, task, length, ALL)]
            for field in ("score", "errors", "ci95", "ok", "in_place", "in_place_ci95", "in_place_by_position"):
                entry["scores" if field == "score" else field][label] = match[0].get(field) if match else None
        table.append(entry)
    labels = [label for label, _ in runs]
    lines = ["# Comparison", "", "Score (%) per suite, task and length, with its 95% interval and the items answered; "
             "items that failed to run are counted as errors.", "",
             "| suite | task | length | " + " | ".join(labels) + " |", "| --- | --- | --- |" + " --- |" * len(labels)]
    for e in table:
        cells = [fmt_interval({"score": e["scores"][lb], "ci95": e["ci95"][lb], "ok": e["ok"][lb]})
                 + (f" ({e['errors'][lb]} err)" if e["errors"][lb] else "") for lb in labels]
        lines.append(f"| {e['suite']} | {e['task']} | {format_length(e['length'])} | " + " | ".join(cells) + " |")
    partial = [e for e in table if any(v is not None for v in e["in_place"].values())]
    if partial:
        lines += ["", "## Needle codes: characters in place (%)", "", IN_PLACE_NOTE, "",
                  "| task | length | " + " | ".join(labels) + " |", "| --- | --- |" + " --- |" * len(labels)]
        lines += [f"| {e['task']} | {format_length(e['length'])} | "
                  + " | ".join(fmt_compared_in_place(e, lb) for lb in labels) + " |" for e in partial]
    placed = [e for e in table if any(e["in_place_by_position"].values())]  # rows with per-place shares
    if placed:
        lines += ["", "## Needle codes: characters in place by place in the code (%)", "",
                  "| task | length | " + " | ".join(labels) + " |", "| --- | --- |" + " --- |" * len(labels)]
        lines += [f"| {e['task']} | {format_length(e['length'])} | "
                  + " | ".join(fmt_places(e["in_place_by_position"][lb]) for lb in labels) + " |" for e in placed]
    write_text_atomic(out / "compare.md", "\n".join(lines) + "\n")
    write_text_atomic(out / "compare.json", json.dumps({"runs": labels, "rows": table}, indent=1, sort_keys=True)
                      + "\n")
    files = {"compare_md": str(out / "compare.md"), "compare_json": str(out / "compare.json")}
    suites = sorted({e["suite"] for e in table})
    names = {(label, suite): f"{label} / {suite}" if len(suites) > 1 else label for label, _ in runs
             for suite in suites}
    series = {names[label, suite]: by_length(rows, suite) for label, rows in runs for suite in suites}
    in_place = {names[label, suite]: by_length(rows, suite, field="in_place") for label, rows in runs
                for suite in suites}
    files["accuracy_vs_length"] = str(plot_accuracy_vs_length(series, out / "accuracy_vs_length.png",
                                                              title="score against length",
                                                              training_length=training_length,
                                                              in_place=in_place))
    panels = {f"{label}: {task}": grid for label, rows in runs for task, grid in _niah_grids(rows).items()}
    if panels:
        variants = max(len(_niah_grids(rows)) for _, rows in runs)
        files["needle_heatmaps"] = str(plot_needle_heatmaps(panels, out / "needle_heatmaps.png", ncols=variants))
    places = {(label, task): by_length(rows, "niah", task, field="in_place_by_position") for label, rows in runs
              for task in sorted({r["task"] for r in rows if r["suite"] == "niah" and r["task"] != ALL})}
    places = {key: by_place for key, by_place in places.items() if any(by_place.values())}
    if places:
        variants = max(sum(key[0] == label for key in places) for label in labels)  # a row per run, or one row
        files["code_places"] = str(plot_code_places({f"{label}: {task}": by_place for (label, task), by_place
                                                     in places.items()}, out / "code_places.png",
                                                    ncols=variants if variants > 1 else len(places)))
    return files
