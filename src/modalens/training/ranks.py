"""Which training process this is, before the Lightning trainer exists, and waiting for rank 0.

Under Lightning's subprocess launcher (strategy ``ddp``), ``torchrun`` and SLURM's ``srun``
the whole of :func:`modalens.training.fit` runs in every process. Only global rank 0 prepares
the run folder (``config.yaml``, ``stats.json``, ``dataset.yaml``, ``masking.csv``); the
other ranks read what it wrote. :func:`is_global_zero` tells the rank from the variables the
launchers set (``RANK``, ``LOCAL_RANK``, ``NODE_RANK``, ``GROUP_RANK``, ``SLURM_PROCID``: the
global rank-0 process has every one of them unset or 0), and :func:`wait_for_files` lets a
rank > 0 wait (``torchrun`` starts every rank at once) until rank 0's files exist, with a
timeout (``MODALENS_RANK_WAIT`` seconds, default 1800) and a one-line error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelError

#: the variables launchers set to a process's rank (global, local, node)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


#: seconds a rank > 0 waits for rank 0's files by default
DEFAULT_WAIT = 1800.0


def _as_int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def is_global_zero() -> bool:
    """True in the process of global rank 0 (and in a plain single-process run)."""
    return all(_as_int(os.environ.get(v)) == 0 for v in RANK_VARIABLES)


def rank_label() -> str:
    """A short name of this process for messages, e.g. ``rank 1`` or ``node 1, local rank 0``."""
    if os.environ.get("RANK") is not None:
        return f"rank {_as_int(os.environ['RANK'])}"
    if os.environ.get("SLURM_PROCID") is not None:
        return f"rank {_as_int(os.environ['SLURM_PROCID'])}"
    node = _as_int(os.environ.get("NODE_RANK") or os.environ.get("GROUP_RANK"))
    return f"node {node}, local rank {_as_int(os.environ.get('LOCAL_RANK'))}"


def wait_for_files(paths: Sequence[Path], timeout: float | None = None) -> None:
    """Wait until every file in ``paths`` exists (rank 0 writes them).

    Args:
        paths: the files.
        timeout: seconds; None reads ``MODALENS_RANK_WAIT`` (default :data:`DEFAULT_WAIT`).

    Raises:
        ModelError: a file is still missing after ``timeout`` seconds.
    """
    if timeout is None:
        timeout = float(os.environ.get("MODALENS_RANK_WAIT") or DEFAULT_WAIT)
    deadline = time.monotonic() + timeout
    while True:
        missing = [p for p in paths if not Path(p).is_file()]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise ModelError(
                f"{rank_label()} waited {timeout:g} s for rank 0 to write {missing[0].name}",
                str(missing[0].parent),
                "check rank 0's output (the run folder must be shared by all nodes) or set "
                "MODALENS_RANK_WAIT=SECONDS to wait longer",
            )
        time.sleep(0.2)
