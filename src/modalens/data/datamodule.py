"""The datasets and loaders of a run.

:class:`RunData` holds what a run's data settings say (batch size, crop sizes, seed, workers,
weighted sampling) and builds from a dataset spec:

- the *train* dataset: random crops of ``crop_size``, each item carrying its augmentation seed
  (``aug_seed``; the training module augments the batch on the device), read through a seeded
  :class:`~modalens.data.sampling.EpochSampler` (optionally weighted by
  :func:`~modalens.data.dataset.make_weighted_sampler`), so a resumed run draws the same
  crops as an uninterrupted one;
- *evaluation* datasets (val, test, any split): deterministic centre crops of
  ``eval_crop_size`` (the train ``crop_size`` when not given; 0 means whole scenes);
- their DataLoaders (:func:`~modalens.data.dataset.collate`, a seeded generator, no shuffling:
  the sampler orders the train set).

``batch_size`` is the *global* batch: :meth:`RunData.fit_loaders` for rank ``r`` of ``W``
processes gives a loader of ``batch_size / W`` items per step over that rank's share of the
one global order (:class:`~modalens.data.sampling.EpochSampler`), and the val loader over
every ``W``-th val item (:class:`~modalens.data.sampling.RankShard`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import SpecError
from .dataset import MultimodalDataset, collate, make_weighted_sampler
from .reader import SampleReader
from .sampling import EpochDataset, EpochSampler, RankShard
from .spec import DatasetSpec


def per_process_batch(batch_size: int, world_size: int) -> int:
    """The items per step of one of ``world_size`` processes sharing a global ``batch_size``.

    Raises:
        SpecError: ``batch_size`` is not a multiple of ``world_size`` (names the key).
    """
    if world_size < 1 or batch_size % world_size:
        raise SpecError(
            f"train.batch_size {batch_size} (the global batch) is not divisible by the "
            f"{world_size} training processes",
            "key 'train.batch_size'",
            f"use a multiple of {world_size}, e.g. {max(1, batch_size // world_size) * world_size}",
        )
    return batch_size // world_size


class RunData:
    """Builds a run's datasets and loaders from a spec (see the module docstring).

    Args:
        spec: the dataset spec with statistics applied.
        batch_size: items per optimisation step over all processes (the global batch).
        crop_size: train crop edge (None: the spec's; 0: whole scenes).
        eval_crop_size: evaluation crop edge (None: ``crop_size``).
        seed: seeds crops, augmentation seeds, sampling and the loaders' generators.
        num_workers: DataLoader worker processes.
        weighted_sampling: draw train items with probability ~ 1 / mean target.
        check_size: ``check_size(height, width, where, training=False)`` refuses an item the
            model cannot take (see :class:`~modalens.data.MultimodalDataset`; ``training=True``
            for train items); None: no check.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        batch_size: int = 16,
        crop_size: int | None = None,
        eval_crop_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        weighted_sampling: bool = False,
        check_size: Callable[..., None] | None = None,
    ) -> None:
        self.spec = spec
        self.batch_size = int(batch_size)
        self.crop_size = crop_size
        self.eval_crop_size = eval_crop_size if eval_crop_size is not None else crop_size
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.weighted_sampling = bool(weighted_sampling)
        self.check_size = check_size

    def dataset(
        self,
        split: str,
        train: bool = False,
        ids: Sequence[str] | None = None,
        crop_size: int | None = None,
    ) -> MultimodalDataset:
        """The dataset of ``split``: random train crops with augmentation seeds (``train``)
        or deterministic centre crops.

        Args:
            split: ``train``, ``val`` or ``test``.
            train: random crops carrying augmentation seeds (else centre crops).
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
            seed=self.seed,
            check_size=partial(self.check_size, training=True)
            if train and self.check_size is not None
            else self.check_size,
        )

    def check_crops(self, splits: Mapping[str, Sequence[str]]) -> list[str]:
        """Refuse a crop size larger than every scene it would be cut from (such a crop is
        silently a whole scene); scene-level targets are never cropped, so not checked.

        The train ``crop_size`` is checked against the train scenes, an ``eval_crop_size``
        given apart against the val scenes; the first scene large enough ends a check, so it
        usually opens one file.

        Args:
            splits: the sample ids of each split.

        Returns:
            Notes for a crop size that is the dataset spec's (not set in the run config): its
            scenes are used whole.

        Raises:
            SpecError: ``train.crop_size`` or ``train.eval_crop_size`` exceeds every scene
                (names the key, the largest scene and a fix).
        """
        if not self.spec.target.is_dense:
            return []
        checks = [("train.crop_size", self.crop_size, "train")]
        if self.eval_crop_size is not None and self.eval_crop_size != self.crop_size:
            checks.append(("train.eval_crop_size", self.eval_crop_size, "val"))
        notes = []
        for key, size, split in checks:
            crop = self.spec.crop_size if size is None else int(size)
            largest = _largest_scene(self.spec, splits.get(split, []), crop)
            if crop <= 0 or largest is None or largest >= crop:
                continue
            what = f"{key} {crop} is larger than every {split} scene (the largest: {largest} px)"
            if size is not None:
                raise SpecError(
                    what + "; whole scenes would be used instead",
                    f"key '{key}'",
                    f"set {key.split('.')[-1]}: {largest} or less (0: whole scenes)",
                )
            notes.append(
                f"the dataset spec's crop_size {crop} is larger than every {split} "
                f"scene (the largest: {largest} px): whole scenes are used"
            )
        return notes

    def loader(
        self, dataset: Dataset, sampler: Sampler | None = None, batch_size: int | None = None
    ) -> DataLoader:
        """A DataLoader of ``dataset`` in the run's batch size (or ``batch_size``) and workers
        (order: ``sampler``, else the dataset's)."""
        gen = torch.Generator()
        gen.manual_seed(self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if batch_size is None else int(batch_size),
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=gen,
            drop_last=False,
        )

    def fit_loaders(self, rank: int = 0, world_size: int = 1) -> tuple[DataLoader, DataLoader]:
        """The loaders :func:`modalens.training.fit` trains with, for process ``rank`` of
        ``world_size``.

        Returns:
            ``(train, val)``: a seeded epoch sampler over the train crops (weighted when
            configured; this rank's share, ``batch_size / world_size`` per step) and the val
            loader (this rank's share of the val set; all of it when it has fewer items
            than there are processes).

        Raises:
            SpecError: ``batch_size`` is not divisible by ``world_size``.
        """
        per_rank = per_process_batch(self.batch_size, world_size)
        train_ds = self.dataset("train", train=True)
        val_ds = self.dataset("val")
        weights = None
        if self.weighted_sampling:
            weights = make_weighted_sampler(train_ds, seed=self.seed).weights
        sampler = EpochSampler(
            len(train_ds),
            seed=self.seed,
            shuffle=True,
            weights=weights,
            rank=rank,
            world_size=world_size,
        )
        # fewer val items than processes: every rank scores all of them (Lightning needs a
        # batch on every rank; the reduced epoch metrics are ratios of sums, so unchanged)
        shard = 1 < world_size <= len(val_ds)
        val_sampler = RankShard(len(val_ds), rank, world_size) if shard else None
        return (
            self.loader(EpochDataset(train_ds), sampler, batch_size=per_rank),
            self.loader(val_ds, val_sampler, batch_size=per_rank),
        )


def _largest_scene(spec: DatasetSpec, ids: Sequence[str], crop: int) -> int | None:
    """The largest square edge (pixels) of the scenes ``ids``, reading until one is at least
    ``crop`` (None without ids or without a crop)."""
    if crop <= 0 or not ids:
        return None
    reader = SampleReader(spec, cache_size=2, check_values=False)
    largest = 0
    try:
        for sid in ids:
            grid = reader.grid(sid)
            largest = max(largest, min(grid.height, grid.width))
            if largest >= crop:
                break
    finally:
        reader.close()
    return largest
