"""Does a model read the needle's code wherever it stands, or only where the corpus prints codes? The niah needle
with its code moved along the card's grid. In the corpus (and the starting point's training) a note's code stands
2 columns in (``corpus.cards.INDENT``, the 4th of 24 columns, so its first digit shares a 28-px vision token with
a space, as its last does). 0 or 4 columns in moves it a whole vision token left or right: each token holds the
same two characters as in training, at another token column. 1 or 3 columns in moves it half a token: each token
holds another pair of characters (the first two digits together).

    mmprolong quickstart --out runs/quickstart          # first: the store and the LongPT model
    python benchmarks/needle_shift.py --run runs/quickstart [--indents 2,0,4,1,3] [--lengths 1k,2k,4k]
                                      [--items 6] [--seed 7] [--out benchmarks/results/needle_shift.json]

Each model (the shipped starting point and RUN's LongPT model) answers niah with the quickstart's own evaluation
settings on its store, at each indent, with another seed than the quickstart's (other needles). Rows: per length,
exact and code characters in place (%), and each character's share in place (``in_place_by_position``). A reader
of glyphs scores about the same at every indent; one that learnt the corpus' layout falls to chance (10% a digit)
off it.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.corpus import cards
from mmprolong.eval import EvalConfig
from mmprolong.eval.config import format_length, parse_length
from mmprolong.eval.suites import niah
from mmprolong.startpoint import scores_of, shipped_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart folder")
    parser.add_argument("--indents", default=f"{cards.INDENT},0,4,1,3",
                        help="columns from the margin to the code's first digit (the corpus': %(default)s first)")
    parser.add_argument("--lengths", default="1k,2k,4k")
    parser.add_argument("--items", type=int, default=6, help="needles per (length, depth) cell")
    parser.add_argument("--seed", type=int, default=7, help="the needles' seed (the quickstart's is 0)")
    parser.add_argument("--work", type=Path, default=Path("runs/needle_shift"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/needle_shift.json"))
    args = parser.parse_args()
    config_path = args.run / "eval-trained-niah" / "config.json"
    trained = args.run / "train-long" / "final"
    if not config_path.is_file() or not (trained / "config.json").is_file():
        sys.exit(f"--run {args.run}: not a finished quickstart; run `mmprolong quickstart --out {args.run}` first")
    lengths = [parse_length(x) for x in args.lengths.split(",")]
    base = json.loads(config_path.read_text())["config"]
    rows = []
    for indent in [int(x) for x in args.indents.split(",")]:
        niah.note_lines = partial(cards.note_lines, indent=indent)  # the needle page as niah renders it
        for name, model in (("starting point", shipped_path()), ("after LongPT", trained)):
            folder = args.work / f"indent-{indent}" / name.replace(" ", "-")
            config = {**base, "lengths": lengths, "items_per_cell": args.items, "seed": args.seed,
                      "store_dir": str(args.run / "store"),
                      "label": f"{name}, code at column {cards.MARGIN + indent + 1}"}
            api.evaluate(model, folder, EvalConfig.from_dict(config), show_progress=False)
            cells = scores_of(folder)["single"]
            row = {"model": name, "indent": indent}
            for length in lengths:
                cell = cells[str(length)]
                row[f"exact {format_length(length)}"] = round(100 * cell["accuracy"], 1)
                row[f"in place {format_length(length)}"] = round(100 * cell["in_place"], 1)
                row[f"n {format_length(length)}"] = cell["n"]
                row[f"by place {format_length(length)}"] = [round(100 * share, 1)
                                                            for share in cell["in_place_by_position"]]
            rows.append(row)
    report(rows, args.out, run=str(args.run), seed=args.seed, items_per_cell=args.items)


if __name__ == "__main__":
    main()
