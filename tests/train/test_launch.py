"""How a rank of a multi-process run ends: without interpreter teardown (exit_rank), which can abort a process whose
gloo worker threads still free tensors owned by Python objects (the CI flake of the 2-process train)."""

import os
import socket
import subprocess
import sys
import textwrap

# Rank 1 starts an all_gather, drops its references to the tensors (torch then keeps their Python objects alive
# from C++, and the gloo worker frees them) and ends. Its last exit handler is one C call (a sum: no bytecode, so
# the GIL is never handed over); the one before it tells rank 0, which then joins the all_gather: rank 1's worker
# completes it and waits for the GIL to free the Python objects while the interpreter goes into finalization.
RACE = textwrap.dedent("""
    import atexit
    import sys
    import time
    from pathlib import Path

    marker, ending = Path(sys.argv[1]), sys.argv[2]
    atexit.register(sum, range(100_000_000))  # registered first: runs last, holding the GIL throughout
    atexit.register(marker.touch)  # runs just before it

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    if dist.get_rank() == 0:
        deadline = time.monotonic() + 300
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        dist.all_gather([torch.zeros(4) for _ in range(2)], torch.ones(4))
        time.sleep(300)  # the test ends it
    else:
        outs = [torch.zeros(4) for _ in range(2)]
        work = dist.all_gather(outs, torch.ones(4), async_op=True)
        del outs, work
        if ending == "exit_rank":
            from mmprolong.train.launch import exit_rank

            exit_rank(0)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _race(tmp_path, ending: str) -> subprocess.CompletedProcess:
    """Run the two ranks of RACE; returns rank 1's outcome."""
    script, marker = tmp_path / "race.py", tmp_path / f"{ending}.exiting"
    script.write_text(RACE)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), str(marker), ending]
    rank0 = subprocess.Popen(command, env={**env, "RANK": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return subprocess.run(command, env={**env, "RANK": "1"}, capture_output=True, text=True, timeout=600)
    finally:
        rank0.kill()
        rank0.wait()


def test_teardown_with_a_gloo_worker_freeing_tensors_aborts_and_exit_rank_does_not(tmp_path):
    aborted = _race(tmp_path, "teardown")
    assert aborted.returncode == -6, (aborted.returncode, aborted.stderr[-2000:])  # SIGABRT
    assert "terminate called without an active exception" in aborted.stderr
    ended = _race(tmp_path, "exit_rank")
    assert ended.returncode == 0, ended.stderr[-2000:]


def _cli(env: dict) -> subprocess.CompletedProcess:
    """The CLI failing fast (no such page store), with an exit handler that reports the interpreter teardown."""
    code = ("import atexit, sys; atexit.register(print, 'teardown'); from mmprolong.cli import main; "
            "sys.exit(main(['synth', '/nonexistent/store', '--out', '/nonexistent/data']))")
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def test_a_cli_rank_of_a_multi_process_run_ends_without_teardown_and_keeps_its_output():
    rank = _cli({"WORLD_SIZE": "2", "RANK": "1"})
    assert rank.returncode == 2 and "mmprolong: error" in rank.stderr and "teardown" not in rank.stdout
    single = _cli({"WORLD_SIZE": "1", "RANK": "0"})
    assert single.returncode == 2 and "mmprolong: error" in single.stderr and "teardown" in single.stdout


def test_lead_runs_the_step_on_rank_0_and_hands_its_failure_to_the_waiting_ranks():
    """Rank 0's step result, the release the other ranks wait on, and a failure that reaches them as an error
    instead of leaving them waiting: over a real TCPStore on loopback (rank 1 reads what rank 0 wrote)."""
    from datetime import timedelta

    import pytest
    from torch.distributed import TCPStore

    from mmprolong.train.launch import lead

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = TCPStore("127.0.0.1", port, 2, True, timeout=timedelta(seconds=20), wait_for_workers=False)
    other = TCPStore("127.0.0.1", port, 2, False, timeout=timedelta(seconds=20))
    rank0, rank1 = {"rank": 0, "world_size": 2}, {"rank": 1, "world_size": 2}
    assert lead(host, rank0, "data", lambda: 42) == 42
    assert lead(other, rank1, "data", lambda: 1 / 0) is None  # released: rank 1 goes on without running the step

    def broken():
        raise ValueError("no pages")

    with pytest.raises(ValueError, match="no pages"):
        lead(host, rank0, "mixture a", broken)
    with pytest.raises(RuntimeError, match="rank 0 failed at mixture a: ValueError: no pages"):
        lead(other, rank1, "mixture a", lambda: None)
    assert lead(None, {"rank": 0, "world_size": 1}, "data", lambda: "alone") == "alone"  # one process: no store
