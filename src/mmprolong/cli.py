"""The ``mmprolong`` command: argv -> Config -> :mod:`mmprolong.api`, nothing more.

Every field of a stage's config is also a flag of its sub-command (``max_pixels`` -> ``--max-pixels``,
nested ``optim.lr`` -> ``--optim.lr``), with the field's help; ``--config FILE`` loads a YAML file first
and flags override it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
import typing
from pathlib import Path

from mmprolong.config import Config
from mmprolong.errors import MMProLongError
from mmprolong.train.launch import distributed_env, exit_rank


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type[Config]) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of config fields; flags override it")
    group = parser.add_argument_group(f"{config_cls.__name__} fields")
    for name, kind, default, help_text in config_cls.reference():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest="cfg:" + name,
            default=None,
            metavar=kind.upper().split(" ")[0],
            help=f"{help_text} (default {default})".replace("%", "%%"),  # argparse formats help with %
        )


def config_from_args(args: argparse.Namespace, config_cls: type[Config]):
    from mmprolong.config import list_fields

    lists = list_fields(config_cls)
    overrides = {k[4:]: _parse_value(v, is_list=k[4:] in lists) for k, v in vars(args).items()
                 if k.startswith("cfg:") and v is not None}
    if args.config is not None:
        return config_cls.from_yaml(args.config, overrides)
    from mmprolong.config import merge_overrides

    return config_cls.from_dict(merge_overrides({}, overrides))


def _parse_value(text: str, *, is_list: bool = False):
    """Flag text -> YAML value, so "--workers 4" is an int and "--fmt jpeg" a string. A list field also takes
    comma-separated values ("--datasets a,b" = "--datasets [a, b]"; one value is a list of one), each read as
    YAML; "none" still clears an optional list."""
    import yaml

    value = yaml.safe_load(text)
    if not is_list or value is None or isinstance(value, list):
        return value
    return [yaml.safe_load(piece) for piece in text.split(",") if piece.strip()]


def _cmd_corpus_make(args) -> int:
    from mmprolong import api

    paths = api.make_corpus(args.out_dir, docs=args.docs, seed=args.seed, min_pages=args.min_pages,
                            max_pages=args.max_pages, layout=args.layout, register_share=args.register_share,
                            specimen_share=args.specimen_share, register_gap=args.register_gap)
    print(f"wrote {len(paths)} documents to {args.out_dir}")
    return 0


def _cmd_ingest(args) -> int:
    from mmprolong import api
    from mmprolong.ingest import IngestConfig

    summary = api.ingest(args.pdf_dir, args.out, config_from_args(args, IngestConfig), overwrite=args.overwrite)
    print(json.dumps(api.brief(summary), indent=2, sort_keys=True))
    return 0


def _cmd_synth(args) -> int:
    import os

    from mmprolong import api
    from mmprolong.synth.config import SynthConfig

    config = config_from_args(args, SynthConfig)
    key_env = (config.endpoint or {}).get("api_key_env")
    summary = api.synth(args.store_dir, args.out, config, overwrite=args.overwrite,
                        api_key=os.environ.get(key_env) if key_env else None)
    keys = ("samples", "tokens", "share_by_bucket", "share_by_task", "dropped_unverified", "dropped_length",
            "seconds")
    print(json.dumps({k: summary[k] for k in keys} | {"planned": summary["planned"]}, indent=2, sort_keys=True))
    return 0


def _cmd_decontaminate(args) -> int:
    from mmprolong import api
    from mmprolong.decontam import DecontamConfig

    summary = api.decontaminate(args.store_dir, args.against, args.out, config_from_args(args, DecontamConfig))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _cmd_export(args) -> int:
    from mmprolong import api

    notes = api.export(args.data_dir, args.out, fmt=args.format)
    print(json.dumps(notes, indent=2, sort_keys=True))
    return 0


def _cmd_train(args) -> int:
    from mmprolong import api
    from mmprolong.errors import TrainingDivergedError
    from mmprolong.train.config import TrainConfig

    env = distributed_env()
    config = config_from_args(args, TrainConfig)
    try:
        summary = api.train(config, **env)
    except TrainingDivergedError as exc:
        print(f"mmprolong: training diverged: {exc}", file=sys.stderr)
        return 3
    if env["rank"] == 0:
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return 0


def _cmd_eval(args) -> int:
    import os

    from mmprolong import api
    from mmprolong.eval.config import EvalConfig, parse_lengths

    if getattr(args, "cfg:lengths") is not None:  # "8k,16k" -> [8192, 16384] before the typed config sees it
        setattr(args, "cfg:lengths", str(parse_lengths(getattr(args, "cfg:lengths"))))
    config = config_from_args(args, EvalConfig)
    summary = api.evaluate(args.model, args.out, config, overwrite=args.overwrite,
                           api_key=os.environ.get(args.api_key_env) if args.api_key_env else None,
                           judge_api_key=os.environ.get(args.judge_api_key_env) if args.judge_api_key_env else None)
    from mmprolong.eval.summary import first_reasons, markdown, nothing_scored

    print(markdown(summary["summary"]))
    print(f"{summary['items']} items, {summary['errors']} errors, {summary['seconds']:.1f} s; tables in {args.out}")
    if nothing_scored(summary["summary"]):
        reasons = "\n  ".join(first_reasons(summary["summary"]))
        print(f"mmprolong: error: nothing could be scored; first reasons:\n  {reasons}", file=sys.stderr)
        return 2
    return 0


def _cmd_report(args) -> int:
    from mmprolong import api

    summary = api.compare(args.run_dirs, args.out, training_length=args.training_length)
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return 0


def _cmd_tokenizer_train(args) -> int:
    from mmprolong import api

    tokenizer = api.train_corpus_tokenizer(args.corpus_dir, args.out, vocab_size=args.vocab_size)
    print(f"trained a {len(tokenizer)}-token BPE into {args.out}")
    return 0


def _cmd_start_build(args) -> int:
    from mmprolong import startpoint

    final = startpoint.build(startpoint.load_recipe(args.recipe), args.out, resume_from=args.resume_from,
                             show_progress=distributed_env()["rank"] == 0)
    print(f"starting point: {final} (model card: {final / 'README.md'})")
    if args.install:
        print(f"installed into the package: {startpoint.install(final)}")
    return 0


def _cmd_quickstart(args) -> int:
    from mmprolong import api

    summary = api.quickstart(args.out, docs=args.docs, seed=args.seed, train_tokens=args.train_tokens,
                             niah_lengths=args.niah_lengths, niah_items=args.niah_items,
                             heldout_items=args.heldout_items, recipe=args.recipe, model=args.model, pdfs=args.pdfs,
                             logn_window=args.attn_logn_window, page_window=args.attn_page_window,
                             yarn=args.yarn, device=args.device, questions=args.questions,
                             position_skip=args.position_skip,
                             rebuild_start=args.rebuild_start, start=args.start,
                             show_progress=distributed_env()["rank"] == 0)
    if "report" in summary:  # rank 0 (the others only train)
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _cmd_reproduce(args) -> int:
    from mmprolong import api
    from mmprolong.reproduce import ReproduceConfig

    summary = api.reproduce(args.out, config_from_args(args, ReproduceConfig),
                            show_progress=distributed_env()["rank"] == 0)
    if "findings" in summary:  # rank 0 (the others only train)
        print(json.dumps({f["name"]: f["verdict"] for f in summary["findings"]}, indent=2))
        print(f"report: {args.out / 'report.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mmprolong.decontam import DecontamConfig
    from mmprolong.eval.config import EvalConfig, parse_lengths
    from mmprolong.ingest import IngestConfig
    from mmprolong.quickstart import (
        CPU_DOCS,
        CPU_QUESTIONS,
        CPU_TRAIN_TOKENS,
        DEVICES,
        LOGN_WINDOW,
        PAGE_WINDOW,
        POSITION_SKIP,
        RECIPE_DOCS,
        make_plan,
    )
    from mmprolong.reproduce import ReproduceConfig
    from mmprolong.synth.config import SynthConfig
    from mmprolong.train.config import TrainConfig

    parser = argparse.ArgumentParser(prog="mmprolong", description=__import__("mmprolong").__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="the embedded document corpus")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    make = corpus_sub.add_parser("make", help="generate realistic multi-page PDFs with ground-truth facts")
    make.add_argument("out_dir", type=Path)
    make.add_argument("--docs", type=int, default=8, help="number of documents")
    make.add_argument("--seed", type=int, default=0, help="random seed: same seed, byte-identical PDFs")
    make.add_argument("--min-pages", type=int, default=20, help="fewest pages per document")
    make.add_argument("--max-pages", type=int, default=200, help="most pages per document")
    make.add_argument("--layout", choices=("standard", "large-print"), default="standard",
                      help="standard: reports, manuals, slides at the paper's scale; large-print: decks of fact "
                           "cards legible at a small pixel budget (the quickstart's)")
    from mmprolong.corpus import make_corpus

    corpus_defaults = inspect.signature(make_corpus).parameters
    make.add_argument("--register-share", type=float, default=corpus_defaults["register_share"].default,
                      help="large-print: expected share of archive registers (note cards with 6-digit codes)")
    make.add_argument("--specimen-share", type=float, default=corpus_defaults["specimen_share"].default,
                      help="large-print: expected share of type specimens (random lines, only readable by reading)")
    make.add_argument("--register-gap", type=int, default=corpus_defaults["register_gap"].default,
                      help="large-print: at most this many white catalogue cards after each register note "
                           "(0: notes only; the quickstart uses 5)")
    make.set_defaults(func=_cmd_corpus_make)

    ingest = sub.add_parser("ingest", help="PDFs -> page store (images, text, exact vision tokens)")
    ingest.add_argument("pdf_dir", type=Path, help="folder searched recursively for *.pdf")
    ingest.add_argument("--out", type=Path, required=True, help="page store folder")
    ingest.add_argument("--overwrite", action="store_true", help="discard an existing store made with other inputs")
    add_config_arguments(ingest, IngestConfig)
    ingest.set_defaults(func=_cmd_ingest)

    synth = sub.add_parser("synth", help="page store -> length-controlled long-document VQA samples",
                           description="Without --config: the paper's recipe (balanced lengths up to 128K, "
                                       "40/40/20 extract-single/extract-multi/reasoning by tokens, no short data).")
    synth.add_argument("store_dir", type=Path, help="page store made by `mmprolong ingest`")
    synth.add_argument("--out", type=Path, required=True, help="data folder")
    synth.add_argument("--overwrite", action="store_true", help="discard an existing run made with other settings")
    add_config_arguments(synth, SynthConfig)
    synth.set_defaults(func=_cmd_synth)

    decontam = sub.add_parser("decontaminate", help="find training documents that match evaluation documents; "
                                                    "write a report and the exclusion list synth honours")
    decontam.add_argument("store_dir", type=Path, help="page store to check (made by `mmprolong ingest`)")
    decontam.add_argument("--against", nargs="+", required=True, metavar="SOURCE",
                          help="evaluation documents: page stores, folders of PDFs or page images, PDF files, or "
                               "docvqa data folders (what `eval --suite docvqa --data-dir` reads)")
    decontam.add_argument("--out", type=Path, default=Path("decontam"),
                          help="report folder: report.json, report.md, exclude.txt (default ./decontam)")
    add_config_arguments(decontam, DecontamConfig)
    decontam.set_defaults(func=_cmd_decontaminate)

    export = sub.add_parser("export", help="synth samples -> LLaMA-Factory or ms-swift datasets")
    export.add_argument("data_dir", type=Path)
    export.add_argument("--format", choices=("llamafactory", "swift"), required=True)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=_cmd_export)

    train = sub.add_parser("train", help="continued pre-training on packed long sequences (one process or torchrun)",
                           description="torchrun --nproc_per_node N -m mmprolong.cli train --config FILE runs it on "
                                       "N processes (FSDP2); see recipes/ for the paper's settings.")
    add_config_arguments(train, TrainConfig)
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("eval", help="needle-in-a-haystack and long-document VQA by length and depth")
    evaluate.add_argument("--model", type=Path, default=None,
                          help="local checkpoint folder of a supported family (e.g. a train run's final/); none: "
                               "the tiny preset")
    evaluate.add_argument("--out", type=Path, required=True, help="run folder (resumes an interrupted run)")
    evaluate.add_argument("--overwrite", action="store_true", help="discard a run folder made with other settings")
    evaluate.add_argument("--api-key-env", default=None, help="environment variable holding the endpoint's key")
    evaluate.add_argument("--judge-api-key-env", default=None,
                          help="environment variable holding the key of the llm_scoring endpoint")
    add_config_arguments(evaluate, EvalConfig)
    evaluate.set_defaults(func=_cmd_eval)

    report = sub.add_parser("report", help="compare eval runs side by side (e.g. base vs trained)")
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--training-length", type=int, default=None, help="drawn as a line on the charts, tokens")
    report.set_defaults(func=_cmd_report)

    tok = sub.add_parser("tokenizer", help="tokenizers")
    tok_sub = tok.add_subparsers(dest="tokenizer_command", required=True)
    tok_train = tok_sub.add_parser("train", help="train the tiny preset's byte-level BPE on a corpus' text layer")
    tok_train.add_argument("corpus_dir", type=Path, help="folder of PDFs")
    tok_train.add_argument("--out", type=Path, required=True)
    tok_train.add_argument("--vocab-size", type=int, default=8192)
    tok_train.set_defaults(func=_cmd_tokenizer_train)

    start = sub.add_parser("start", help="the quickstart's starting point (a mini Qwen2.5-VL that reads at 1K)")
    start_sub = start.add_subparsers(dest="start_command", required=True)
    start_build = start_sub.add_parser("build", help="rebuild it from its recipe: corpus, data, training, model card")
    start_build.add_argument("--recipe", type=Path, default=Path("recipes/miniature-start.yaml"))
    start_build.add_argument("--out", type=Path, default=Path("runs/start"), help="build folder (resumable)")
    start_build.add_argument("--resume-from", type=Path, default=None, metavar="BUILT",
                             help="a starting point built earlier from this recipe's first stages (its card's "
                                  "recipe the same but for the stages added since): train only the stages after "
                                  "them, from its weights")
    start_build.add_argument("--install", action="store_true",
                             help="copy the result into the package (src/mmprolong/assets/start)")
    start_build.set_defaults(func=_cmd_start_build)

    quick = sub.add_parser("quickstart", help="the whole recipe: on the embedded default on a CPU, or a given recipe")
    quick.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    defaults = inspect.signature(make_plan).parameters
    quick.add_argument("--docs", type=int, default=None,
                       help=f"documents in the generated corpus (default {CPU_DOCS}; with --recipe {RECIPE_DOCS})")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--train-tokens", type=int, default=None,
                       help=f"LongPT token budget, one pass over this many sample tokens (default {CPU_TRAIN_TOKENS}; "
                            "a recipe has its own)")
    quick.add_argument("--questions", type=int, default=None, metavar="N",
                       help=f"questions each LongPT sample asks about its pages, one turn each (synth's "
                            f"questions_per_sample; default {CPU_QUESTIONS}; with --recipe 1, the paper's)")
    quick.add_argument("--position-skip", type=float, default=None, metavar="F",
                       help="LongPT's position skipping (PoSE): each sample's mRoPE positions jump ahead once, at a "
                            f"page boundary, to reach up to F times its own span (default {POSITION_SKIP:g}; 1: the "
                            "paper's LongPT; a recipe has its own data.position_skip)")
    quick.add_argument("--niah-lengths", type=parse_lengths, default=None,
                       help="needle lengths, e.g. 1k,4k,16k (default 1k,2k,4k,8k,16k)")
    quick.add_argument("--niah-items", type=int, default=defaults["niah_items"].default,
                       help="needles per (length, depth) cell")
    quick.add_argument("--heldout-items", type=int, default=defaults["heldout_items"].default,
                       help="held-out synth items per task and length")
    quick.add_argument("--attn-logn-window", type=int, default=None, metavar="W",
                       help="both models also answer the needles up to 8K with inference settings; W > 0 adds "
                            f"log-length attention scaling past W tokens ({LOGN_WINDOW}, the starting point's "
                            "window, measured best; default 0: not; with --attn-page-window 0 and --no-yarn: no "
                            "second pass, only the paper's plain one; a recipe's run never has it)")
    quick.add_argument("--attn-page-window", type=int, default=None, metavar="P",
                       help="page-local attention in that pass: in the language model a page's tokens attend only to "
                            f"the prompt's preamble and the last P tokens (default {PAGE_WINDOW}, half the starting "
                            "point's window; 0: not)")
    quick.add_argument("--yarn", action=argparse.BooleanOptionalAction, default=None,
                       help="... and dynamic YaRN: an input past a model's own window (the starting point's 1K, "
                            "LongPT's 4K) computed with YaRN of factor length / window (default: on; --no-yarn: "
                            "not)")
    quick.add_argument("--device", choices=DEVICES, default=defaults["device"].default,
                       help="where LongPT trains: auto (the default: the GPU when there is one), cpu or cuda; "
                            "evaluation takes the GPU when there is one")
    quick.add_argument("--start", type=Path, default=None,
                       help="start LongPT from this checkpoint instead of the shipped starting point (e.g. one you "
                            "rebuilt with `mmprolong start build`)")
    quick.add_argument("--rebuild-start", action="store_true",
                       help="rebuild the starting point from recipes/miniature-start.yaml (hours on a CPU) instead "
                            "of using the shipped one")
    quick.add_argument("--recipe", type=Path, default=None,
                       help="a train config (e.g. recipes/mmprolong-7b.yaml): run it instead of the CPU default")
    quick.add_argument("--model", type=Path, default=None,
                       help="with --recipe: the starting checkpoint folder (default: the recipe's model.path)")
    quick.add_argument("--pdfs", type=Path, default=None,
                       help="with --recipe: a folder of your PDFs (default: a generated corpus of --docs documents)")
    quick.set_defaults(func=_cmd_quickstart)

    repro = sub.add_parser("reproduce", help="the paper's findings as ablations, with verdicts: in miniature on a "
                                             "CPU, or a recipe at paper scale",
                           description="Trains each finding's arms with the same budget from the shipped starting "
                                       "point (or, with --recipe and --model, from that checkpoint as the recipe "
                                       "says, under torchrun), evaluates them on one grid, and writes OUT/report.md, "
                                       "report.html and reproduce.json (a verdict per finding: agrees, disagrees, "
                                       "inconclusive). Resumable: a rerun skips finished arms.")
    repro.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="run folder")
    add_config_arguments(repro, ReproduceConfig)
    repro.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    env = distributed_env()
    level = logging.DEBUG if args.verbose else logging.INFO if env["rank"] == 0 else logging.WARNING
    logging.basicConfig(level=level, format=f"%(asctime)s [rank {env['rank']}] %(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except MMProLongError as exc:
        print(f"mmprolong: error: {exc}", file=sys.stderr)
        code = 2
    if env["world_size"] > 1:
        exit_rank(code)  # a torchrun rank ends without interpreter teardown, which can abort it (see exit_rank)
    return code


if __name__ == "__main__":
    sys.exit(main())
