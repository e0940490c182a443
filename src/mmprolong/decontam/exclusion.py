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
    source: str  # the file's path, "config" for an inline list, "" for none
    sha256: str  # of the file's bytes, or of the sorted inline ids one a line; "" for none

    def describe(self, left_out: int) -> dict:
        """What synth's summary records: which list, and how many of the store's documents it left out."""
        return {"source": self.source, "sha256": self.sha256, "doc_ids": len(self.doc_ids),
                "documents_excluded": left_out}


NO_EXCLUSION = Exclusion(frozenset(), "", "")


def load_exclusion(spec: list[str] | str | None, *, field: str = "exclude") -> Exclusion:
    """An exclusion list from a config value: None, a list of doc_ids, or the path of an exclusion-list file."""
    if spec is None:
        return NO_EXCLUSION
    if isinstance(spec, str):
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(field, spec, "no such file: give an exclusion list (decontaminate's exclude.txt) or a "
                                           "list of doc_ids")
        data = path.read_bytes()
        lines = [line.strip() for line in data.decode("utf-8").splitlines()]
        ids = [line for line in lines if line and not line.startswith("#")]
        source, digest = str(path), hashlib.sha256(data).hexdigest()
    else:
        ids = [str(i).strip() for i in spec]
        source, digest = "config", hashlib.sha256("".join(f"{i}\n" for i in sorted(set(ids))).encode()).hexdigest()
    bad = [i for i in ids if not DOC_ID.match(i)]
    if bad:
        raise ConfigError(field, spec, f"{bad[0]!r} is not a doc_id (16 lower-case hex digits, as in the page "
                                       "store); one doc_id a line, '#' starts a comment")
    return Exclusion(frozenset(ids), source, digest)


def write_exclusion(path: Path, doc_ids: list[str], comments: list[str]) -> None:
    """Write the list: comment lines, then the sorted unique doc_ids, one a line."""
    text = "".join(f"# {c}\n" for c in comments) + "".join(f"{d}\n" for d in sorted(set(doc_ids)))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
