"""Vision probe: do a model's vision tokens still say which characters they show? Linear probes on card pages.

    python benchmarks/vision_probe.py [--models src/mmprolong/assets/start runs/start/train-read/final ...]
                                      [--cards 300] [--out benchmarks/results/vision_probe.json]

A large-print card puts exactly two characters in each vision token (``corpus.cards``: a 24-column grid, one line
per token row), so every token of a type-specimen card has a known pair of characters. For each feature set (the raw
28 x 28 px of the token, the vision tokens of each model given, and those of the first model's architecture at
random initialisation) a linear classifier per character slot is fitted on 80% of the tokens and scored on the
rest. A model can only learn to read what its vision tokens keep: this separates "the LM never learned to copy"
from "the vision tower threw the glyphs away". Scores are on non-space characters (spaces are half the grid).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

import numpy as np
import pypdfium2
import torch
from common import report
from reportlab.pdfgen.canvas import Canvas

from mmprolong.corpus import cards
from mmprolong.models import DEFAULT_FAMILY

SPACE = " "


def specimen_cards(count: int, seed: int) -> tuple[list, list[list[str]]]:
    """``count`` cards of random specimen lines, rendered as ingest renders a card (72 dpi: 1 pt = 1 px)."""
    rng = random.Random(seed)
    images, texts = [], []
    for _ in range(count):
        lines = [cards.specimen_line(rng) for _ in range(cards.ROWS)]
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=cards.CARD_SIZE, invariant=1)
        cards.draw_card(canvas, [cards.Line(text) for text in lines], size=cards.CARD_SIZE, accent=cards.NOTE_ACCENT)
        canvas.showPage()
        canvas.save()
        pdf = pypdfium2.PdfDocument(buffer.getvalue())
        images.append(pdf[0].render(scale=1.0).to_pil().convert("RGB"))
        pdf.close()
        texts.append(lines)
    return images, texts


def token_labels(texts: list[list[str]], rows: int, columns: int, classes: dict[str, int]) -> torch.Tensor:
    """(tokens, 2): the class of each token's two characters, tokens in raster order (as the vision tower emits)."""
    labels = []
    for lines in texts:
        for row in range(rows):
            text = lines[row] if row < len(lines) else ""
            for column in range(columns):
                pair = []
                for slot in range(2):
                    at = 2 * column + slot - cards.MARGIN
                    pair.append(classes[text[at] if 0 <= at < len(text) else SPACE])
                labels.append(pair)
    return torch.tensor(labels)


def pixel_features(images: list, rows: int, columns: int) -> torch.Tensor:
    side = DEFAULT_FAMILY.token_px
    out = []
    for image in images:
        array = np.asarray(image, dtype=np.float32) / 255
        out += [array[side * r:side * (r + 1), side * c:side * (c + 1)].reshape(-1)
                for r in range(rows) for c in range(columns)]
    return torch.tensor(np.stack(out))


@torch.no_grad()
def vision_features(model, pixel_values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    output = model.model.get_image_features(pixel_values.to(model.dtype), grid)
    return torch.cat(list(output.pooler_output)).float()


def probe(features: torch.Tensor, labels: torch.Tensor, space: int, *, steps: int = 300) -> dict:
    """Held-out accuracy of a linear classifier per character slot (first 80% of tokens fit, the rest scored)."""
    split = int(len(features) * 0.8)
    mean, std = features[:split].mean(0), features[:split].std(0) + 1e-6
    features = (features - mean) / std
    torch.manual_seed(0)
    hits = total = hits_all = 0
    for slot in range(labels.shape[1]):
        linear = torch.nn.Linear(features.shape[1], int(labels.max()) + 1)
        optimizer = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-5)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(linear(features[:split]), labels[:split, slot]).backward()
            optimizer.step()
        with torch.no_grad():
            right = linear(features[split:]).argmax(-1) == labels[split:, slot]
        ink = labels[split:, slot] != space
        hits, total, hits_all = hits + int(right[ink].sum()), total + int(ink.sum()), hits_all + int(right.sum())
    return {"dim": features.shape[1], "char_accuracy": round(hits / total, 4),
            "all_accuracy": round(hits_all / (len(features) - split) / labels.shape[1], 4), "scored_chars": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["src/mmprolong/assets/start"])
    parser.add_argument("--cards", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vision_probe.json")
    args = parser.parse_args()
    from transformers import AutoConfig

    images, texts = specimen_cards(args.cards, args.seed)
    side = DEFAULT_FAMILY.token_px
    rows, columns = images[0].height // side, images[0].width // side
    classes = {ch: k for k, ch in enumerate(sorted(set("".join(map("".join, texts))) | {SPACE}))}
    labels = token_labels(texts, rows, columns, classes)
    processed = DEFAULT_FAMILY.image_processor(max_pixels=rows * columns * side * side)(images=images,
                                                                                          return_tensors="pt")
    pixel_values, grid = processed["pixel_values"], processed["image_grid_thw"]
    if int(grid[0].prod()) // 4 != rows * columns:
        sys.exit(f"cards were resized: grid {grid[0].tolist()}, expected {rows} x {columns} tokens")
    model_type = DEFAULT_FAMILY.model_type()
    feature_sets = [("pixels (28 x 28 x 3)", pixel_features(images, rows, columns))]
    for path in args.models:
        model = model_type.from_pretrained(path, dtype=torch.float32).eval()
        feature_sets.append((f"vision tokens of {path}", vision_features(model, pixel_values, grid)))
    torch.manual_seed(0)
    random_model = model_type._from_config(AutoConfig.from_pretrained(args.models[0]), dtype=torch.float32).eval()
    feature_sets.append((f"vision tokens at random init ({args.models[0]}'s config)",
                         vision_features(random_model, pixel_values, grid)))
    rows_out = [{"features": name, **probe(features, labels, classes[SPACE])} for name, features in feature_sets]
    report(rows_out, args.out, cards=args.cards, tokens=len(labels), classes=len(classes), seed=args.seed)


if __name__ == "__main__":
    main()
