"""A small generated needle set in MMLongBench's released layout, for tests and smoke runs (nothing downloaded).

``write_mmniah_samples(out_dir)`` writes::

    mmlb_data/NIAH/<task>_test_K<k>_dep<d>.jsonl         (vh_single / vh_multi: <task>_test_1000_K<k>_dep<d>)
    mmlb_image/mm-niah/{haystack,needles}/*.png, mmlb_image/visual_haystack/*.png

for the six MM-NIAH tasks and the two visual haystack tasks, at each nominal length K (in 1024 tokens). The
haystack is made-up paragraphs and drawn images; the needles are sentences ("The little penguin counted 3
needles."), drawn patterns, or a star pasted into some haystack images, marked as the released files mark them
(``has_answer`` / ``has_ans`` entries, ``positive_ctxs``). Records keep their ids across lengths. Same seed,
same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

FILLER = ("The committee reviewed the harbour plans during the spring session.",
          "Several volunteers repaired the library roof before the autumn rains.",
          "A new bakery opened near the station and sold out by noon.",
          "The orchestra rehearsed the overture twice on Thursday evening.",
          "Local farmers reported an early harvest of apples and pears.",
          "The museum extended its opening hours for the summer exhibition.")
DISHES = ("lentil soup", "plum cake", "fish stew", "rice pudding", "onion tart", "bean salad")
SPICES = ("cardamom", "saffron", "sumac", "fennel", "nutmeg", "tarragon")
SHAPES = ("circle", "square", "triangle", "diamond")
ANCHORS = ("kite", "boat", "lamp", "clock")
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
HAYSTACK_IMAGES = 12
SIZE = (56, 56)  # 4 vision tokens at the default pixel budget
VH_SIZE = (112, 112)  # 16: the visual haystack is images only


def _draw(path: Path, seed: int, *, shape: str | None = None, stars: int = 0, label: str = "",
          size: tuple[int, int] = SIZE) -> None:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(120, 256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.randrange(0, 40), rng.randrange(0, 40)
        draw.rectangle((x, y, x + 12, y + 12), outline=tuple(rng.randrange(0, 120) for _ in range(3)))
    if shape == "circle":
        draw.ellipse((14, 14, 42, 42), fill=(20, 60, 200))
    elif shape == "square":
        draw.rectangle((14, 14, 42, 42), fill=(20, 160, 60))
    elif shape == "triangle":
        draw.polygon([(28, 10), (46, 44), (10, 44)], fill=(200, 120, 20))
    elif shape == "diamond":
        draw.polygon([(28, 8), (48, 28), (28, 48), (8, 28)], fill=(160, 20, 160))
    for i in range(stars):
        x = 4 + 16 * i
        draw.polygon([(x + 5, 0 + 40), (x + 7, 46), (x + 12, 46), (x + 8, 49), (x + 10, 55), (x + 5, 51),
                      (x, 55), (x + 2, 49), (x - 2, 46), (x + 3, 46)], fill=(230, 0, 0))
    if label:
        draw.text((2, 2), label, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def _haystack(rng: random.Random, entries: int) -> list[dict]:
    """MM-NIAH ctxs: paragraphs with an image after every third."""
    ctxs = []
    for i in range(entries):
        if i % 3 == 2:
            ctxs.append({"type": "image", "text": "<image>"})
        else:
            ctxs.append({"type": "text", "text": " ".join(rng.sample(FILLER, 2))})
    return ctxs


def _fill_images(ctxs: list[dict], rng: random.Random) -> list[str]:
    return [f"mm-niah/haystack/{rng.randrange(HAYSTACK_IMAGES)}.png" for c in ctxs if c["text"] == "<image>"]


def _at(depth: float, n: int) -> int:
    return min(n, round(depth * n))


def _text_record(task: str, i: int, entries: int, rng: random.Random) -> dict:
    ctxs = _haystack(rng, entries)
    depth = DEPTHS[i % len(DEPTHS)]
    if task == "counting-text":
        counts = [rng.randrange(0, 5) for _ in range(3)]
        needles = [f"The little penguin counted {c} needles." for c in counts]
        depths = [0.2, 0.5, 0.8]
        question = ("How many needles did the little penguin count in each statement about it, in order? "
                    "Answer with a list of numbers such as [1, 2, 3].")
        answer: object = counts
    elif task == "reasoning-text":
        a, b = rng.sample(range(10, 60), 2)
        needles = [f"The blue kettle holds {a} cups.", f"The red kettle holds {b} cups."]
        depths = [depth / 2, (1 + depth) / 2]
        question = "Which kettle holds more cups, the blue one or the red one?"
        answer = "the blue kettle" if a > b else "the red kettle"
    else:
        dish, spice = DISHES[i % len(DISHES)], SPICES[rng.randrange(len(SPICES))]
        needles = [f"The secret ingredient of the {dish} is {spice}."]
        depths = [depth]
        question = f"What is the secret ingredient of the {dish}?"
        answer = spice
    positives = []
    for n, (needle, d) in enumerate(sorted(zip(needles, depths), key=lambda x: x[1])):
        ctxs.insert(_at(d, len(ctxs)), {"type": "text", "text": needle, "has_answer": True})
        positives.append({"type": "text", "text": needle, "nid": n})
    record = {"id": f"{task}-{i}", "category": task, "question": question, "answer": answer, "ctxs": ctxs,
              "positive_ctxs": positives, "image_list": _fill_images(ctxs, rng)}
    if len(needles) == 1:
        record["depth"] = depth
    return record


def _choice_record(task: str, i: int, entries: int, rng: random.Random) -> dict:
    ctxs = _haystack(rng, entries)
    depth = DEPTHS[i % len(DEPTHS)]
    shape = SHAPES[i % len(SHAPES)]
    ctxs.insert(_at(depth, len(ctxs)), {"type": "image", "text": "<image>", "has_ans": True})
    images = []
    for c in ctxs:
        if c["text"] == "<image>":
            images.append(f"mm-niah/needles/{shape}.png" if c.get("has_ans") else
                          f"mm-niah/haystack/{rng.randrange(HAYSTACK_IMAGES)}.png")
    options = rng.sample(SHAPES, len(SHAPES))
    question = ("Which of the following images appears in the document?" if task == "retrieval-image" else
                "Which of the following shapes has the same colour as the special image in the document?")
    return {"id": f"{task}-{i}", "category": task, "question": question, "answer": options.index(shape),
            "ctxs": ctxs, "image_list": images, "choices_image": [f"mm-niah/needles/{s}.png" for s in options],
            "positive_ctxs": [{"type": "image", "image": f"needles/{shape}.png", "text": "<image>",
                               "has_ans": True}], "depth": depth}


def _count_image_record(i: int, entries: int, rng: random.Random) -> dict:
    ctxs = _haystack(rng, entries)
    images, counts, positives = [], [], []
    for c in ctxs:
        if c["text"] != "<image>":
            continue
        if len(images) % 2 == 0 and len(counts) < 3:
            stars = rng.randrange(1, 4)
            counts.append(stars)
            c["has_ans"] = True
            images.append(f"mm-niah/haystack/star-{stars}.png")
            positives.append({"type": "image", "image": f"haystack/star-{stars}.png", "text": "<image>"})
        else:
            images.append(f"mm-niah/haystack/{rng.randrange(HAYSTACK_IMAGES)}.png")
    return {"id": f"counting-image-{i}", "category": "count-image",
            "question": "How many <image> are pasted into each image of the document that has one? Answer with a "
                        "list of numbers.", "answer": counts, "ctxs": ctxs, "image_list": images,
            "needle_image_list": ["mm-niah/needles/star.png"], "positive_ctxs": positives}


def _vh_record(task: str, i: int, images: int, rng: random.Random) -> dict:
    anchor = ANCHORS[i % len(ANCHORS)]
    paths = [f"visual_haystack/{rng.randrange(HAYSTACK_IMAGES)}.png" for _ in range(images)]
    needles = 1 if task == "vh_single" else 2
    depth = DEPTHS[i % len(DEPTHS)]
    spots = sorted({_at(depth, images - 1), images - 1 - _at(depth, images - 1)})[:needles]
    for spot in spots:
        paths[spot] = f"visual_haystack/anchor-{anchor}.png"
    answer = "Yes" if i % 2 == 0 else "No"
    return {"id": f"{task}-{i}", "question": f"For the image with a {anchor}, is there a cat in it?", "answer": answer,
            "ctxs": paths, "positive_ctxs": [f"visual_haystack/anchor-{anchor}.png"], "depth": depth}


def write_mmniah_samples(out_dir: str | Path, *, seed: int = 0, records: int = 5,
                         lengths_k: tuple[int, ...] = (1, 2)) -> dict[str, Path]:
    """Write the sample set under ``out_dir``; returns {"data_dir": .../mmlb_data, "image_dir": .../mmlb_image}.
    A K-file's haystacks hold 10 x K entries (MM-NIAH, about 450 x K tokens with the shipped tokenizer) or 20 x K
    images (visual haystack, 380 x K tokens): less than K x 1024, so building at K needs padding from the other
    records, as real files need a little when our count differs from MMLongBench's."""
    out = Path(out_dir)
    images = out / "mmlb_image"
    for n in range(HAYSTACK_IMAGES):
        _draw(images / "mm-niah" / "haystack" / f"{n}.png", seed * 1000 + n)
        _draw(images / "visual_haystack" / f"{n}.png", seed * 1000 + 500 + n, size=VH_SIZE)
    for shape in SHAPES:
        _draw(images / "mm-niah" / "needles" / f"{shape}.png", seed, shape=shape)
    for stars in (1, 2, 3):
        _draw(images / "mm-niah" / "haystack" / f"star-{stars}.png", seed + stars, stars=stars)
    _draw(images / "mm-niah" / "needles" / "star.png", seed, stars=1)
    for anchor in ANCHORS:
        _draw(images / "visual_haystack" / f"anchor-{anchor}.png", seed, label=anchor, size=VH_SIZE)

    folder = out / "mmlb_data" / "NIAH"
    folder.mkdir(parents=True, exist_ok=True)
    deps = {"retrieval-text": 6, "counting-text": 3, "reasoning-text": 3, "retrieval-image": 6,
            "counting-image": 3, "reasoning-image": 6, "vh_single": 6, "vh_multi": 3}
    for k in lengths_k:
        entries = 10 * k
        for task, dep in deps.items():
            rng = random.Random(f"{seed}/{task}/{k}")
            rows = []
            for i in range(records):
                if task.endswith("-text"):
                    rows.append(_text_record(task, i, entries, rng))
                elif task == "counting-image":
                    rows.append(_count_image_record(i, entries, rng))
                elif task.startswith("vh_"):
                    rows.append(_vh_record(task, i, 20 * k, rng))
                else:
                    rows.append(_choice_record(task, i, entries, rng))
            name = f"{task}_test{'_1000' if task.startswith('vh_') else ''}_K{k}_dep{dep}.jsonl"
            (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"data_dir": out / "mmlb_data", "image_dir": images}
