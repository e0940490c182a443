"""What every benchmark does last: print its rows as a Markdown table and write them, dated, as JSON; and the
columns of one model's scores (as ``mmprolong.startpoint.scores_of`` and quickstart.json hold them) in such a row."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from mmprolong.eval.config import format_length


def report(rows: list[dict], out: Path, **context) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))  # rows may add columns (a model with look-alikes)
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"),
               **context, "rows": rows}
    out.write_text(json.dumps(payload, indent=1) + "\n")


def score_columns(suites: dict, prefix: str = "") -> dict:
    """``{suite: {task: {length: cell}}}`` -> niah exact and code characters in place per length, then held-out
    synth accuracy per task and length, in %, each column named ``prefix`` + what it is."""
    out = {}
    for length, cell in sorted(suites.get("niah", {}).get("single", {}).items(), key=lambda kv: int(kv[0])):
        out[f"{prefix}niah {format_length(int(length))}"] = round(100 * cell["accuracy"], 1)
        out[f"{prefix}in place {format_length(int(length))}"] = (round(100 * cell["in_place"], 1)
                                                                 if "in_place" in cell else "")
    for task, cells in suites.get("synth-heldout", {}).items():
        for length, cell in sorted(cells.items(), key=lambda kv: int(kv[0])):
            out[f"{prefix}{task} {format_length(int(length))}"] = round(100 * cell["accuracy"], 1)
    return out
