"""The Lightning data module of a training run: :class:`RunData`'s loaders for this rank.

:class:`FitDataModule` wraps a :class:`~modalens.data.datamodule.RunData` and asks the trainer
which process it runs in (``global_rank`` of ``world_size``) when Lightning requests the
loaders, so the same code trains on one process or under DDP: each rank gets its share of the
one seeded global order, ``batch_size / world_size`` items per step (the trainer keeps
``use_distributed_sampler=False``: our sampler is already distributed).
"""

from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from ..data.datamodule import RunData


class FitDataModule(pl.LightningDataModule):
    """Train and val loaders of ``data`` for the trainer's rank.

    Args:
        data: the run's data settings and spec.
    """

    def __init__(self, data: RunData) -> None:
        super().__init__()
        self.data = data
        self._loaders: tuple[DataLoader, DataLoader] | None = None

    def _fit_loaders(self) -> tuple[DataLoader, DataLoader]:
        if self._loaders is None:
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
            self._loaders = self.data.fit_loaders(rank=rank, world_size=world)
        return self._loaders

    def train_dataloader(self) -> DataLoader:
        """This rank's train loader (seeded epoch sampler, its share of every global batch)."""
        return self._fit_loaders()[0]

    def val_dataloader(self) -> DataLoader:
        """This rank's share of the val set."""
        return self._fit_loaders()[1]
