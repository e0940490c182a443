"""One report writer: sections of paragraphs, tables and figures, rendered as Markdown and as HTML.

The quickstart, ``mmprolong report`` (eval comparisons) and ``mmprolong reproduce`` describe what they found as a
list of ``Section``s and call ``write_report``; figures are files beside the report, referenced by name.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

Table = tuple[list[str], list[list[str]]]  # header, rows


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (file beside the report, caption)


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.paragraphs:
            lines += [p, ""]
        for header, rows in s.tables:
            lines += markdown_table(header, rows) + [""]
        for path, caption in s.images:
            lines += [f"![{caption}]({path})", f"*{caption}*", ""]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def render_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style>", f"<h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        for header, rows in s.tables:
            parts.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts += [f"<figure><img src='{e(path)}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>"
                  for path, caption in s.images]
    return "\n".join(parts) + "\n"


def write_report(out: str | Path, title: str, sections: list[Section], *, name: str = "report") -> dict[str, Path]:
    """``OUT/<name>.md`` and ``OUT/<name>.html``, each written whole (temp file, then rename)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for suffix, text in (("md", render_markdown(title, sections)), ("html", render_html(title, sections))):
        path = out / f"{name}.{suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths[suffix] = path
    return paths
