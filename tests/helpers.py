"""Tiny shared test material: georeferenced MapInWild-layout rasters and hand-checkable models.

- :func:`write_mapinwild` writes a tiny MapInWild folder readable with
  ``mapinwild_spec(root)`` (NI target) or ``mapinwild_spec(root, target="mask")``:
  ``s2_temporal_subset/ s1/ ESA_WC/ VIIRS/ NI/ mask/ split_IDs.csv`` with numeric ids and a
  NaN-padded split file.
- :func:`tiny_unet`, :func:`make_x`, :func:`batch`: a 6-channel U-Net small enough to
  evaluate by brute force, inputs and batch dicts for it (groups :data:`GROUPS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from affine import Affine
from rasterio.crs import CRS
from torch import nn

from modalens.data.rasters import write_geotiff
from modalens.models import UNet
from modalens.tasks import get_task

WORLDCOVER = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
CRS_UTM = CRS.from_epsg(32633)


def write_mapinwild(
    root: Path,
    n: int = 10,
    size: int = 64,
    seed: int = 0,
    splits: Sequence[int] = (6, 2, 2),
    ni_nan_fraction: float = 0.1,
    blocksize: int = 256,
    compress: str = "deflate",
    with_mask: bool = True,
    origin: tuple[float, float] = (400000.0, 5300000.0),
) -> Path:
    """Write ``n`` samples (ids "1".."n") of ``size``x``size`` px at 10 m, UTM 33N."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    ids = [str(i + 1) for i in range(n)]
    for k, sid in enumerate(ids):
        # scenes side by side so their extents differ, like real tiles
        t = Affine(10.0, 0.0, origin[0] + k * size * 10.0, 0.0, -10.0, origin[1])
        kw = {"crs": CRS_UTM, "transform": t, "blocksize": blocksize, "compress": compress}
        s2 = rng.integers(0, 10000, size=(10, size, size)).astype(np.uint16)
        write_geotiff(root / "s2_temporal_subset" / f"{sid}.tif", s2, **kw)
        s1 = rng.normal([[[-11.0]], [[-18.0]]], 3.0, size=(2, size, size)).astype(np.float32)
        write_geotiff(root / "s1" / f"{sid}.tif", s1, **kw)
        wc = rng.choice(np.array(WORLDCOVER, np.uint8), size=(1, size, size))
        write_geotiff(root / "ESA_WC" / f"{sid}.tif", wc, **kw)
        viirs = rng.gamma(1.0, 2.0, size=(1, size, size)).astype(np.float32)
        write_geotiff(root / "VIIRS" / f"{sid}.tif", viirs, **kw)
        ni = rng.uniform(0, 100, size=(1, size, size)).astype(np.float32)
        if ni_nan_fraction > 0:
            ni[rng.random(ni.shape) < ni_nan_fraction] = np.nan
        write_geotiff(root / "NI" / f"{sid}.tif", ni, nodata=float("nan"), **kw)
        if with_mask:
            mask = rng.integers(0, 4, size=(1, size, size)).astype(np.uint8)
            write_geotiff(root / "mask" / f"{sid}.tif", mask, **kw)
    n_train, n_val, _ = splits
    cols = {
        "train": ids[:n_train],
        "validation": ids[n_train : n_train + n_val],
        "test": ids[n_train + n_val :],
    }
    longest = max(len(v) for v in cols.values())
    df = pd.DataFrame(
        {k: [float(x) for x in v] + [np.nan] * (longest - len(v)) for k, v in cols.items()}
    )
    df.to_csv(root / "split_IDs.csv", index=False)
    return root


GROUPS = {"a": [0, 1, 2], "b": [3, 4], "c": [5]}
C, H = 6, 16


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def tiny_unet(task: str = "regression", seed: int = 0, randomize_bn: bool = True) -> UNet:
    """A 6-channel width-4 depth-2 U-Net in eval mode (BatchNorm statistics randomised so
    that folding them is exercised)."""
    torch.manual_seed(seed)
    model = get_task(task, 1).build_model(C, base_width=4, depth=2)
    return _randomize_bn(model, seed) if randomize_bn else model.eval()


def make_x(b: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, C, H, H, generator=torch.Generator().manual_seed(seed))


def batch(b: int = 4, seed: int = 1, prefix: str = "s") -> dict:
    g = torch.Generator().manual_seed(seed + 100)
    return {
        "image": make_x(b, seed),
        "target": torch.rand(b, 1, H, H, generator=g),
        "valid": torch.rand(b, H, H, generator=g) > 0.3,
        "id": [f"{prefix}{seed}_{i}" for i in range(b)],
        "window": [(0, i, H, H) for i in range(b)],
    }


def tiny_config(root: Path, **train: object) -> dict:
    """A run config of a width-8 depth-2 U-Net trained 2 epochs on 32 px crops (``train``
    keys override)."""
    cfg = {
        "name": "tiny",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 2, "batch_size": 2, "lr": 1e-3, "crop_size": 32, "patience": 5},
    }
    cfg["train"].update(train)
    return cfg


def mtl_config(root: Path, **auxiliary: object) -> dict:
    """A tiny multitask regression config: s2 in; s1, viirs and esa_wc auxiliary; one epoch
    (``auxiliary`` keys override the section)."""
    cfg = tiny_config(root, epochs=1)
    cfg["inputs"] = ["s2"]
    cfg["auxiliary"] = {"targets": ["s1", "viirs", "esa_wc"], **auxiliary}
    return cfg


def config_copy(run: Path, folder: Path, epochs: int | None = None, **extra: object) -> str:
    """A copy of ``run``'s ``config.yaml`` in ``folder`` with ``extra`` top-level keys (and
    ``train.epochs`` when given); its path."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    cfg.update(extra)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def first_test_id(run: Path) -> str:
    """The first test-split sample id of ``run``'s dataset (its ``split_IDs.csv``)."""
    root = Path(yaml.safe_load((run / "config.yaml").read_text())["data"]["root"])
    rows = [r.split(",") for r in (root / "split_IDs.csv").read_text().splitlines()]
    return rows[1][rows[0].index("test")].strip()
