"""Modality dropout: per-item masks from the item seed, min_keep, rate, fill, and a tiny fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from modalens.errors import SpecError
from modalens.training.dropout import (
    ModalityDropout,
    apply_dropout,
    check_modalities,
    dropout_masks,
)


def test_masks_are_per_item_and_reproducible() -> None:
    seeds = list(range(200))
    a = dropout_masks(seeds, 4, 0.5, 1)
    b = dropout_masks(seeds, 4, 0.5, 1)
    assert torch.equal(a, b)
    # an item's mask depends on its own seed only, not on the batch around it
    assert torch.equal(dropout_masks([seeds[7]], 4, 0.5, 1)[0], a[7])
    assert len({tuple(r.tolist()) for r in a}) > 4  # masks differ between items


def test_min_keep_and_rate() -> None:
    m = dropout_masks(list(range(4000)), 4, 0.5, 1)
    assert int(m.sum(1).min()) >= 1
    m2 = dropout_masks(list(range(4000)), 4, 0.9, 2)
    assert int(m2.sum(1).min()) >= 2
    rate = 1 - dropout_masks(list(range(4000)), 6, 0.3, 1).float().mean().item()
    assert abs(rate - 0.3) < 0.03  # P(all dropped)=0.3**6 barely moves it


def test_filled_channels_equal_fill() -> None:
    x = torch.randn(2, 5, 4, 4)
    keep = torch.tensor([[True, False], [False, True]])
    fill = [0.1, 0.2, 0.3, 0.4, 0.5]
    out = apply_dropout(x, keep, [2, 3], fill)
    assert torch.equal(out[0, :2], x[0, :2])
    assert torch.allclose(out[0, 2:], torch.tensor(fill[2:])[:, None, None].expand(3, 4, 4))
    assert torch.allclose(out[1, :2], torch.tensor(fill[:2])[:, None, None].expand(2, 4, 4))
    assert torch.equal(out[1, 2:], x[1, 2:])


@pytest.mark.parametrize(
    ("cfg", "text"),
    [({"p": 1.0}, "outside [0, 1)"), ({"fill": "permute"}, "unknown dropout fill")],
)
def test_config_errors_one_line(cfg: dict, text: str) -> None:
    from modalens.training.config import TrainConfig

    with pytest.raises(SpecError) as e:
        TrainConfig.model_validate({"modality_dropout": cfg})
    assert text in str(e.value) and "\n" not in str(e.value)


def test_min_keep_above_modalities() -> None:
    with pytest.raises(SpecError, match="min_keep=5 but the run has 4"):
        check_modalities(ModalityDropout(min_keep=5), 4)


def test_tiny_fit_records_dropout(tmp_path: Path) -> None:
    from modalens.data import synthetic
    from modalens.training import fit
    from tests.helpers import tiny_config

    root = synthetic.generate_synthetic(tmp_path / "d", samples=6, size=64, seed=0, progress=False)
    cfg = tiny_config(root, epochs=1, modality_dropout={"p": 0.5, "fill": "mean"})
    run = fit(cfg, tmp_path / "run", progress=False)
    folder = Path(getattr(run, "path", tmp_path / "run"))
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["train"]["modality_dropout"]["p"] == 0.5
    ck = torch.load(next(folder.rglob("*.ckpt")), map_location="cpu", weights_only=False)
    hp = ck["hyper_parameters"]["modality_dropout"]
    assert hp["fill"] == "mean" and len(hp["fill_values"]) == sum(hp["channels"])
    assert np.isfinite(hp["fill_values"]).all()
    # a dropout run loads safely and predicts with a modality missing using its own fill
    from modalens.training.dropout import missing_fill
    from modalens.training.run import load_run

    loaded = load_run(folder, device="cpu")
    fills = missing_fill(loaded, ["s1"])
    n0 = sum(m.n_channels for m in loaded.spec.modalities[:1])
    np.testing.assert_allclose(fills["s1"], hp["fill_values"][n0 : n0 + len(fills["s1"])])
