"""Why the needle is lost beyond the window, and what log-length attention scaling does about it.

    mmprolong quickstart --out runs/quickstart          # first: both models and their needle items
    python benchmarks/logn.py --run runs/quickstart [--windows 1024,512] [--out benchmarks/results/logn.json]

Two measurements on the quickstart's own needle items (RUN/eval-*-niah/items.jsonl), for the starting point and
the LongPT model, each as trained (window 0) and with ``attn_logn_window`` set at inference to each of --windows:

1. **probe** (lengths --probe-lengths): the gold code is fed after the prompt (teacher forcing) and, per place of
   the code's six digits, the share of items whose digit is the model's first choice, and the attention of the last
   decoder layer's most needle-bound head on the needle's vision tokens (softmax mass, mean over items). This
   is where the loss shows: after LongPT at 4K that head puts a few % of its attention on the needle for the
   first digit and most of it from the fourth on; at 1K, most for every digit.
2. **needle**: the quickstart's niah evaluation again (same items, greedy answers, exact and digits in place).
3. **selection** (rows under "selection"): the LongPT model on other needles (--select-seed, --select-items a
   depth, at --select-lengths) for every window, so the window the quickstart offers (``quickstart.LOGN_WINDOW``)
   is chosen on needles its report does not score.
4. **heldout** (rows under "heldout"; ``--parts heldout`` alone: the file's rows): the quickstart's held-out synth
   questions (RUN/eval-*-synth-heldout), both models, as trained and with --heldout-window: does the setting that
   finds the needle also answer questions about documents, where other notes stand beside the one asked about?

Writes --out (rows per model, window and length) and prints them. About 1 minute per probe model and setting and
2-3 minutes per evaluation on a 2-core CPU (about 35 minutes for the defaults, 5 for ``--parts heldout``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from code_questions import KEYS, code_questions, page_texts
from common import report
from transformers import AttentionInterface

from mmprolong import api
from mmprolong.eval import EvalConfig
from mmprolong.eval.backends import make_backend, template_parts
from mmprolong.eval.config import format_length, niah_config
from mmprolong.eval.items import read_items
from mmprolong.eval.pages import ImageLoader
from mmprolong.models.attention import scale_queries, sdpa_packed_forward
from mmprolong.models.config import ModelConfig
from mmprolong.quickstart import LOGN_WINDOW
from mmprolong.startpoint import scores_of

PLACES = 6  # digits of a needle code
PROBE_KEYS = ("teacher-forced digit right (%)", "head", "needle attention (%)")


class NeedleAttention:
    """An attention kernel that computes what ``sdpa_packed`` does and, for the answer's rows, records each text
    layer's per-head softmax mass on the needle's keys."""

    def __init__(self):
        self.rows: range | None = None  # query rows to probe (the answer's)
        self.keys: list[int] = []  # the needle's vision-token positions
        self.mass: dict[int, torch.Tensor] = {}  # layer -> (heads, rows)

    def __call__(self, module, query, key, value, attention_mask, position_ids=None, **kwargs):
        out = sdpa_packed_forward(module, query, key, value, attention_mask, position_ids=position_ids, **kwargs)
        layer = getattr(module, "layer_idx", None)
        if self.rows is not None and layer is not None:
            window = getattr(module.config, "attn_logn_window", 0) or 0
            rows = torch.tensor(list(self.rows))
            q = scale_queries(query[0, :, self.rows.start:self.rows.stop][None], self.rows.start, window)[0]
            k = key[0].repeat_interleave(query.shape[1] // key.shape[1], dim=0)
            logits = q @ k.transpose(-1, -2) * module.scaling
            logits = logits.masked_fill(torch.arange(k.shape[1])[None, :] > rows[:, None], float("-inf"))
            self.mass[layer] = logits.softmax(-1)[..., self.keys].sum(-1)
        return out


def probe(model: ModelConfig, items_path: Path, lengths: list[int]) -> list[dict]:
    """Per length: teacher-forced first-choice share and the last layer's best head's needle attention by place."""
    kernel = NeedleAttention()
    AttentionInterface.register("needle_probe", kernel)
    backend = make_backend(model, EvalConfig())
    backend.model.config.text_config._attn_implementation = "needle_probe"  # read at every call
    template, loader = backend.template, ImageLoader()
    items = [i for i in read_items(items_path) if not i.error]
    out = []
    for length in lengths:
        hits, mass, n = torch.zeros(PLACES), None, 0
        for item in (i for i in items if i.length == length):
            prompt = template.prompt_ids(template_parts(item))
            gold = template.text_ids(item.answers[0])
            if len(gold) != PLACES:
                continue
            ids = torch.tensor([prompt + gold])
            encoded = backend._encode_images(item.images, loader)
            pads = [p for p, t in enumerate(prompt) if t == template.image_pad]
            first = sum(image.vision_tokens for image in item.images[:item.evidence[0]])
            kernel.keys = pads[first:first + item.images[item.evidence[0]].vision_tokens]
            kernel.rows = range(len(prompt) - 1, len(prompt) + PLACES - 1)  # each row predicts the next digit
            with torch.inference_mode():
                logits = backend.model(
                    input_ids=ids, attention_mask=torch.ones_like(ids),
                    mm_token_type_ids=template.mm_token_type_ids(ids),
                    mm_encoder_outputs={"image": backend.family.image_encoder_output([p for p, _ in encoded])},
                    image_grid_thw=torch.cat([g for _, g in encoded])).logits[0, kernel.rows.start:kernel.rows.stop]
            kernel.rows = None
            hits += (logits.argmax(-1) == torch.tensor(gold)).float()
            last = kernel.mass[max(kernel.mass)]
            mass = last if mass is None else mass + last
            n += 1
        if n:
            mass = mass / n
            head = int(mass.sum(-1).argmax())
            out.append({"length": length, "teacher-forced digit right (%)": [round(100 * h / n) for h in hits.tolist()],
                        "head": head, "needle attention (%)": [round(100 * m, 1) for m in mass[head].tolist()]})
    backend.close()
    return out


def saved_eval(run: Path, name: str, suite: str) -> tuple[str, dict]:
    """The checkpoint folder a quickstart evaluation answered with, and its evaluation config on RUN's store."""
    saved = json.loads((run / f"eval-{name}-{suite}" / "config.json").read_text())
    return saved["backend"]["model"], {**saved["config"], "store_dir": str(run / "store")}


def needle_rows(run: Path, work: Path, windows: list[int], probe_lengths: list[int],
                args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """Parts 1-3: (rows per model, window and length; selection rows)."""
    rows, selection = [], []
    for name in ("base", "trained"):
        path, eval_config = saved_eval(run, name, "niah")
        for window in [0, *windows]:
            model = ModelConfig(path=path, attn_logn_window=window)
            print(f"{name}, attn_logn_window {window}", flush=True)
            folder = run / f"eval-{name}-niah" if window == 0 else work / f"{name}-w{window}"
            if window:
                api.evaluate(model, folder, EvalConfig.from_dict({**eval_config, "label": f"{name} w{window}"}),
                             show_progress=False)
            cells = scores_of(folder)["single"]
            probes = {p["length"]: p for p in probe(model, run / f"eval-{name}-niah" / "items.jsonl", probe_lengths)}
            for length, cell in sorted(cells.items(), key=lambda kv: int(kv[0])):
                row = {"model": name, "attn_logn_window": window, "length": format_length(int(length)),
                       "exact (%)": round(100 * cell["accuracy"], 1), "n": cell["n"],
                       "digits in place (%)": round(100 * cell["in_place"], 1),
                       "by place (%)": [round(100 * v) for v in cell.get("in_place_by_position", [])]}
                extra = probes.get(int(length), {})
                rows.append({**row, **{k: extra.get(k, "") for k in PROBE_KEYS}})
            if name == "trained":
                config = niah_config([int(n) for n in args.select_lengths.split(",")], args.select_items,
                                     store_dir=str(run / "store"), seed=args.select_seed, label=f"w{window}")
                api.evaluate(model, work / f"select-w{window}", config, show_progress=False)
                for length, cell in sorted(scores_of(work / f"select-w{window}")["single"].items(),
                                           key=lambda kv: int(kv[0])):
                    selection.append({"attn_logn_window": window, "length": format_length(int(length)),
                                      "exact (%)": round(100 * cell["accuracy"], 1),
                                      "ci95": [round(100 * v, 1) for v in cell["ci95"]], "n": cell["n"],
                                      "digits in place (%)": round(100 * cell["in_place"], 1)})
    return rows, selection


def heldout_rows(run: Path, work: Path, window: int) -> list[dict]:
    """Part 4: the quickstart's held-out synth scores per model, task and length, as trained and with ``window``;
    extract-single rows also say how its code questions went (``code_questions``)."""
    texts = page_texts(run / "store")
    rows = []
    for name in ("base", "trained"):
        path, eval_config = saved_eval(run, name, "synth-heldout")
        for w in (0, window):
            folder = run / f"eval-{name}-synth-heldout" if w == 0 else work / f"heldout-{name}-w{w}"
            if w:
                print(f"{name}, held-out synth, attn_logn_window {w}", flush=True)
                api.evaluate(ModelConfig(path=path, attn_logn_window=w), folder,
                             EvalConfig.from_dict({**eval_config, "label": f"{name} w{w}"}), show_progress=False)
            codes = code_questions(folder, texts)
            for task, cells in sorted(scores_of(folder).items()):
                for length, cell in sorted(cells.items(), key=lambda kv: int(kv[0])):
                    extra = codes.get(int(length), {}) if task == "extract-single" else {}
                    rows.append({"model": name, "attn_logn_window": w, "task": task,
                                 "length": format_length(int(length)), "accuracy (%)": round(100 * cell["accuracy"], 1),
                                 "ci95": [round(100 * v, 1) for v in cell["ci95"]], "n": cell["n"],
                                 **{k: extra.get(k, "") for k in KEYS}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart folder")
    parser.add_argument("--work", type=Path, default=None, help="evaluation folders (default RUN/logn)")
    parser.add_argument("--parts", default="needle,heldout",
                        help="needle: probe, needles and selection (1-3); heldout: held-out synth questions (4)")
    parser.add_argument("--windows", default="1024,512,256,128", help="attn_logn_window values to try at inference")
    parser.add_argument("--probe-lengths", default="1024,4096")
    parser.add_argument("--select-seed", type=int, default=7)
    parser.add_argument("--select-items", type=int, default=6, help="needles per (length, depth): 5 depths")
    parser.add_argument("--select-lengths", default="1024,4096,8192")
    parser.add_argument("--heldout-window", type=int, default=LOGN_WINDOW,
                        help="attn_logn_window for the held-out synth questions (default: the quickstart's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/logn.json"))
    args = parser.parse_args()
    run, work = args.run, args.work or args.run / "logn"
    parts = set(args.parts.split(","))
    if not parts or parts - {"needle", "heldout"}:
        sys.exit(f"--parts {args.parts}: give needle, heldout or both, comma-separated")
    suites = [s for part, s in (("needle", "niah"), ("heldout", "synth-heldout")) if part in parts]
    needed = ["train-long/final"] + [f"eval-{m}-{s}/config.json" for m in ("base", "trained") for s in suites]
    missing = [p for p in needed if not (run / p).exists()]
    if missing:
        sys.exit(f"--run {run}: not a finished quickstart (missing {', '.join(missing)})")
    windows = [int(w) for w in args.windows.split(",")]
    rows, selection = (needle_rows(run, work, windows, [int(n) for n in args.probe_lengths.split(",")], args)
                       if "needle" in parts else ([], []))
    heldout = heldout_rows(run, work, args.heldout_window) if "heldout" in parts else []
    context = {"windows": windows, "selection_seed": args.select_seed, "selection": selection} if rows else {}
    report(rows or heldout, args.out, run=str(run), **context,
           **({"heldout_window": args.heldout_window} if heldout else {}),
           **({"heldout": heldout} if rows and heldout else {}))

if __name__ == "__main__":
    main()
