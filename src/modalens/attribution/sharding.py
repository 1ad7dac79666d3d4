"""Sharded attribution: the processes of one attribution and the share of the work of each.

:func:`launch` starts (or joins) the processes of a run through Lightning Fabric
(``Fabric(accelerator, devices, num_nodes, strategy="ddp")`` + ``launch()``): on one machine
Fabric re-runs the current command for ranks 1..N-1; under ``torchrun`` or a SLURM ``srun``
it joins the processes those started. ``devices=1`` on one node starts nothing and returns the
single-process :class:`Shard` (no Fabric, no process group). :func:`launch` is a context
manager: while it is open each process has ``cores / processes`` torch threads unless
``OMP_NUM_THREADS`` was set (:func:`modalens.threads.threads_per_process`); the thread count
and the environment are restored when it closes (:func:`modalens.scope.scoped_process`; the
process stays in its process group).

A :class:`Shard` says which batches or samples are this rank's (:meth:`Shard.pick`: round
robin over the work still to do, so a resumed run is balanced too) and synchronises the ranks
(:meth:`Shard.barrier`). Rank 0 alone creates the output folder and writes what exists once
per dataset; the others only write their own per-batch or per-sample files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy

from ..errors import SpecError
from ..scope import scoped_process
from ..threads import threads_per_process

T = TypeVar("T")

#: accelerators Fabric understands (``auto`` picks a GPU when there is one)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
#: how long a rank waits at a barrier for the others (the slowest rank's last batch)
BARRIER_TIMEOUT = timedelta(hours=12)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Shard:
    """One process of a (possibly single-process) attribution.

    Attributes:
        rank: this process's global rank (0 writes the dataset-level outputs).
        world: the number of processes.
        device: where this rank runs its model (None: where the model already is).
        sync: waits until every rank got here (a no-op for one process).
    """

    rank: int = 0
    world: int = 1
    device: torch.device | None = None
    sync: Callable[[], None] = field(default=_nothing, repr=False, compare=False)
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def main(self) -> bool:
        """Whether this is rank 0, which writes everything written once."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        """Whether there is more than one process."""
        return self.world > 1

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for with one process)."""
        if self.sharded:
            self.sync()

    def total(self, counts: Mapping[str, int]) -> dict[str, int]:
        """``counts`` summed over the ranks (every rank must call it; one process: a copy)."""
        if not self.sharded or self.reduce is None:
            return dict(counts)
        summed = self.reduce(torch.tensor([int(v) for v in counts.values()], dtype=torch.int64))
        return {k: int(v) for k, v in zip(counts, summed.tolist(), strict=True)}

    def pick(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every ``world``-th one from position ``rank``
        (round robin keeps the shares within one item of each other)."""
        return list(items[self.rank :: self.world])


def check_launch(devices: int, num_nodes: int = 1, accelerator: str = "auto") -> None:
    """Refuse impossible process counts and unknown accelerators with one line.

    Raises:
        SpecError: ``devices`` or ``num_nodes`` below 1 or not whole numbers, an unknown
            accelerator, or a ``torchrun`` launch of several processes with ``devices=1``.
    """
    checks = (("devices", devices, "--devices"), ("nodes", num_nodes, "--num-nodes"))
    for name, value, flag in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(
                f"{name} must be a whole number of at least 1, got {value!r}",
                flag,
                f"pass e.g. {flag} 2" + (" (processes per node)" if name == "devices" else ""),
            )
    if accelerator not in ACCELERATORS:
        raise SpecError(
            f"unknown accelerator {accelerator!r}",
            "--accelerator",
            f"use one of {', '.join(ACCELERATORS)}",
        )
    launched = all(k in os.environ for k in ("RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE"))
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if devices * num_nodes == 1 and launched and world > 1:
        raise SpecError(
            f"started by torchrun as {world} processes but asked for one (devices 1, 1 node)",
            "--devices",
            "pass --devices <processes per node> --num-nodes <nodes> matching torchrun's",
        )


@contextmanager
def launch(devices: int = 1, num_nodes: int = 1, accelerator: str = "auto") -> Iterator[Shard]:
    """Start or join the processes of a sharded attribution (see the module docstring)::

        with launch(devices=2, accelerator="cpu") as shard:
            ...  # this rank's share: shard.pick(items)

    Called from a script, the script must be importable without side effects (guard it with
    ``if __name__ == "__main__":``): Fabric re-runs it for ranks 1..N-1.

    Args:
        devices: processes per node (one per GPU, or CPU processes).
        num_nodes: machines.
        accelerator: ``auto``, ``cpu``, ``gpu``/``cuda`` or ``mps``.

    Yields:
        This process's :class:`Shard`.

    Raises:
        SpecError: see :func:`check_launch`.
    """
    check_launch(devices, num_nodes, accelerator)
    if devices * num_nodes == 1:
        if accelerator in ("gpu", "cuda"):
            yield Shard(device=torch.device("cuda"))
        else:
            device = torch.device(accelerator) if accelerator in ("cpu", "mps") else None
            yield Shard(device=device)
        return
    with scoped_process():  # the threads per process and OMP_NUM_THREADS, restored after
        threads = threads_per_process(devices)
        torch.set_num_threads(threads)
        fabric = Fabric(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=DDPStrategy(timeout=BARRIER_TIMEOUT),
        )
        fabric.launch()
        torch.set_num_threads(threads)

        def add(t: torch.Tensor) -> torch.Tensor:
            # Fabric.all_reduce is typed for collections too; a tensor in gives a tensor out
            return fabric.all_reduce(t.to(fabric.device), reduce_op="sum").cpu()  # type: ignore[union-attr]

        yield Shard(fabric.global_rank, fabric.world_size, fabric.device, fabric.barrier, add)
