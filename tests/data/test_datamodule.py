"""A run's datasets and loaders (RunData): crops per split, seeded sampling, weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from modalens.data import presets
from modalens.data.datamodule import RunData
from modalens.data.sampling import EpochDataset, EpochSampler
from modalens.errors import SpecError


def test_train_and_evaluation_datasets(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    data = RunData(spec, batch_size=2, crop_size=32, seed=3)
    train = data.dataset("train", train=True)
    assert train.random_crop and train.crop_size == 32 and "aug_seed" in train[0]
    val = data.dataset("val")
    assert not val.random_crop and val.crop_size == 32 and "aug_seed" not in val[0]  # falls back
    whole = RunData(spec, crop_size=32, eval_crop_size=0).dataset("test", ids=["9"])
    assert whole.crop_size == 0 and whole.ids == ["9"] and whole[0]["image"].shape[-1] == 64


def test_fit_loaders_are_seeded_and_weighted_when_asked(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    train_dl, val_dl = RunData(
        spec, batch_size=2, crop_size=16, weighted_sampling=True
    ).fit_loaders()
    assert isinstance(train_dl.dataset, EpochDataset) and isinstance(train_dl.sampler, EpochSampler)
    assert train_dl.sampler.weights is not None and train_dl.batch_size == 2
    assert len(val_dl.dataset) == 2 and not isinstance(val_dl.sampler, EpochSampler)
    first = [b["window"] for b in train_dl]
    again = RunData(spec, batch_size=2, crop_size=16, weighted_sampling=True).fit_loaders()[0]
    assert first == [b["window"] for b in again]  # same seed, same crops
    plain, _ = RunData(spec, batch_size=2, crop_size=16).fit_loaders()
    assert plain.sampler.weights is None


def test_fit_loaders_share_the_global_batch_between_ranks(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    data = RunData(spec, batch_size=4, crop_size=16, seed=1)
    (one, one_val) = data.fit_loaders()
    ranks = [data.fit_loaders(rank=r, world_size=2) for r in range(2)]
    assert one.batch_size == 4 and all(t.batch_size == 2 for t, _ in ranks)
    # every step of 2 processes reads the items (and augmentation seeds) of the same 1-process step
    for step, batch in enumerate(one):
        parts = [list(iter(t))[step] for t, _ in ranks]
        assert sorted(batch["window"]) == sorted(w for p in parts for w in p["window"])
        assert sorted(batch["aug_seed"].tolist()) == sorted(
            s for p in parts for s in p["aug_seed"].tolist()
        )
    val_ids = [i for _, v in ranks for b in v for i in b["id"]]
    assert sorted(val_ids) == sorted(i for b in one_val for i in b["id"])
    with pytest.raises(SpecError, match="train.batch_size 4 .* not divisible by the 3 training"):
        data.fit_loaders(rank=0, world_size=3)
    # 6 items on 4 ranks: the last step's 2 items, then 2 wrap-around items counting for nothing
    last = [list(iter(data.fit_loaders(rank=r, world_size=4)[0]))[1] for r in range(4)]
    assert sorted(w for b in last[:2] for w in b["window"]) == sorted(list(one)[1]["window"])
    assert [bool(b["valid"].any()) for b in last] == [True, True, False, False]
