"""The datasets and loaders of a run.

:class:`RunData` holds what a run's data settings say (batch size, crop sizes, augmentation,
seed, workers, weighted sampling) and builds from a dataset spec:

- the *train* dataset: random crops of ``crop_size`` with augmentation, read through a seeded
  :class:`~modalens.data.sampling.EpochSampler` (optionally weighted by
  :func:`~modalens.data.dataset.make_weighted_sampler`), so a resumed run draws the same
  crops as an uninterrupted one;
- *evaluation* datasets (val, test, any split): deterministic centre crops of
  ``eval_crop_size`` (the train ``crop_size`` when not given; 0 means whole scenes), no
  augmentation;
- their DataLoaders (:func:`~modalens.data.dataset.collate`, a seeded generator, no shuffling:
  the sampler orders the train set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import MultimodalDataset, collate, make_weighted_sampler
from .sampling import EpochDataset, EpochSampler
from .spec import DatasetSpec


class RunData:
    """Builds a run's datasets and loaders from a spec (see the module docstring).

    Args:
        spec: the dataset spec with statistics applied.
        batch_size: items per batch.
        crop_size: train crop edge (None: the spec's; 0: whole scenes).
        eval_crop_size: evaluation crop edge (None: ``crop_size``).
        augment: augmentation options of the train set (None: none).
        seed: seeds crops, augmentation, sampling and the loaders' generators.
        num_workers: DataLoader worker processes.
        weighted_sampling: draw train items with probability ~ 1 / mean target.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        batch_size: int = 16,
        crop_size: int | None = None,
        eval_crop_size: int | None = None,
        augment: Mapping[str, Any] | None = None,
        seed: int = 0,
        num_workers: int = 0,
        weighted_sampling: bool = False,
    ) -> None:
        self.spec = spec
        self.batch_size = int(batch_size)
        self.crop_size = crop_size
        self.eval_crop_size = eval_crop_size if eval_crop_size is not None else crop_size
        self.augment = augment
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.weighted_sampling = bool(weighted_sampling)

    def dataset(
        self,
        split: str,
        train: bool = False,
        ids: Sequence[str] | None = None,
        crop_size: int | None = None,
    ) -> MultimodalDataset:
        """The dataset of ``split``: random, augmented train crops (``train``) or
        deterministic centre crops.

        Args:
            split: ``train``, ``val`` or ``test``.
            train: random crops and augmentation (else centre crops, no augmentation).
            ids: only these samples (default: the whole split).
            crop_size: overrides the crop size of the run.
        """
        if crop_size is None:
            crop_size = self.crop_size if train else self.eval_crop_size
        return MultimodalDataset(
            self.spec,
            split=split,
            ids=ids,
            crop_size=crop_size,
            random_crop=train,
            augment=dict(self.augment) if (train and self.augment) else None,
            seed=self.seed,
        )

    def loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        """A DataLoader of ``dataset`` in the run's batch size and workers (order: ``sampler``,
        else the dataset's)."""
        gen = torch.Generator()
        gen.manual_seed(self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=gen,
            drop_last=False,
        )

    def fit_loaders(self) -> tuple[DataLoader, DataLoader]:
        """The loaders :func:`modalens.training.fit` trains with.

        Returns:
            ``(train, val)``: a seeded epoch sampler over the train crops (weighted when
            configured) and the val loader.
        """
        train_ds = self.dataset("train", train=True)
        val_ds = self.dataset("val")
        weights = None
        if self.weighted_sampling:
            weights = make_weighted_sampler(train_ds, seed=self.seed).weights
        sampler = EpochSampler(len(train_ds), seed=self.seed, shuffle=True, weights=weights)
        return self.loader(EpochDataset(train_ds), sampler), self.loader(val_ds)
