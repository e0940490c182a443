"""Pages for eval items: a page store seen at the eval pixel budget, and the loader that turns an item's
image references into pixels (PIL images for transformers/vLLM, encoded bytes for an HTTP endpoint).

Token counts are recomputed from each stored image's size at the *model's* pixel budget and patch size (its
family's), so an item's length is what the model will actually be fed even when the store was rendered with
another budget or for another family.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import ItemImage
from mmprolong.models import DEFAULT_FAMILY, ModelFamily
from mmprolong.records import PAGE_INDEX_COLUMNS
from mmprolong.tokens import IMAGE_WRAPPER_TOKENS

MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def store_pixel_budget(store_dir: str | Path) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) the store was rendered with, from its summary.json; None when unknown."""
    path = Path(store_dir) / "summary.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text()).get("config") or {}
    if "min_pixels" in config and "max_pixels" in config:
        return int(config["min_pixels"]), int(config["max_pixels"])
    return None


def span(image: ItemImage) -> int:
    """Tokens one image takes in the sequence (pads + vision start/end)."""
    return image.vision_tokens + IMAGE_WRAPPER_TOKENS


class StorePages:
    """The pages of a page store as ``ItemImage``s at a family's pixel budget, and its documents as synth sees
    them."""

    def __init__(self, store_dir: str | Path, *, family: ModelFamily = DEFAULT_FAMILY, min_pixels: int | None = None,
                 max_pixels: int | None = None):
        import pyarrow.dataset as ds

        self.root = str(Path(store_dir).resolve())
        shards = sorted(Path(store_dir).glob("*.parquet"))
        if not shards:
            raise DataError(f"page store {store_dir} holds no *.parquet shards (run `mmprolong ingest`)")
        self.family = family
        self.min_pixels, self.max_pixels = min_pixels or family.min_pixels, max_pixels or family.max_pixels
        rows = ds.dataset([str(p) for p in shards], format="parquet").to_table(columns=PAGE_INDEX_COLUMNS).to_pylist()
        rows.sort(key=lambda r: (r["doc_id"], r["source"], r["page_index"]))
        self.pages: dict[str, list[ItemImage]] = {}
        self.sources: dict[str, str] = {}
        for row in rows:
            doc = self.pages.setdefault(row["doc_id"], [])
            if doc and self.sources[row["doc_id"]] != row["source"]:
                continue  # a byte-identical copy under another path
            self.sources.setdefault(row["doc_id"], row["source"])
            doc.append(self._image(row))
        # Only whole documents: a page that failed to render would shift every later page.
        self.pages = {d: p for d, p in self.pages.items()
                      if [x.page_index for x in p] == list(range(len(p)))}

    def _image(self, row: dict) -> ItemImage:
        tokens = self.family.image_tokens(row["height"], row["width"], min_pixels=self.min_pixels,
                                          max_pixels=self.max_pixels)
        return ItemImage(kind="store", vision_tokens=tokens, width=row["width"], height=row["height"],
                         root=self.root, doc_id=row["doc_id"], page_index=row["page_index"],
                         content_key=f"store:{row['doc_id']}/{row['page_index']}")

    @property
    def doc_ids(self) -> list[str]:
        return sorted(self.pages)

    def image(self, doc_id: str, page_index: int) -> ItemImage:
        try:
            return self.pages[doc_id][page_index]
        except (KeyError, IndexError):
            raise DataError(f"page {page_index} of document {doc_id} is not in the store {self.root}") from None

    def common_size(self) -> tuple[int, int]:
        """The most frequent (width, height) of the store's pages (ties: the smallest): the needle page size."""
        counts: dict[tuple[int, int], int] = {}
        for doc in self.pages.values():
            for p in doc:
                counts[(p.width, p.height)] = counts.get((p.width, p.height), 0) + 1
        if not counts:
            raise DataError(f"page store {self.root} has no complete document")
        return max(sorted(counts), key=lambda s: counts[s])

    def documents(self, *, truth_dir: str | Path | None = None):
        """synth's DocumentViews of the store (texts, sections, truth), with page tokens at this budget."""
        from mmprolong.synth.store import load_documents

        docs = []
        for doc in load_documents(self.root, truth_dir=truth_dir):
            if doc.doc_id not in self.pages or len(self.pages[doc.doc_id]) != doc.page_count:
                continue
            tokens = tuple(p.vision_tokens for p in self.pages[doc.doc_id])
            docs.append(dataclasses.replace(doc, page_tokens=tokens))
        return docs


def file_image(path: str | Path, *, min_pixels: int, max_pixels: int, key: str = "",
               family: ModelFamily = DEFAULT_FAMILY) -> ItemImage:
    """An image file as an ItemImage (its header is read for the size; DataError if unreadable)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"image {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    tokens = family.image_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    if not key:
        key = f"file:{path.name}:{path.stat().st_size}"
    return ItemImage(kind="file", vision_tokens=tokens, width=width, height=height, path=str(path.resolve()),
                     content_key=key)


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ImageLoader:
    """Reads the pixels of items' images. Store pages are read per item with one filtered scan per store."""

    def __init__(self):
        self._datasets: dict[str, object] = {}

    def _dataset(self, root: str):
        import pyarrow.dataset as ds

        if root not in self._datasets:
            shards = sorted(str(p) for p in Path(root).glob("*.parquet"))
            if not shards:
                raise DataError(f"page store {root} holds no *.parquet shards")
            self._datasets[root] = ds.dataset(shards, format="parquet")
        return self._datasets[root]

    def encoded(self, images: Sequence[ItemImage]) -> list[tuple[bytes, str]]:
        """(bytes, MIME type) of each image, in order; DataError naming the first one missing."""
        import pyarrow.dataset as ds

        out: list[tuple[bytes, str] | None] = [None] * len(images)
        by_root: dict[str, list[int]] = {}
        for i, image in enumerate(images):
            if image.kind == "store":
                by_root.setdefault(image.root, []).append(i)
            elif image.kind == "file":
                try:
                    data = Path(image.path).read_bytes()
                except OSError as exc:
                    raise DataError(f"image {image.path}: {exc.strerror or exc}") from None
                out[i] = (data, MIME.get(Path(image.path).suffix.lower().lstrip("."), "image/png"))
            else:
                raise DataError(f"image kind {image.kind!r} unknown")
        for root, indices in by_root.items():
            docs = sorted({images[i].doc_id for i in indices})
            table = self._dataset(root).to_table(columns=["doc_id", "page_index", "image", "image_format"],
                                                 filter=ds.field("doc_id").isin(docs))
            found = {}
            for doc_id, page, data, fmt in zip(*(table.column(c).to_pylist() for c in table.column_names)):
                found.setdefault((doc_id, page), (data, MIME.get(fmt, "image/png")))
            for i in indices:
                key = (images[i].doc_id, images[i].page_index)
                if key not in found:
                    raise DataError(f"page {key[1]} of document {key[0]} is missing from the store {root}")
                out[i] = found[key]
        return out  # type: ignore[return-value]

    def pil(self, images: Sequence[ItemImage]) -> list:
        """RGB PIL images, checked against the sizes recorded in the item (DataError otherwise)."""
        from PIL import Image, UnidentifiedImageError

        result = []
        for image, (data, _) in zip(images, self.encoded(images)):
            try:
                pil = Image.open(io.BytesIO(data))
                pil.load()
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DataError(f"image {_name(image)}: cannot be decoded ({type(exc).__name__}: {exc})") from None
            if pil.size != (image.width, image.height):
                raise DataError(f"image {_name(image)} is {pil.size[0]}x{pil.size[1]} px, the item was built for "
                                f"{image.width}x{image.height}: rebuild the items")
            result.append(pil.convert("RGB"))
        return result


def _name(image: ItemImage) -> str:
    return image.path if image.kind == "file" else f"{image.doc_id}/{image.page_index}"
