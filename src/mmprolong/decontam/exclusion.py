"""Exclusion lists: the training documents synth must leave out, by doc_id.

The file decontaminate writes (``REPORT_DIR/exclude.txt``) holds one doc_id a line (the first 16 hex digits
of the SHA-256 of the PDF's bytes, as in the page store); lines starting with ``#`` are comments. synth takes
either such a file or the doc_ids themselves (``exclude: [...]`` in its config).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from mmprolong.errors import ConfigError

DOC_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Exclusion:
    doc_ids: frozenset[str]
    source: str  # the files' paths and/or "config" (inline doc_ids), comma-separated; "" for none
    sha256: str  # of the file's bytes when the list is one file, else of the sorted doc_ids one a line; "" for none

    def describe(self, left_out: int) -> dict:
        """What synth's summary records: which list, and how many of the store's documents it left out."""
        return {"source": self.source, "sha256": self.sha256, "doc_ids": len(self.doc_ids),
                "documents_excluded": left_out}


NO_EXCLUSION = Exclusion(frozenset(), "", "")


def load_exclusion(spec: list[str] | str | None, *, field: str = "exclude") -> Exclusion:
    """An exclusion list from a config value: None, the path of an exclusion-list file, or a list whose items are
    doc_ids or exclusion-list files (so ``--exclude a.txt,b.txt`` and ``--exclude ID,ID`` both work)."""
    if spec is None:
        return NO_EXCLUSION
    items = [spec] if isinstance(spec, str) else [str(i).strip() for i in spec]
    inline = [i for i in items if DOC_ID.match(i)]
    files = [Path(i) for i in items if not DOC_ID.match(i)]
    ids = list(inline)
    for path in files:
        if not path.is_file():
            raise ConfigError(field, spec, f"{str(path)!r} is neither a doc_id (16 lower-case hex digits, as in the "
                                           "page store) nor an exclusion-list file (decontaminate's exclude.txt)")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        listed = [line for line in lines if line and not line.startswith("#")]
        bad = [i for i in listed if not DOC_ID.match(i)]
        if bad:
            raise ConfigError(field, spec, f"{path}: {bad[0]!r} is not a doc_id; one doc_id a line, '#' starts a "
                                           "comment")
        ids += listed
    source = ",".join([str(p) for p in files] + (["config"] if inline else []))
    if len(files) == 1 and not inline:
        digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    else:
        digest = hashlib.sha256("".join(f"{i}\n" for i in sorted(set(ids))).encode()).hexdigest()
    return Exclusion(frozenset(ids), source, digest)


def write_exclusion(path: Path, doc_ids: list[str], comments: list[str]) -> None:
    """Write the list: comment lines, then the sorted unique doc_ids, one a line."""
    text = "".join(f"# {c}\n" for c in comments) + "".join(f"{d}\n" for d in sorted(set(doc_ids)))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
