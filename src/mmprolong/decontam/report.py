"""The report of a decontamination run: ``report.json`` (everything), ``report.md`` (for people) and the
exclusion list ``exclude.txt`` (for synth)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from mmprolong.decontam.exclusion import write_exclusion
from mmprolong.decontam.index import EvalDocInfo

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
EXCLUDE = "exclude.txt"
_NEAR_MISSES_SHOWN = 20


def build_report(*, store: str, sources: list[dict], docs: list[EvalDocInfo], pairs: list[dict], training: dict,
                 image_policy: dict, config: dict, seconds: float) -> dict:
    """The report as a mapping: matches first (by training document), then near misses (best first)."""
    rows = [_with_eval(pair, docs[pair["eval"]]) for pair in pairs]
    matches = sorted((r for r in rows if r["kind"]), key=lambda r: (r["doc_id"], r["source"], r["eval_source"],
                                                                    r["eval_name"]))
    near = sorted((r for r in rows if not r["kind"]),
                  key=lambda r: (-max(r["text"] or 0, r["image"] or 0), r["doc_id"], r["eval_name"]))
    return {
        "store": store,
        "sources": sources,
        "evaluation": {"documents": len(docs), "pages": sum(d.pages for d in docs),
                       "text_pages": sum(d.text_pages for d in docs), "image_pages": sum(d.image_pages for d in docs)},
        "training": training,
        "image_pages": image_policy,
        "matches": matches,
        "matches_by_kind": dict(sorted(Counter(m["kind"] for m in matches).items())),
        "excluded_documents": len({m["doc_id"] for m in matches}),
        "near_misses": near,
        "config": config,
        "seconds": round(seconds, 3),
    }


def _with_eval(pair: dict, doc: EvalDocInfo) -> dict:
    row = {k: v for k, v in pair.items() if k != "eval"}
    row.update(eval_source=doc.source, eval_name=doc.name, eval_kind=doc.kind, eval_doc_id=doc.doc_id,
               eval_pages=doc.pages)
    return row


def write_report(out_dir: Path, report: dict) -> dict:
    """Write the three files; returns the run's summary (what ``api.decontaminate`` returns)."""
    excluded = sorted({m["doc_id"] for m in report["matches"]})
    write_exclusion(out_dir / EXCLUDE, excluded,
                    [f"mmprolong decontaminate: {len(excluded)} training documents of {report['store']} that match "
                     "an evaluation document", "against: " + ", ".join(s["source"] for s in report["sources"]),
                     f"details: {out_dir / REPORT_JSON}"])
    _write_text(out_dir / REPORT_JSON, json.dumps(report, indent=1, sort_keys=True) + "\n")
    _write_text(out_dir / REPORT_MD, render_markdown(report))
    return {"matches": len(report["matches"]), "matches_by_kind": report["matches_by_kind"],
            "excluded_documents": len(excluded), "near_misses": len(report["near_misses"]),
            "exclusion_list": str(out_dir / EXCLUDE), "report": str(out_dir / REPORT_JSON),
            "report_md": str(out_dir / REPORT_MD), "store": report["store"],
            "sources": [s["source"] for s in report["sources"]],
            "evaluation_documents": report["evaluation"]["documents"],
            "training_documents": report["training"]["documents"], "training_pages": report["training"]["pages"],
            "training_cpu_seconds": report["training"]["cpu_seconds"],
            "image_pages": report["image_pages"]["policy"], "seconds": report["seconds"]}


def render_markdown(report: dict) -> str:
    ev, tr = report["evaluation"], report["training"]
    lines = ["# Decontamination report", "",
             f"Training store `{report['store']}`: {tr['documents']:,} documents, {tr['pages']:,} pages "
             f"({tr['text_pages']:,} with text, {tr['image_pages']:,} image-hashed), scanned in "
             f"{tr['cpu_seconds']:,.0f} CPU-seconds.",
             f"Evaluation: {ev['documents']:,} documents, {ev['pages']:,} pages ({ev['text_pages']:,} with text) from:",
             ""]
    for s in report["sources"]:
        skipped = f", {len(s['skipped'])} unreadable (see report.json)" if s["skipped"] else ""
        lines.append(f"- `{s['source']}` ({s['kind']}): {s['documents']} documents{skipped}")
    policy = report["image_pages"]
    lines += ["", f"Training page images hashed: {policy['policy']} ({policy['why']}).", "",
              f"**{len(report['matches'])} matches; {report['excluded_documents']} training documents excluded** "
              f"(`{EXCLUDE}`); by kind: "
              + (", ".join(f"{k} {n}" for k, n in report["matches_by_kind"].items()) or "none") + ".", ""]
    if report["matches"]:
        lines += ["| training document | doc_id | evaluation document | kind | similarity | pages matched "
                  "(training / evaluation) |", "| --- | --- | --- | --- | --- | --- |"]
        for m in report["matches"]:
            pages = m["matched_pages"]
            lines.append(f"| {m['source']} | `{m['doc_id']}` | {m['eval_name']} ({m['eval_source']}) | {m['kind']} | "
                         f"{m['similarity']:.3f} | {len(pages)} of {m['pages']}: {_ranges([p[0] for p in pages])} / "
                         f"{_ranges(sorted({p[1] for p in pages}))} of {m['eval_pages']} |")
    near = report["near_misses"]
    if near:
        lines += ["", f"{len(near)} near misses (at least half a threshold, not matched); the closest:", "",
                  "| training document | evaluation document | text share | image share (pages) |",
                  "| --- | --- | --- | --- |"]
        for m in near[:_NEAR_MISSES_SHOWN]:
            text = "-" if m["text"] is None else f"{m['text']:.3f}"
            image = "-" if m["image"] is None else f"{m['image']:.3f} ({m['image_pages']})"
            lines.append(f"| {m['source']} | {m['eval_name']} | {text} | {image} |")
    c = report["config"]
    lines += ["", f"Thresholds: text {c['text_threshold']} of the smaller document's {c['shingle_words']}-word "
                  f"shingles; image {c['image_coverage']} of the pages within {c['image_distance']} of "
                  f"{c['hash_size'] ** 2} bits, at least {c['min_image_pages']} pages. {report['seconds']:.1f} s.",
              ""]
    return "\n".join(lines)


def _ranges(pages: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1-3, 7, 9-10" (1-based page numbers)."""
    out, start = [], None
    for i, page in enumerate(pages):
        if start is None:
            start = page
        if i + 1 == len(pages) or pages[i + 1] != page + 1:
            out.append(f"{start}" if start == page else f"{start}-{page}")
            start = None
    return ", ".join(out) or "-"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
