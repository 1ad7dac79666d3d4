"""TODO docstring: data/datamodule.py"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from .dataset import MultimodalDataset, collate
from .spec import DatasetSpec


def _dataset(spec: DatasetSpec, split: str, cfg: Mapping[str, Any], train: bool) -> Any:

    t = cfg["train"]
    crop = (
        t["crop_size"]
        if train
        else (t["eval_crop_size"] if t["eval_crop_size"] is not None else t["crop_size"])
    )
    return MultimodalDataset(
        spec,
        split=split,
        crop_size=crop,
        random_crop=train,
        augment=dict(t["augment"]) if (train and t["augment"]) else None,
        seed=t["seed"],
    )


def _loader(
    dataset: Any, batch_size: int, sampler: Sampler | None, num_workers: int, seed: int
) -> DataLoader:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=gen,
        drop_last=False,
    )
