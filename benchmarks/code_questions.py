"""Held-out questions that ask for a note's code, split by how many note cards stand in their context.

A held-out extract-single question about an archive register asks for one note's code while other notes, alike
but for the archive's name and the code, may stand beside it. With one note in the context, finding it is
enough; with several, the model must pick the note by the name the question gives. Splitting the right answers
that way tells reading from choosing (``benchmarks/logn.py --parts heldout`` and ``benchmarks/longpt.py``).
"""

from __future__ import annotations

from pathlib import Path

from mmprolong.corpus.cards import NOTE_ATTRIBUTE
from mmprolong.eval.items import read_items, read_results
from mmprolong.synth.store import load_documents

KEYS = ("code questions", "notes in context", "right, one note", "right, several notes",
        "answer another note's code")


def page_texts(store: Path) -> dict[tuple[str, int], str]:
    """(doc_id, page index) -> the page's text layer, for every page of a store."""
    return {(d.doc_id, i): t for d in load_documents(store) for i, t in enumerate(d.page_texts)}


def note_code(text: str) -> str | None:
    """The code a page states when it is a note card (the line under its label), else None."""
    lines = text.splitlines()
    label = NOTE_ATTRIBUTE.capitalize()
    return lines[lines.index(label) + 1] if label in lines[:-1] else None


def code_questions(folder: Path, texts: dict) -> dict[int, dict]:
    """Per length, over the evaluation's extract-single questions that ask for a note's code (their evidence page
    is a note card): how many, the mean number of note cards in their context, right answers among those with one
    note and among those with several ("right / questions"), and how many answers are another note's code, read
    whole from the wrong card."""
    results = {r.item_id: r for r in read_results(folder)}
    cells: dict[int, dict] = {}
    for item in read_items(folder / "items.jsonl"):
        codes = [note_code(texts.get((image.doc_id, image.page_index), "")) for image in item.images]
        if item.task != "extract-single" or not item.evidence or codes[item.evidence[0]] is None:
            continue
        result = results.get(item.item_id)
        answer, right = (result.prediction.strip(), result.score >= 1.0) if result else ("", False)
        notes = sum(code is not None for code in codes)
        cell = cells.setdefault(item.length, {"questions": 0, "notes": 0, "other": 0, 1: [0, 0], 2: [0, 0]})
        cell["questions"] += 1
        cell["notes"] += notes
        cell["other"] += answer in set(codes) - {None, codes[item.evidence[0]]}
        cell[min(notes, 2)][0] += right
        cell[min(notes, 2)][1] += 1
    return {length: dict(zip(KEYS, (c["questions"], round(c["notes"] / c["questions"], 1), "{}/{}".format(*c[1]),
                                    "{}/{}".format(*c[2]), c["other"])))
            for length, c in cells.items()}
