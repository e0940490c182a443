"""Run the two-process FSDP2 train of tests/train/test_distributed.py N times and count the failures.

    python tests/stress/loop_two_process_train.py --runs 30 [--load 2] [--keep-failures DIR]

Each run is a fresh ``torchrun --standalone --nproc_per_node=2 -m mmprolong.cli train`` on the train tests' fixture
data (tiny preset, float64, 4 steps, stopped at step 2 and resumed, as the test does). A run fails when torchrun
exits non-zero (e.g. a rank aborting at exit). ``--load N`` keeps N busy-looping processes running meanwhile, so the
race windows of a loaded machine open. Not collected by pytest (no test_ prefix): it takes minutes.
Prints one line per run and, last, ``failures F/N in S s``; exits 1 when F > 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))  # the train tests' fixture helpers


def build_data(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import train_config_dict  # noqa: F401  (tests/train/conftest.py: the same config as the test)
    from train_fixtures import make_samples, write_page_store

    from mmprolong.records import SAMPLE_SCHEMA
    from mmprolong.template import ChatTemplate
    from mmprolong.tokenizer import load_tokenizer
    from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

    images = write_page_store(root / "store", docs=6, pages=5, seed=0)
    samples = make_samples(images, ChatTemplate(load_tokenizer()), count=40, seed=1)
    data = root / "data"
    data.mkdir()
    for i, part in enumerate((samples[:25], samples[25:])):
        pq.write_table(pa.Table.from_pylist([s.to_row() for s in part], schema=SAMPLE_SCHEMA),
                       data / f"unit-{i:05d}.parquet")
    (data / "summary.json").write_text(json.dumps({"store": "../store", "min_pixels": DEFAULT_MIN_PIXELS,
                                                   "max_pixels": DEFAULT_MAX_PIXELS, "samples": len(samples)}))
    return data


def torchrun(config: dict, path: Path, cores: bool) -> subprocess.CompletedProcess:
    """``cores``: a rank that dies of a signal leaves a core file in ``path.parent`` (for gdb)."""
    import resource

    import yaml

    path.write_text(yaml.safe_dump(config))
    # faulthandler prints every thread's Python stack if a rank gets a fatal signal (SIGABRT included).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1))) if cores else None
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "mmprolong.cli", "train", "--config", str(path)], cwd=path.parent,
                          env=env, check=False, capture_output=True, text=True, timeout=600, preexec_fn=limit)


def one_run(data: Path, root: Path, cores: bool) -> tuple[bool, str]:
    from conftest import train_config_dict

    run_dir = root / "run"
    float64 = {"model.dtype": "float64"}
    for name, extra in (("a", {"schedule.stop_at_step": 2}), ("b", {})):
        result = torchrun(train_config_dict(run_dir, data, steps=4, **float64, **extra), root / f"{name}.yaml", cores)
        if result.returncode != 0:
            return False, f"[{name}] rc={result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-8000:]}"
    return (run_dir / "final" / "model.safetensors").is_file(), ""


def busy() -> None:
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes kept running meanwhile")
    parser.add_argument("--keep-failures", type=Path, default=None,
                        help="folder for the output (and with --cores the core files) of failed runs")
    parser.add_argument("--cores", action="store_true", help="let a rank that dies of a signal dump core")
    args = parser.parse_args()
    loaders = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.load)]
    for p in loaders:
        p.start()
    failures, start = 0, time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = build_data(Path(tmp))
            for i in range(args.runs):
                with tempfile.TemporaryDirectory(dir=tmp) as run_root:
                    t = time.perf_counter()
                    ok, log = one_run(data, Path(run_root), args.cores)
                    failures += not ok
                    print(f"run {i + 1}/{args.runs}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t:.1f} s",
                          flush=True)
                    if not ok and args.keep_failures is not None:
                        kept = args.keep_failures / f"run-{i + 1:03d}"
                        kept.mkdir(parents=True, exist_ok=True)
                        (kept / "output.log").write_text(log)
                        for core in Path(run_root).glob("core*"):
                            shutil.move(core, kept / core.name)
                    elif not ok:
                        print(log, flush=True)
    finally:
        for p in loaders:
            p.terminate()
    print(f"failures {failures}/{args.runs} in {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
