"""Shared fixtures: a tiny MapInWild-layout dataset of small georeferenced GeoTIFFs.

``make_mapinwild(**options) -> Path`` writes one (into ``tmp_path``) readable with
``presets.mapinwild_spec(root)`` (NI target) or ``mapinwild_spec(root, target="mask")``:
``s2_temporal_subset/ s1/ ESA_WC/ VIIRS/ NI/ mask/ split_IDs.csv`` with numeric ids and a
NaN-padded split file. ``mapinwild_root`` is one with the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from modalens.data.rasters import write_geotiff

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


@pytest.fixture
def make_mapinwild(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_mapinwild(name="mapinwild", **write_mapinwild options) -> root``."""

    def make(name: str = "mapinwild", **options: object) -> Path:
        return write_mapinwild(tmp_path / name, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def mapinwild_root(make_mapinwild: Callable[..., Path]) -> Path:
    """A default tiny MapInWild folder (10 samples of 64x64, splits 6/2/2)."""
    return make_mapinwild()


@pytest.fixture
def bigearthnet_root() -> Path:
    """The real BigEarthNet example beside the repository (skips when absent)."""
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigearthnet-example"
    if not root.is_dir():
        pytest.skip(f"BigEarthNet example data not found at {root}")
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run (width 8, depth 2, one epoch) on 6 synthetic 64x64 scenes."""
    from modalens.data import synthetic
    from modalens.training import fit

    base = tmp_path_factory.mktemp("tiny_run")
    root = synthetic.generate(base / "data", samples=6, size=64, seed=0, progress=False)
    cfg = {
        "name": "tiny",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 32, "patience": 5},
    }
    return fit(cfg, out=base / "run", progress=False)
