"""MMLongBench's needle tasks (MM-NIAH and the visual haystack) from its released files, rebuilt at any length.

Files (MMLongBench's ``mmlb_data`` layout; field names learned from its data.py, nothing copied):
``DATA_DIR/NIAH/<task>_test[_1000]_K<k>_dep<d>.jsonl`` (or those files directly in DATA_DIR), one record per
line; image paths in records are relative to ``image_dir`` (its ``mmlb_image``; default DATA_DIR).

- MM-NIAH (``retrieval-text``, ``counting-text``, ``reasoning-text``, ``retrieval-image``, ``counting-image``,
  ``reasoning-image``): ``id``, ``question``, ``answer``, ``ctxs`` (the haystack in order: ``{"type", "text"}``,
  an image written as "<image>" in its text and taken in order from ``image_list``; the needle's entry marked
  ``has_answer`` (text) or ``has_ans`` (image)), ``positive_ctxs`` (the needles: ``text`` or ``image``),
  ``image_list``; ``needle_image_list`` for counting-image (the images the question's "<image>"s show);
  ``choices_image`` for the image retrieval/reasoning tasks (options A, B, ... after the question); ``depth``.
- Visual haystack (``vh_single``, ``vh_multi``): ``ctxs`` is a list of image paths, ``answer`` yes/no; the
  needle images are those ``positive_ctxs`` names (a record that names none is used only at its own length).

Length: a record is read from the file whose K is the smallest >= the requested length (else the largest),
then its haystack is rescaled to the exact count (``ChatTemplate.count`` with the gold answer) in [L - tolerance,
L]: every needle entry is kept and non-needle entries are dropped, or entries from the other selected records'
haystacks are inserted, evenly along the context (``fit_haystack``), so each needle keeps its depth. The
tolerance is one entry (the largest), unless ``length_tolerance`` says otherwise.

Scoring (MMLongBench's ``calculate_metrics``, see mmprolong.eval.metrics): retrieval-text and reasoning-text
sub-EM, the counting tasks soft-acc (sums of counts), the image retrieval/reasoning tasks mc-acc (the option
letter), each the better of the raw and the parsed answer (``default_post_process``); the visual haystack
binary-acc on the raw answer, with MMLongBench's rotating default (0, 1, 1, 0) for an answer without yes/no.

Prompt: MMLongBench's template (instruction, the entries, "Question: ..."), the instructions reworded. Its
loaders also start the assistant's turn with "Answer:"; ChatTemplate has no assistant prefix, so the
instruction asks for that form and ``parse_answer`` reads answers with or without it.

Every selected record becomes one item per length; one that cannot be built is an item with its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import NO_DEPTH, EvalItem, ItemImage, error_item, make_item
from mmprolong.eval.metrics import gold_alternatives
from mmprolong.eval.pages import file_image, span
from mmprolong.eval.suites.common import SuiteContext, count, prompt_count, rng_for

METRIC = {  # each task's metric (config.MMNIAH_TASKS + VISUAL_HAYSTACK_TASKS), as MMLongBench's loaders choose
    "retrieval-text": "niah", "reasoning-text": "niah", "counting-text": "soft-acc", "counting-image": "soft-acc",
    "retrieval-image": "mc-acc", "reasoning-image": "mc-acc", "vh_single": "binary-acc", "vh_multi": "binary-acc",
}
# The task instructions of MMLongBench's loaders, reworded: what to answer and in which form.
INSTRUCTIONS = {
    "niah": "The document below mixes text and images. Read it, then answer the question that follows it. "
            'Give your answer in the form "Answer: <answer>".',
    "soft-acc": "The document below mixes text and images. Read it, then answer the question that follows it. "
                'Give your answer in the form "Answer: <answer>".',
    "mc-acc": "The document below mixes text and images. The question after it offers lettered options; reply "
              'with the letter of the right one (A, B, ...) in the form "Answer: <letter>".',
    "binary-acc": 'Below is a set of images. Answer the question that follows them with Yes or No, in the form '
                  '"Answer: <Yes or No>".',
}
SEPARATOR = {"binary-acc": "\n"}  # between haystack entries; MM-NIAH's "\n\n" otherwise
DEFAULT_LABELS = (0, 1, 1, 0)  # MMLongBench's visual-haystack default answers, cycled over a task's items
IMAGE = "<image>"
_FILE = re.compile(r"^(?P<task>.+?)_test(?:_\d+)?_K(?P<k>\d+)(?:_dep\d+)?\.jsonl$")


@dataclass(frozen=True)
class Unit:
    """One haystack entry: its parts (separator included), its exact token cost, whether it holds a needle."""

    parts: tuple
    cost: int
    needle: bool


@dataclass
class Built:
    """A record made ready: the haystack, the question's parts, the golds and how they are shown and scored."""

    units: list[Unit]
    question: str
    question_parts: list
    answers: tuple[str, ...]
    display: str  # the gold as a model would write it (what the item's length counts)
    answer_format: str
    depth: float


# --- files and records -------------------------------------------------------------------------------------


def task_files(root: Path) -> dict[str, dict[int, Path]]:
    """{task: {K in tokens: file}} of the released files under ``root/NIAH`` (or ``root``)."""
    folder = root / "NIAH" if (root / "NIAH").is_dir() else root
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        match = _FILE.match(path.name)
        if match:
            found.setdefault(match.group("task"), {})[int(match.group("k")) * 1024] = path
    return found


def source_file(files: dict[int, Path], length: int) -> Path:
    """The file whose nominal length is the smallest >= ``length``, else the longest."""
    longer = [k for k in files if k >= length]
    return files[min(longer) if longer else max(files)]


def _rows(path: Path):
    """(line number, record dict or the reason it is not one), one per non-empty line."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, f"{path.name} line {n} is not JSON: {exc.msg}"
                continue
            yield n, row if isinstance(row, dict) else f"{path.name} line {n} is a {type(row).__name__}, not an object"


def _key(n: int, row) -> str:
    return str(row["id"]) if isinstance(row, dict) and "id" in row else f"#{n}"


def select_records(path: Path, limit: int, rng) -> list[tuple[str, dict | str]]:
    """``limit`` records of the file (-1: all), chosen by a seeded sample of their sorted ids, in id order.
    Two passes, so only the chosen records are held in memory (a released 128K file holds gigabytes)."""
    keys = sorted({_key(n, row) for n, row in _rows(path)})
    chosen = set(keys if limit < 0 or limit >= len(keys) else rng.sample(keys, limit))
    picked = {}
    for n, row in _rows(path):
        key = _key(n, row)
        if key in chosen and key not in picked:
            picked[key] = row
    return sorted(picked.items())


# --- one record -> units -------------------------------------------------------------------------------------


class _Images:
    """Image files of the records as ItemImages at the eval pixel budget, each file read once."""

    def __init__(self, ctx: SuiteContext, root: Path):
        self.ctx, self.root, self.seen = ctx, root, {}

    def __call__(self, rel) -> ItemImage:
        if not isinstance(rel, str) or not rel:
            raise DataError(f"image path {rel!r} is not a path")
        if rel not in self.seen:
            path = self.root / rel
            if not path.is_file():
                raise DataError(f"image {rel} not found under {self.root}")
            self.seen[rel] = file_image(path, min_pixels=self.ctx.min_pixels, max_pixels=self.ctx.max_pixels,
                                        family=self.ctx.family,
                                        key=f"file:{rel}:{path.stat().st_size}")
        return self.seen[rel]


def _text_parts(ctx: SuiteContext, text: str, images: list[ItemImage], tail: str) -> tuple[list, int]:
    """``text`` with each "<image>" replaced by the next of ``images``, then ``tail``; (parts, tokens)."""
    pieces = text.split(IMAGE)
    if len(pieces) - 1 != len(images):
        raise DataError(f"{len(pieces) - 1} {IMAGE} markers but {len(images)} images")
    parts: list = []
    for i, piece in enumerate(pieces):
        if i:
            parts.append(images[i - 1])
        if piece:
            parts.append(piece)
    if tail:
        if parts and isinstance(parts[-1], str):
            parts[-1] += tail
        else:
            parts.append(tail)
    cost = sum(len(ctx.template.text_ids(p)) if isinstance(p, str) else span(p) for p in parts)
    return parts, cost


def _positives(record: dict) -> tuple[list[str], list[str]]:
    """(needle texts, needle image paths) the record's positive_ctxs name."""
    texts, images = [], []
    for p in record.get("positive_ctxs") or []:
        if isinstance(p, str):
            images.append(p)
        elif isinstance(p, dict):
            if isinstance(p.get("image"), str) and p["image"]:
                images.append(p["image"])
            elif isinstance(p.get("text"), str) and p["text"].strip() and p["text"].strip() != IMAGE:
                texts.append(p["text"].strip())
    return texts, images


def _same_image(a: str, b: str) -> bool:
    """Paths of one image, one of them maybe relative to a sub-folder ("mm-niah/x.jpg" vs "x.jpg")."""
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def record_units(ctx: SuiteContext, record: dict, metric: str, images: _Images) -> list[Unit]:
    """The record's haystack entries as units, needles marked."""
    sep = SEPARATOR.get(metric, "\n\n")
    texts, needle_images = _positives(record)
    ctxs = record.get("ctxs")
    if not isinstance(ctxs, list) or not ctxs:
        raise DataError("ctxs is missing or empty")
    if metric == "binary-acc":
        entries = [(IMAGE, [p], {}) for p in ctxs]
    else:
        bad = next((e for e in ctxs if not isinstance(e, dict) or not isinstance(e.get("text"), str)), None)
        if bad is not None:
            raise DataError(f"a ctxs entry is not an object with a text: {str(bad)[:80]}")
        queue = list(record.get("image_list") or [])
        markers = sum(e["text"].count(IMAGE) for e in ctxs)
        if markers != len(queue):
            raise DataError(f"ctxs hold {markers} {IMAGE} markers but image_list has {len(queue)} images")
        entries = []
        for entry in ctxs:
            n = entry["text"].count(IMAGE)
            entries.append((entry["text"], queue[:n], entry))
            queue = queue[n:]
    units = []
    for text, paths, entry in entries:
        parts, cost = _text_parts(ctx, text, [images(p) for p in paths], sep)
        needle = bool(entry.get("has_answer") or entry.get("has_ans")
                      or any(t in text for t in texts)
                      or any(_same_image(p, q) for p in paths for q in needle_images))
        units.append(Unit(tuple(parts), cost, needle))
    return units


def build_record(ctx: SuiteContext, record: dict, task: str, images: _Images) -> Built:
    """A record as units, question and golds; DataError naming what is malformed."""
    metric = METRIC[task]
    for key in ("question", "answer", "ctxs"):
        if key not in record:
            raise DataError(f"field {key!r} missing")
    if not isinstance(record["question"], str) or not record["question"].strip():
        raise DataError("question is empty or not text")
    question = record["question"].strip()
    extra: list = []
    if metric == "mc-acc":
        choices = record.get("choices_image")
        if not isinstance(choices, list) or not choices:
            raise DataError("choices_image is missing or empty")
        question += "".join(f"\n{chr(ord('A') + i)}. {IMAGE}" for i in range(len(choices)))
        extra = choices
    elif IMAGE in record["question"]:
        extra = list(record.get("needle_image_list") or [])
    question_parts, _ = _text_parts(ctx, f"Question: {question}", [images(p) for p in extra], "")
    answers, display, answer_format = _golds(record["answer"], metric, record)
    depth = record.get("depth")
    depth = round(float(depth), 4) if isinstance(depth, (int, float)) and not isinstance(depth, bool) \
        and 0 <= depth <= 1 else NO_DEPTH
    return Built(record_units(ctx, record, metric, images), question, question_parts, answers, display,
                 answer_format, depth)


def _golds(answer, metric: str, record: dict) -> tuple[tuple[str, ...], str, str]:
    """(answers the metric scores against, the gold as a model would write it, answer format)."""
    if metric == "soft-acc":
        counts = json.loads(answer) if isinstance(answer, str) else answer
        if not isinstance(counts, list) or not counts or not all(isinstance(c, int) and not isinstance(c, bool)
                                                                  for c in counts):
            raise DataError(f"counting answer {answer!r} is not a list of counts")
        return tuple(str(c) for c in counts), json.dumps(counts), "List"
    if metric == "mc-acc":
        options = len(record["choices_image"])
        index = int(answer) if isinstance(answer, int) or (isinstance(answer, str) and answer.isdigit()) else -1
        if not 0 <= index < options:
            raise DataError(f"answer {answer!r} is not an option index below {options}")
        letter = chr(ord("A") + index)
        return (letter,), letter, "String"
    golds = tuple(gold_alternatives(answer if isinstance(answer, (list, str)) else str(answer)))
    return golds, golds[0], "String"


# --- fit to a length ---------------------------------------------------------------------------------------


def fit_haystack(units: Sequence[Unit], pool: Sequence[Unit], budget: int) -> list[Unit] | str:
    """Units whose costs sum to at most ``budget`` (short of it by less than one unit while the pool lasts), or
    the reason none fit. Needles are always kept. The non-needle tokens are scaled by r = room / tokens along
    the context: after each kept entry the tokens so far track r x the original tokens so far, by dropping
    entries (r < 1) or inserting ``pool`` entries after them (r > 1), so every needle keeps its depth."""
    needles = sum(u.cost for u in units if u.needle)
    movable = sum(u.cost for u in units if not u.needle)
    room = budget - needles
    if room < 0:
        return f"the needles alone take {needles} tokens, more than the {budget} left for the haystack"
    if movable == 0:
        return "the record has no haystack around its needles"
    ratio = room / movable
    extra = iter(pool)
    pending = next(extra, None)
    out: list[Unit] = []
    kept = seen = 0
    for unit in units:
        if unit.needle:
            out.append(unit)
            continue
        seen += unit.cost
        line = ratio * seen
        if ratio < 1:
            if kept + unit.cost <= line:
                out.append(unit)
                kept += unit.cost
            continue
        out.append(unit)
        kept += unit.cost
        while pending is not None and kept + pending.cost <= line:
            out.append(pending)
            kept += pending.cost
            pending = next(extra, None)
    return out


# --- items -------------------------------------------------------------------------------------------------


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    """Per task and length: ``mmniah_questions`` records (seeded, the same ids at every length when the files
    share them), each one item, in id order. A file serving several lengths is read and tokenized once."""
    config = ctx.config
    root = Path(config.data_dir)
    images = _Images(ctx, Path(config.image_dir or config.data_dir))
    files = task_files(root)
    items = []
    for task in config.mmniah_tasks:
        if task not in files:
            items += [error_item(suite="mmniah", task=task, length=length, depth=NO_DEPTH, metric=METRIC[task],
                                 error=f"no {task}_test*_K*.jsonl file under {root}") for length in config.lengths]
            continue
        prepared: dict[Path, tuple[list, dict]] = {}
        for length in config.lengths:
            path = source_file(files[task], length)
            if path not in prepared:
                try:
                    records = select_records(path, config.mmniah_questions,
                                             rng_for("mmniah-select", config.seed, task))
                except (OSError, UnicodeDecodeError) as exc:
                    items.append(error_item(suite="mmniah", task=task, length=length, depth=NO_DEPTH,
                                            metric=METRIC[task], error=f"cannot read {path}: {exc}"))
                    continue
                prepared[path] = records, _build_records(ctx, task, records, images)
            items += _task_items(ctx, task, length, path, *prepared[path])
    return items


def _build_records(ctx: SuiteContext, task: str, records, images: _Images) -> dict[str, Built | str]:
    """{id: the built record, or why it cannot be built}."""
    built: dict[str, Built | str] = {}
    for key, row in records:
        try:
            built[key] = row if isinstance(row, str) else build_record(ctx, row, task, images)
        except (DataError, ValueError, TypeError, KeyError) as exc:
            built[key] = f"malformed {task} record {key}: {exc}"
    return built


def _task_items(ctx: SuiteContext, task: str, length: int, path: Path, records,
                built: dict[str, Built | str]) -> list[EvalItem]:
    items = []
    for index, (key, _) in enumerate(records):
        meta = {"task": task, "id": key, "source": path.name}
        if METRIC[task] == "binary-acc":
            meta["default_label"] = DEFAULT_LABELS[index % len(DEFAULT_LABELS)]
        record = built[key]
        if isinstance(record, str):
            items.append(error_item(suite="mmniah", task=task, length=length, depth=NO_DEPTH, metric=METRIC[task],
                                    error=record, metadata=meta))
            continue
        # Padding comes from the other records' haystacks, never from a record whose needles are unknown.
        donors = [k for k, _ in records if k != key and isinstance(built[k], Built)
                  and any(u.needle for u in built[k].units)]
        rng_for("mmniah-pool", ctx.config.seed, task, length, key).shuffle(donors)
        pool = [u for k in donors for u in built[k].units if not u.needle]
        items.append(_build_one(ctx, task, length, record, pool, meta))
    return items


def _build_one(ctx: SuiteContext, task: str, length: int, record: Built, pool: list[Unit], meta: dict) -> EvalItem:
    metric = METRIC[task]

    def fail(reason: str) -> EvalItem:
        return error_item(suite="mmniah", task=task, length=length, depth=record.depth, metric=metric,
                          question=record.question, answers=record.answers, answer_format=record.answer_format,
                          error=reason, metadata=meta)

    head = [INSTRUCTIONS[metric] + "\n\n"]
    # Parts are tokenized one by one, so an item's count is this fixed count plus its entries' costs, exactly.
    fixed = count(ctx.template, head + record.question_parts, [record.display])
    budget = length - fixed
    tolerance = ctx.tolerance([u.cost for u in record.units] + [u.cost for u in pool])
    needles = [u for u in record.units if u.needle]
    own = sum(u.cost for u in record.units)
    if not needles and not budget - tolerance <= own <= budget:
        return fail(f"no needle is marked (has_answer / has_ans / positive_ctxs), so the {own}-token haystack "
                    f"cannot be cut or padded to {length} tokens")
    fitted = [*record.units] if not needles else fit_haystack(record.units, pool, budget)
    if isinstance(fitted, str):
        return fail(f"cannot fit {length} tokens: {fitted}")
    parts = head + [p for u in fitted for p in u.parts] + record.question_parts
    haystack = sum(u.cost for u in fitted)
    ids = {id(u) for u in record.units}
    meta = {**meta, "needles": len(needles), "kept": sum(id(u) in ids and not u.needle for u in fitted),
            "haystack": len(record.units) - len(needles), "added": sum(id(u) not in ids for u in fitted),
            "tolerance": tolerance}
    item = make_item(suite="mmniah", task=task, length=length, depth=record.depth, parts=tuple(parts),
                     question=record.question, answers=record.answers, answer_format=record.answer_format,
                     metric=metric, tokens=fixed + haystack,
                     prompt_tokens=prompt_count(ctx.template, head + record.question_parts) + haystack,
                     evidence=_needle_images(fitted),
                     achieved_depth=_depth(fitted), metadata=json.dumps(meta, sort_keys=True))
    if not length - tolerance <= item.tokens <= length:
        return fail(f"landed at {item.tokens} tokens, outside [{length - tolerance}, {length}] (too few other "
                    f"records to pad from: raise mmniah_questions)" if item.tokens < length - tolerance else
                    f"landed at {item.tokens} tokens, outside [{length - tolerance}, {length}]")
    return item


def _needle_images(units: Sequence[Unit]) -> tuple[int, ...]:
    """Positions among the item's images of the images inside needle entries."""
    out, position = [], 0
    for unit in units:
        for part in unit.parts:
            if isinstance(part, ItemImage):
                if unit.needle:
                    out.append(position)
                position += 1
    return tuple(out)


def _depth(units: Sequence[Unit]) -> float:
    """Where the first needle sits: haystack tokens before it / all haystack tokens (needles left out)."""
    haystack = sum(u.cost for u in units if not u.needle)
    first = next((i for i, u in enumerate(units) if u.needle), None)
    if first is None or not haystack:
        return NO_DEPTH
    return round(sum(u.cost for u in units[:first]) / haystack, 6)
