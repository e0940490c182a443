"""What every benchmark does last: print its rows as a Markdown table and write them, dated, as JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path


def report(rows: list[dict], out: Path, **context) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"),
               **context, "rows": rows}
    out.write_text(json.dumps(payload, indent=1) + "\n")
