"""The records that cross stage boundaries, with their on-disk (Arrow/Parquet) schemas.

Stages share nothing but these. Each schema carries a version in its metadata so a reader can refuse
a store written by an incompatible version instead of misreading it.

PageRecord (ingest -> synth, train, eval): one rendered PDF page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import pyarrow as pa

PAGE_SCHEMA_VERSION = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRecord:
    """One page of one PDF in the page store (a row of ``STORE_DIR/*.parquet``)."""

    doc_id: str  # first 16 hex digits of the SHA-256 of the PDF's bytes: stable across renames and machines
    source: str  # path of the PDF relative to the ingested folder
    page_index: int  # 0-based index in the document (not the number printed on the page)
    page_count: int  # pages in the document
    width: int  # rendered image width, pixels
    height: int  # rendered image height, pixels
    vision_tokens: int  # image pad tokens the store's model family's processor makes of it (mmprolong.models)
    text: str  # the page's PDF text layer, newlines normalised to "\n"
    image: bytes  # the rendered page, encoded as image_format
    image_format: str  # "png" or "jpeg"

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "PageRecord":
        return cls(**{f.name: row[f.name] for f in fields(cls)})


PAGE_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("page_index", pa.int32(), nullable=False),
        pa.field("page_count", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("vision_tokens", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),
        pa.field("image_format", pa.string(), nullable=False),
    ],
    metadata={"mmprolong.record": "PageRecord", "mmprolong.schema_version": PAGE_SCHEMA_VERSION},
)

# The columns a reader needs to plan samples without touching image bytes.
PAGE_INDEX_COLUMNS = ["doc_id", "source", "page_index", "page_count", "width", "height", "vision_tokens"]


# 2 added ``followups``; a version 1 shard reads as samples without them
SAMPLE_SCHEMA_VERSION = "2"


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRef:
    """One image of a sample: a page of the store, by document and index."""

    doc_id: str
    page_index: int
    vision_tokens: int  # copied from the store so a sample's length is known without reading images


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUp:
    """A further question about a sample's pages, asked in a later turn after the answers before it."""

    question: str
    answer: str
    answer_format: str
    evidence: tuple[int, ...]  # positions in the sample's ``pages``


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleRecord:
    """One training or evaluation sample (a row of ``DATA_DIR/*.parquet``): page images, then a question,
    then the answer, then any follow-up questions each with its answer, laid out by
    :class:`mmprolong.template.ChatTemplate`. Images are referenced, not copied; the page store and pixel budget
    they come from are in ``DATA_DIR/summary.json``.
    """

    sample_id: str  # stable id: a hash of the sample's content
    task: str  # extract-single | extract-multi | aggregate | reasoning | ocr-full | ocr-needle
    bucket: str  # length bucket label, e.g. "64K-128K"
    tokens: int  # exact sequence length (ChatTemplate.count), template tokens included
    pages: tuple[PageRef, ...]  # the images, in sequence order
    question: str
    answer: str
    answer_format: str  # String | Integer | Float | List | None
    evidence: tuple[int, ...]  # positions in ``pages`` of the evidence pages
    depth: float  # where the first evidence page starts, as a fraction of the sequence (0 = start)
    metadata: str = "{}"  # JSON: optional extras (fact ids, source section, generator)
    followups: tuple[FollowUp, ...] = ()  # synth's questions_per_sample - 1 at most; every answer is a target

    @property
    def questions(self) -> int:
        return 1 + len(self.followups)

    def to_row(self) -> dict:
        row = asdict(self)
        row["pages"] = [asdict(p) for p in self.pages]
        row["evidence"] = list(self.evidence)
        row["followups"] = [{**asdict(f), "evidence": list(f.evidence)} for f in self.followups]
        return row

    @classmethod
    def from_row(cls, row: dict) -> "SampleRecord":
        values = {f.name: row[f.name] for f in fields(cls) if f.name != "followups"}
        values["pages"] = tuple(PageRef(**p) for p in row["pages"])
        values["evidence"] = tuple(row["evidence"])
        values["followups"] = tuple(FollowUp(**{**f, "evidence": tuple(f["evidence"])})
                                    for f in row.get("followups") or ())  # absent from version 1 shards
        return cls(**values)


SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("tokens", pa.int32(), nullable=False),
        pa.field(
            "pages",
            pa.list_(
                pa.struct(
                    [
                        pa.field("doc_id", pa.string(), nullable=False),
                        pa.field("page_index", pa.int32(), nullable=False),
                        pa.field("vision_tokens", pa.int32(), nullable=False),
                    ]
                )
            ),
            nullable=False,
        ),
        pa.field("question", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("answer_format", pa.string(), nullable=False),
        pa.field("evidence", pa.list_(pa.int32()), nullable=False),
        pa.field("depth", pa.float64(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field(
            "followups",
            pa.list_(
                pa.struct(
                    [
                        pa.field("question", pa.string(), nullable=False),
                        pa.field("answer", pa.string(), nullable=False),
                        pa.field("answer_format", pa.string(), nullable=False),
                        pa.field("evidence", pa.list_(pa.int32()), nullable=False),
                    ]
                )
            ),
            nullable=False,
        ),
    ],
    metadata={"mmprolong.record": "SampleRecord", "mmprolong.schema_version": SAMPLE_SCHEMA_VERSION},
)
