"""Seeded per-epoch sampling: a resumed run draws the same samples as an uninterrupted one,
and W processes draw what one process draws.

:class:`EpochSampler` yields ``(epoch, draw, index)`` keys -- a shuffle or weighted draw that
depends only on ``(seed, epoch)`` -- and :class:`EpochDataset` passes the epoch and draw to the
wrapped dataset before reading the item, so crops and augmentation seeds follow the key even
inside DataLoader workers. Under DDP rank ``r`` of ``W`` takes positions ``r, r+W, r+2W, ...``
of that one global order (padded by wrapping to a multiple of ``W``, like torch's
DistributedSampler): with a per-process batch of ``B / W`` every optimisation step of W
processes covers exactly the items of the same step of one process with batch ``B``. A padding
key carries a fourth element (``(epoch, draw, index, 1)``): :class:`EpochDataset` reads the item
but marks all its pixels invalid, so it adds nothing to the loss or the metrics.
:class:`RankShard` splits an evaluation set the same way without padding. :func:`derive_seed`
turns a tuple of integers into one well-mixed seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


def derive_seed(*keys: int) -> int:
    """One 32-bit seed from integer keys (e.g. ``seed, epoch, batch``) via numpy's SeedSequence.

    Args:
        keys: integers; each is taken modulo 2**32.

    Returns:
        The seed, stable across processes and platforms.
    """
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


class EpochSampler(Sampler):
    """Yields ``(epoch, draw, index)``: a seeded shuffle (or weighted draw) per epoch, ``draw``
    counting earlier draws of the same index in the epoch; rank ``rank`` of ``world_size``
    processes gets every ``world_size``-th key of that global order (see the module
    docstring).

    Lightning calls :meth:`set_epoch` before every epoch; the order depends only on
    ``(seed, epoch)``, so a resumed run draws the same samples as an uninterrupted one, and
    the epoch travels with the index into DataLoader workers (see :class:`EpochDataset`).
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        shuffle: bool = True,
        weights: Tensor | None = None,
        num_samples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.weights = weights
        self.num_samples = num_samples or n
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch``."""
        self.epoch = int(epoch)

    @property
    def total(self) -> int:
        """Keys in the global (one-process) order of an epoch."""
        return self.num_samples if self.weights is not None else self.n

    def __len__(self) -> int:
        return -(-self.total // self.world_size)

    def global_order(self) -> list[tuple[int, int, int]]:
        """The epoch's keys as one process draws them (before the split across ranks)."""
        return list(self._keys())

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        keys = self.global_order()
        if self.world_size == 1:
            yield from keys
            return
        need = len(self) * self.world_size
        pad = [(*keys[i % len(keys)], 1) for i in range(need - len(keys))] if keys else []
        yield from [*keys, *pad][self.rank :: self.world_size]

    def _keys(self) -> Iterator[tuple[int, int, int]]:
        gen = torch.Generator()
        gen.manual_seed(derive_seed(self.seed, self.epoch, 0x5A3))
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.num_samples, True, generator=gen)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        seen: dict[int, int] = {}
        for i in order.tolist():
            draw = seen.get(i, 0)  # repeated draws of an item get their own crop
            seen[i] = draw + 1
            yield (self.epoch, draw, int(i))


class EpochDataset(Dataset):
    """Wraps a dataset with ``set_epoch`` so that items are indexed by ``(epoch, draw, index)``
    (a padding key ``(epoch, draw, index, 1)`` gives the item with every pixel invalid)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, ...] | int) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        epoch, draw, index = key[:3]
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch, draw)
        item = self.dataset[index]
        if len(key) > 3 and key[3]:  # wrap-around padding of a DDP rank: counts for nothing
            item = {**item, "valid": torch.zeros_like(item["valid"], dtype=torch.bool)}
        return item


class RankShard(Sampler):
    """Indices ``rank, rank + world_size, ...`` of ``range(n)``: one process's share of an
    evaluation set under DDP (no padding, so no item is counted twice)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.n = int(n)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))
