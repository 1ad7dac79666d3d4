"""The torch dataset of a split: crops of samples, augmentation seeds, sample weights, collation.

:class:`MultimodalDataset` gives (random or centre) crops of a split's samples as tensors
(the sample dict of :mod:`modalens.data.reader`); random windows and the items' augmentation
seeds (``aug_seed``, applied to the batch on the device by
:func:`~modalens.data.augment.augment_batch`) are derived from ``(seed, epoch, draw, index)``,
so a resumed run, or one on more processes, sees the same crops and augmentations. Crops whose
target is all no-data are redrawn. A spec's auxiliary modalities are added to each item as
targets (:mod:`modalens.data.auxiliary`). :func:`make_weighted_sampler` draws
patches with probability ~ 1 / mean target (continuous targets); :func:`collate` stacks items
into a batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, WeightedRandomSampler

from ..errors import DataError, SpecError
from .augment import AUG_SEED
from .auxiliary import AuxiliaryReader
from .rasters import RasterGrid, WindowTuple
from .reader import SampleReader, assemble
from .samples import sample_ids
from .spec import SPLIT_NAMES, DatasetSpec
from .targets import TARGET_KIND_INFO

MAX_CROP_TRIES = 20


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


class MultimodalDataset(Dataset):
    """Crops of samples as torch tensors (see the module docstring for the item dict).

    ``crop_size=None`` takes ``spec.crop_size``; ``0`` or larger than the scene means the whole
    scene; scene-label targets are never cropped (a smaller crop gives one warning).
    ``random_crop=None`` means random crops for ``split='train'`` and centre crops
    otherwise. Random windows come from an RNG seeded by ``(seed, epoch, index)`` (call
    :meth:`set_epoch` every epoch). Crops whose target is all no-data are redrawn up to
    ``max_tries`` times, then a DataError names the sample. ``check_size(height, width, where)``
    (e.g. the model's :func:`~modalens.models.check_input_size`) is called on every item's
    size before it is read, so an input the model cannot take fails in one line. Random-crop
    items carry ``aug_seed`` (:data:`AUG_SEED`), their augmentation seed derived the same way.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        split: str = "train",
        ids: Sequence[str] | None = None,
        crop_size: int | None = None,
        random_crop: bool | None = None,
        seed: int = 0,
        max_tries: int = MAX_CROP_TRIES,
        check_size: Callable[[int, int, str], None] | None = None,
    ) -> None:
        if split not in SPLIT_NAMES:
            raise SpecError(f"unknown split {split!r}", None, f"use {', '.join(SPLIT_NAMES)}")
        for m in (*spec.modalities, *spec.auxiliary):
            if m.normalization.needs_statistics:
                raise SpecError(
                    f"modality {m.name!r} needs train statistics (standard normalisation "
                    "without mean/std)",
                    spec.source_file,
                    "call modalens.stats.apply_statistics(spec, stats) first",
                )
        self.spec = spec
        self.split = split
        self.ids = [str(i) for i in ids] if ids is not None else sample_ids(spec)[split]
        self.crop_size = spec.crop_size if crop_size is None else int(crop_size)
        self.random_crop = (split == "train") if random_crop is None else bool(random_crop)
        #: scene-level targets are never cropped (see :meth:`_size`)
        self.scene_target = not TARGET_KIND_INFO[spec.target.kind].dense
        self.crop_warned = False
        self.seed = int(seed)
        self.epoch = 0
        self.draw = 0
        self.max_tries = max(1, int(max_tries))
        #: ``check_size(height, width, where)`` raises for an input the model cannot take
        self.check_size = check_size
        self.reader = SampleReader(spec)
        self.aux_reader = AuxiliaryReader(spec)

    def set_epoch(self, epoch: int, draw: int = 0) -> None:
        """Select the crops and augmentations of ``epoch``; ``draw`` counts repeated draws of
        the same item within the epoch (weighted sampling with replacement), so each draw of a
        scene gets its own random window."""
        self.epoch = int(epoch)
        self.draw = int(draw)

    def __len__(self) -> int:
        return len(self.ids)

    def _size(self, grid: RasterGrid) -> tuple[int, int]:
        c = self.crop_size
        if c <= 0:
            return grid.height, grid.width
        if self.scene_target and (c < grid.height or c < grid.width):
            if not self.crop_warned:
                self.crop_warned = True
                warnings.warn(
                    f"crop_size {c} ignored: a scene label describes the whole "
                    f"{grid.height}x{grid.width} patch, a crop would not be what it names; "
                    "using whole patches (set crop_size: 0 to silence this)",
                    stacklevel=3,
                )
            return grid.height, grid.width
        return min(c, grid.height), min(c, grid.width)

    def windows(self, index: int) -> list[WindowTuple]:
        """The candidate windows of item ``index`` in order (first is used unless redrawn)."""
        sid = self.ids[index]
        grid = self.reader.grid(sid)
        h, w = self._size(grid)
        if self.check_size is not None:
            self.check_size(h, w, f"sample {sid!r} of the {self.split} split")
        if (h, w) == (grid.height, grid.width):
            return [(0, 0, h, w)]
        out: list[WindowTuple] = []
        if self.random_crop:
            rng = _rng(self.seed, self.epoch, self.draw, index)
        else:
            out.append(((grid.height - h) // 2, (grid.width - w) // 2, h, w))
            rng = _rng(self.seed, 0x5EED, index)
        while len(out) < self.max_tries:
            r = int(rng.integers(0, grid.height - h + 1))
            c = int(rng.integers(0, grid.width - w + 1))
            out.append((r, c, h, w))
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        sid = self.ids[index]
        reader = self.reader
        check = self.spec.target.is_dense
        tried = 0
        for win in self.windows(index):
            tried += 1
            target, tvalid = reader.read_target(sid, win)
            if not check or tvalid.any():
                break
        else:
            raise DataError(
                f"target of sample {sid!r} is all no-data in {tried} crops",
                str(reader.target_path(sid)),
                "remove the sample from the split or check the target's nodata value",
            )
        image, ivalid = reader.read_inputs(sid, win)
        item = assemble(self.spec, sid, win, image, ivalid, target, tvalid)
        img = torch.from_numpy(item["image"])
        tgt = torch.from_numpy(item["target"])
        valid = torch.from_numpy(item["valid"])
        aux = {
            k: torch.from_numpy(v)
            for k, v in self.aux_reader.read(sid, win, reader.grid(sid)).items()
        }
        out = {"image": img, "target": tgt, "valid": valid, "id": sid, "window": tuple(win)}
        if self.random_crop:
            seed = int(_rng(self.seed, self.epoch, self.draw, index, 0xA06).integers(0, 2**62))
            out[AUG_SEED] = torch.tensor(seed, dtype=torch.int64)
        return {**out, **aux}


def target_means(reader: SampleReader, ids: Sequence[str], max_size: int = 128) -> np.ndarray:
    """Mean scaled target per sample over valid pixels, from a decimated whole-scene read
    (nearest, at most ``max_size`` pixels per side): cheap and close to the full mean.
    NaN for samples whose target is all no-data."""
    out = np.full(len(ids), np.nan)
    for k, sid in enumerate(ids):
        grid = reader.grid(sid)
        factor = max(1.0, max(grid.width, grid.height) / max_size)
        g = grid.scaled(factor) if factor > 1 else grid
        target, tvalid = reader.read_target(sid, None, grid=g)
        if tvalid.any():
            out[k] = float(
                np.asarray(target, np.float64).reshape(-1, *tvalid.shape)[:, tvalid].mean()
            )
    return out


def make_weighted_sampler(
    dataset: MultimodalDataset,
    seed: int = 0,
    eps: float = 1e-3,
    num_samples: int | None = None,
    max_size: int = 128,
) -> WeightedRandomSampler:
    """WeightedRandomSampler with weight ``1 / max(mean target, eps)`` per patch.

    The mean is over the valid pixels of the sample's whole target read at a decimated
    resolution (see :func:`target_means`), so building the sampler costs one small read per
    sample. Samples whose target is all no-data get weight 0. Targets other than continuous
    (classes, scene labels) get uniform weights. Sampling is reproducible through a torch
    generator seeded with ``seed``.
    """
    n = len(dataset)
    if dataset.spec.target.is_continuous:
        means = target_means(dataset.reader, dataset.ids, max_size=max_size)
        weights = np.where(np.isnan(means), 0.0, 1.0 / np.maximum(np.nan_to_num(means), eps))
        if not (weights > 0).any():
            weights = np.ones(n)
    else:
        weights = np.ones(n)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return WeightedRandomSampler(
        # torch annotates Sequence[float]; the sampler takes a tensor (as_tensor inside)
        torch.as_tensor(weights, dtype=torch.double),  # type: ignore[arg-type]
        num_samples=n if num_samples is None else int(num_samples),
        replacement=True,
        generator=gen,
    )


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep ids and windows as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(vals))
        else:
            out[key] = vals
    return out
