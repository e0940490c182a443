"""What a launcher (torchrun, or srun running torchrun) tells each process: its rank and the world's size.

Kept apart from the trainer so the CLI and the quickstart read it without importing torch.
"""

from __future__ import annotations

import os


def distributed_env() -> dict:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (one process without them)."""
    return {"rank": int(os.environ.get("RANK", "0")), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}
