"""A run's datasets and loaders (RunData): crops per split, seeded sampling, weights."""

from __future__ import annotations

from pathlib import Path

from modalens.data import presets
from modalens.data.datamodule import RunData
from modalens.data.sampling import EpochDataset, EpochSampler


def test_train_and_evaluation_datasets(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    data = RunData(spec, batch_size=2, crop_size=32, augment={"hflip": 0.5}, seed=3)
    train = data.dataset("train", train=True)
    assert train.random_crop and train.crop_size == 32 and train.augment is not None
    val = data.dataset("val")
    assert not val.random_crop and val.crop_size == 32 and val.augment is None  # falls back
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
