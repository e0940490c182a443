"""Training throughput: packed vs padded batches on the same samples (CPU or one GPU), and the 7B model at
32K/64K/128K on a GPU (``--gpu-7b``).

    python benchmarks/train.py [--data DATA_DIR] [--max-seq-len 4096] [--out benchmarks/results/train.json]
    python benchmarks/train.py --gpu-7b [--lengths 32768 65536 131072] [--out benchmarks/results/train-7b.json]
    torchrun --nproc_per_node 8 benchmarks/train.py --gpu-7b        # FSDP2 over 8 GPUs, with the AdamW step

Packed vs padded: every kept sample of one epoch is trained once (forward, backward, AdamW) with the tiny
preset, either packed into rows of ``--max-seq-len`` tokens (one row per micro-batch, no padding, per-sample
positions) or as padded batches of about as many samples as a packed row holds (right-padded to the longest,
with an attention mask). Each mode runs in its own process so its peak memory (RSS on CPU,
``torch.cuda.max_memory_allocated`` on GPU) is its own. Samples are encoded (images processed) before timing.
Without ``--data`` a synthetic page store and samples of 1-8 pages (about 50-2,600 tokens) are generated.
Packed rows run with two kernels: ``sdpa`` attends through an explicit L x L block-diagonal mask (cost ~ L^2 per
row, as if unpacked to one long sample), ``sdpa_packed`` (``mmprolong.train.attention``) runs SDPA on each sample's
own block (cost ~ the sum of the samples' squares), as flash-attention varlen does on a GPU
(``--attn flash_attention_2``: padded and packed both run on it).

``--gpu-7b``: a random-weight model of Qwen2.5-VL-7B's architecture built on the meta device and materialised on the
GPU (bfloat16, flash_attention_2 where flash-attn is installed, else SDPA; activation checkpointing on every decoder
layer and vision block), trained on one packed row per step holding one document of page images (1,232 vision tokens
each) and text, with the answer tokens at the end. One process: forward + backward only (AdamW states of 7B
parameters do not fit one GPU beside 128K activations). Under torchrun: FSDP2 (bf16 compute, fp32 master weights and
reduction) and the AdamW step. MFU = model FLOPs / (seconds x peak bf16 FLOP/s per GPU); model FLOPs = 6 x
(non-embedding parameters) x tokens + causal attention 6 x L^2 x hidden per decoder layer (+ the vision tower's 6 x
params x patches and its attention), recomputation not counted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


# --- synthetic data ---------------------------------------------------------------------------------------


def make_data(root: Path, *, docs: int = 12, pages: int = 8, samples: int = 96, seed: int = 0) -> Path:
    """A page store of random page images and a synth-style data folder of samples of 1-8 consecutive pages."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from mmprolong.records import (
        PAGE_SCHEMA,
        SAMPLE_SCHEMA,
        PageRecord,
        PageRef,
        SampleRecord,
    )
    from mmprolong.template import ChatTemplate
    from mmprolong.tokenizer import load_tokenizer
    from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, image_tokens

    rng = random.Random(seed)
    store, data = root / "store", root / "data"
    store.mkdir(parents=True)
    data.mkdir(parents=True)
    records, sizes = [], {}
    for d in range(docs):
        for p in range(pages):
            width, height = rng.randrange(112, 449), rng.randrange(140, 561)
            image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            sizes[(f"{d:016x}", p)] = (height, width)
            records.append(PageRecord(doc_id=f"{d:016x}", source=f"doc{d}.pdf", page_index=p, page_count=pages,
                                      width=width, height=height, vision_tokens=image_tokens(height, width),
                                      text="", image=buffer.getvalue(), image_format="png").to_row())
    pq.write_table(pa.Table.from_pylist(records, schema=PAGE_SCHEMA), store / "pages.parquet", row_group_size=8)
    template = ChatTemplate(load_tokenizer())
    words = ["revenue", "total", "table", "figure", "page", "section", "pressure", "units", "grew", "reached", "report"]
    rows = []
    for i in range(samples):
        doc, n = f"{rng.randrange(docs):016x}", rng.randint(1, pages)
        first = rng.randrange(pages - n + 1)
        refs = tuple(PageRef(doc_id=doc, page_index=p, vision_tokens=image_tokens(*sizes[(doc, p)]))
                     for p in range(first, first + n))
        question = "What is " + " ".join(rng.choices(words, k=rng.randint(4, 16))) + "?"
        answer = " ".join(rng.choices(words, k=rng.randint(1, 8)))
        tokens = template.count([r.vision_tokens for r in refs] + [question], answer)
        rows.append(SampleRecord(sample_id=f"b{i:04d}", task="extract-single", bucket="bench", tokens=tokens,
                                 pages=refs, question=question, answer=answer, answer_format="String",
                                 evidence=(0,), depth=0.0).to_row())
    pq.write_table(pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA), data / "unit-00000.parquet")
    (data / "summary.json").write_text(json.dumps({"store": "../store", "min_pixels": DEFAULT_MIN_PIXELS,
                                                   "max_pixels": DEFAULT_MAX_PIXELS}))
    return data


# --- packed vs padded (one mode per process) --------------------------------------------------------------


def run_mode(mode: str, data_dir: Path, max_seq_len: int, device: str, attn: str = "sdpa",
             preset: str = "tiny") -> dict:
    """Train one epoch of ``data_dir``'s samples in ``mode`` ('packed' or 'padded'); tokens/s and peak memory."""
    from mmprolong.models.config import ModelConfig
    from mmprolong.models.loading import load_model
    from mmprolong.train.collate import SampleEncoder, collate_packed, collate_padded
    from mmprolong.train.data import PackedRows
    from mmprolong.train.logging import peak_memory_gb

    torch.manual_seed(0)
    dtype = "bfloat16" if attn == "flash_attention_2" else "float32"
    model, tokenizer, image_processor = load_model(ModelConfig(preset=preset, attn_implementation=attn, dtype=dtype))
    model.to(device)
    encoder = SampleEncoder.build(tokenizer, image_processor, model.config)
    rows = PackedRows(data_dir, encoder, max_seq_len=max_seq_len, seed=0)
    plan = rows.rank_rows(0)
    encoded = {i: encoder.encode(rows.samples[i], [rows.store.image(p.doc_id, p.page_index)
                                                   for p in rows.samples[i].pages]) for r in plan for i in r}
    if mode == "packed":
        batches = [collate_packed([[encoded[i] for i in r]], pad_token_id=encoder.pad_token_id) for r in plan]
    else:
        order = [i for r in plan for i in r]
        random.Random(0).shuffle(order)
        per_batch = max(1, round(len(order) / len(plan)))
        batches = [collate_padded([encoded[i] for i in order[k:k + per_batch]], pad_token_id=encoder.pad_token_id)
                   for k in range(0, len(order), per_batch)]
    slots = sum(b.input_ids.numel() for b in batches)
    tokens = sum(int(b.num_tokens.sum()) for b in batches)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    _step(model, optimizer, batches[0], device)  # warm-up, not timed
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for batch in batches:
        _step(model, optimizer, batch, device)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"mode": mode, "batches": len(batches), "samples": len(encoded), "tokens": tokens, "slots": slots,
            "padding_share": round(1 - tokens / slots, 4), "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
            "peak_memory_gb": round(peak_memory_gb(torch.device(device)), 3),
            "memory_kind": "cuda_max_allocated" if device == "cuda" else "rss",
            "row_capacity_fill": round(rows.stats["packing_efficiency"], 4) if mode == "packed" else None}


def _step(model, optimizer, batch, device) -> None:
    from mmprolong.train.loss import answer_loss_sum

    loss, count = answer_loss_sum(model, batch.to(device))
    (loss / count).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def packed_vs_padded(args) -> dict:
    runs = ([("padded", args.attn), ("packed", args.attn)] if args.attn == "flash_attention_2"
            else [("padded", "sdpa"), ("packed", "sdpa"), ("packed", "sdpa_packed")])
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_data(Path(tmp))
        results = []
        for mode, attn in runs:
            out = Path(tmp) / f"{mode}-{attn}.json"
            subprocess.run([sys.executable, __file__, "--child", mode, "--data", str(data), "--max-seq-len",
                            str(args.max_seq_len), "--device", args.device, "--attn", attn, "--out", str(out),
                            "--threads", str(args.threads), "--preset", args.preset], check=True)
            results.append({**json.loads(out.read_text()), "attn": attn})
    padded, packed = results[0], results[-1]
    report = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores",
              "device": args.device, "torch_threads": args.threads, "date": time.strftime("%Y-%m-%d"),
              "max_seq_len": args.max_seq_len, "model": f"{args.preset} preset", "rows": results,
              "packed_over_padded_tokens_per_s": round(packed["tokens_per_s"] / padded["tokens_per_s"], 3),
              "packed_over_padded_peak_memory": round(packed["peak_memory_gb"] / padded["peak_memory_gb"], 3),
              "padding_share_of_padded_compute": padded["padding_share"]}
    keys = ["mode", "attn", "batches", "tokens", "slots", "padding_share", "seconds", "tokens_per_s",
            "peak_memory_gb"]
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in results:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(f"packed ({packed['attn']}) / padded: {report['packed_over_padded_tokens_per_s']}x tokens/s, "
          f"{report['packed_over_padded_peak_memory']}x peak memory; padding is "
          f"{100 * padded['padding_share']:.1f}% of the padded batches' token slots")
    return report


# --- 7B on GPU ---------------------------------------------------------------------------------------------

QWEN25VL_7B_TEXT = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
                        "num_key_value_heads": 4, "vocab_size": 152064, "rms_norm_eps": 1e-6,
                        "max_position_embeddings": 131072,
                        "rope_parameters": {"rope_type": "default", "rope_theta": 4e6, "mrope_section": [16, 24, 24]},
                        "use_cache": False}
QWEN25VL_7B_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                      "out_hidden_size": 3584,
                          "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                          "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu"}
SPECIAL_IDS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                   "vision_end_token_id": 151653}
PAGE_GRID = (1, 56, 88)  # 784 x 1232 px page: 4,928 patches -> 1,232 vision tokens
PEAK_BF16_FLOPS = {"H100": 989.4e12, "H200": 989.4e12, "H20": 148e12, "A100": 312e12}


def build_7b(*, small: bool, device: str, world, attn: str, offload: bool = False):
    """Random-weight Qwen2.5-VL-7B architecture (``small``: 2 layers / depth 2 for a CPU dry run)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from mmprolong.models.loading import reset_rotary_buffers
    from mmprolong.train.parallelize import apply_activation_checkpointing, apply_fsdp2

    text, vision = dict(QWEN25VL_7B_TEXT), dict(QWEN25VL_7B_VISION)
    if small:  # same code path, a size a CPU can run (head_dim 128 keeps mrope_section [16, 24, 24])
        text.update(num_hidden_layers=2, hidden_size=512, intermediate_size=1024, num_attention_heads=4,
                    num_key_value_heads=2)
        vision.update(depth=2, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=512,
                      fullatt_block_indexes=[1])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **SPECIAL_IDS)
    sharded = world is not None and world.distributed
    dtype = torch.float32 if (sharded or device == "cpu") else torch.bfloat16
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation=attn, dtype=dtype)
    model.config.use_cache = False
    apply_activation_checkpointing(model, offload=offload)
    if sharded:
        apply_fsdp2(model, world.fsdp_mesh, param_dtype=torch.bfloat16)
    model.to_empty(device=device)
    with torch.no_grad():
        for name, param in model.named_parameters():
            local = param.to_local() if hasattr(param, "to_local") else param
            if local.ndim == 1:  # 1-D: norm weights (1) and biases (0)
                local.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                local.normal_(0.0, 0.02)
    reset_rotary_buffers(model)
    model.train()
    return model


def synthetic_row(model_config, length: int, device: str, *, answer_tokens: int = 64):
    """One packed row of ``length`` tokens: one document of pages, a question, and ``answer_tokens`` targets."""
    from mmprolong.models import family_of_config
    from mmprolong.train.collate import IGNORE_INDEX

    g = torch.Generator().manual_seed(0)
    per_page = PAGE_GRID[1] * PAGE_GRID[2] // 4 + 2 + 16  # vision tokens + start/end + a page label
    pages = max(0, (length - 512) // per_page)
    ids = []
    for _ in range(pages):
        ids += torch.randint(1000, 100000, (16,), generator=g).tolist()
        ids += [SPECIAL_IDS["vision_start_token_id"]] + [SPECIAL_IDS["image_token_id"]] * (per_page - 18)
        ids += [SPECIAL_IDS["vision_end_token_id"]]
    ids += torch.randint(1000, 100000, (length - len(ids),), generator=g).tolist()
    input_ids = torch.tensor(ids)[None]
    family = family_of_config(model_config)
    types = family.mm_token_type_ids(input_ids, SPECIAL_IDS["image_token_id"])
    grid = torch.tensor([PAGE_GRID] * pages) if pages else None
    positions = family.sample_positions(family.rope_index(model_config), input_ids[0], types[0], grid)[:, None]
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -answer_tokens:] = input_ids[0, -answer_tokens:]
    patches = pages * PAGE_GRID[1] * PAGE_GRID[2]
    pixel_values = torch.randn(patches, 3 * family.temporal_patch_size * family.patch_size**2, generator=g) \
        if pages else None
    inputs = {"input_ids": input_ids, "position_ids": positions, "mm_token_type_ids": types, "attention_mask": None,
              "use_cache": False, "pixel_values": pixel_values, "image_grid_thw": grid}
    inputs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
    return inputs, labels.to(device), pages, patches


def model_flops(model_config, length: int, patches: int, targets: int) -> float:
    """Training FLOPs of one row (forward + backward = 3 x forward), recomputation not counted."""
    t, v = model_config.text_config, model_config.vision_config
    head = t.hidden_size // t.num_attention_heads
    attn_params = t.hidden_size * (t.num_attention_heads + 2 * t.num_key_value_heads) * head + \
        t.num_attention_heads * head * t.hidden_size
    layer = attn_params + 3 * t.hidden_size * t.intermediate_size
    text = 6 * layer * t.num_hidden_layers * length + 6 * length ** 2 * t.hidden_size * t.num_hidden_layers
    head_flops = 6 * t.hidden_size * t.vocab_size * targets
    v_layer = 4 * v.hidden_size ** 2 + 3 * v.hidden_size * v.intermediate_size
    merger = 4 * v.hidden_size * 4 * v.hidden_size + 4 * v.hidden_size * v.out_hidden_size
    pages = patches // (PAGE_GRID[1] * PAGE_GRID[2]) if patches else 0
    per_page = PAGE_GRID[1] * PAGE_GRID[2]
    window = (v.window_size // v.patch_size) ** 2
    full = len(v.fullatt_block_indexes)
    v_attn = 6 * 2 * v.hidden_size * pages * (full * per_page ** 2 + (v.depth - full) * per_page * window)
    vision = 6 * v_layer * v.depth * patches + 6 * merger * patches // 4 + v_attn
    return float(text + head_flops + vision)


def _time_steps(model, optimizer, inputs, keep, targets, device, warmup: int, steps: int) -> float:
    """Mean seconds of ``steps`` training steps after ``warmup`` untimed ones."""
    import torch.nn.functional as F

    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        logits = model(**inputs, logits_to_keep=keep).logits
        F.cross_entropy(logits.float(), targets, reduction="mean").backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def gpu_7b(args) -> dict:
    from mmprolong.train.parallelize import ParallelDims, init_distributed

    env = {"rank": int(os.environ.get("RANK", "0")), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
           "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}
    device = "cpu" if args.dry_run_cpu else "cuda"
    world = init_distributed(env["rank"], env["world_size"], env["local_rank"],
                             dims=ParallelDims(env["world_size"]), device=device, backend="auto")
    # flash-attention where it is installed; else SDPA, which on one document a row (no packing here) runs
    # torch's own flash kernel in bfloat16
    attn = "flash_attention_2" if not args.dry_run_cpu and importlib.util.find_spec("flash_attn") else "sdpa"
    name = "cpu" if args.dry_run_cpu else torch.cuda.get_device_name()
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
        (v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    model = build_7b(small=args.dry_run_cpu, device=device, world=world, attn=attn, offload=args.ac_offload)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=False) if world.distributed else None
    rows = []
    for length in args.lengths:
        inputs, labels, pages, patches = synthetic_row(model.config, length, device)
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != -100
        targets = labels[:, 1:][labels[:, 1:] != -100]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            seconds = _time_steps(model, optimizer, inputs, keep, targets, device, args.warmup, args.steps)
        except torch.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            rows.append({"length": length, "pages": pages, "oom": True})
            if world.is_main:
                print(json.dumps(rows[-1]))
            torch.cuda.empty_cache()
            continue
        flops = model_flops(model.config, length, patches, int(targets.numel()))
        memory = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        row = {"length": length, "pages": pages, "vision_tokens": patches // 4, "seconds_per_step": round(seconds, 3),
               "tokens_per_s_per_gpu": round(length / seconds, 1),
               "tflops_per_gpu": round(flops / seconds / 1e12, 1),
               "mfu": round(flops / seconds / peak, 4) if peak else None,
               "peak_memory_gb": round(memory, 2) if memory is not None else None}
        rows.append(row)
        if world.is_main:
            print(json.dumps(row))
    report = {"device": name, "world_size": world.world_size, "attn": attn, "activation_checkpointing": True,
              "activation_offload": args.ac_offload,
              "optimizer_step": optimizer is not None, "peak_bf16_tflops": peak / 1e12 if peak else None,
              "date": time.strftime("%Y-%m-%d"),
              "model": "Qwen2.5-VL-7B architecture, random weights" + (" (2 layers: CPU dry run)" if args.dry_run_cpu
                                                                         else ""),
              "rows": rows}
    if world.distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return report if world.is_main else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="synth data folder; default: generate one")
    parser.add_argument("--max-seq-len", type=int, default=4096, help="packed row length (tokens)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--attn", default="sdpa", choices=("sdpa", "sdpa_packed", "flash_attention_2"),
                        help="packed vs padded: sdpa compares padded, packed with sdpa and packed with sdpa_packed; "
                             "flash_attention_2 (GPU, bfloat16) compares padded and packed on varlen kernels")
    parser.add_argument("--preset", default="tiny", choices=("tiny", "mini"), help="packed vs padded: the model")
    parser.add_argument("--gpu-7b", action="store_true", help="the 7B-architecture GPU benchmark")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32768, 65536, 131072])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per length (--gpu-7b)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per length (--gpu-7b)")
    parser.add_argument("--peak-tflops", type=float, help="peak bf16 TFLOP/s per GPU for MFU (default: by name)")
    parser.add_argument("--ac-offload", action="store_true", help="offload checkpointed activations to host memory")
    parser.add_argument("--dry-run-cpu", action="store_true", help="--gpu-7b code path with 2 layers on CPU")
    parser.add_argument("--child", choices=("packed", "padded"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        args.out.write_text(json.dumps(run_mode(args.child, args.data, args.max_seq_len, args.device, args.attn,
                                                args.preset)))
        return
    report = gpu_7b(args) if args.gpu_7b else packed_vs_padded(args)
    if not report:
        return
    out = args.out or RESULTS / ("train-7b.json" if args.gpu_7b else "train.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
