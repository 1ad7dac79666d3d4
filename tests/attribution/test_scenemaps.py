"""Window occlusion maps of scene classifiers against a plain loop, and `maps` on a scene run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from helpers import GROUPS, C, H, make_x, tiny_unet

from modalens.attribution import OcclusionEngine
from modalens.attribution.scenemaps import default_window, window_map_fn
from modalens.errors import SpecError


def test_window_map_equals_plain_loop() -> None:
    model = tiny_unet("classification")  # [B, 1] scene logits
    x = make_x(2)
    eng = OcclusionEngine(model, GROUPS, strategies="ones", levels="output", optimize=False)
    w = 3
    got = window_map_fn(eng, torch.tanh, "ones", w)(x).numpy()  # any score transform
    assert got.shape == (2, len(GROUPS), H, H)
    with torch.no_grad():
        base = torch.tanh(model(x))
        for gi, chans in enumerate(GROUPS.values()):
            for r in range(0, H, w):
                for q in range(0, H, w):
                    occ = x.clone()
                    occ[:, chans, r : r + w, q : q + w] = 1.0
                    d = (base - torch.tanh(model(occ))).abs().mean(1).numpy()
                    block = got[:, gi, r : r + w, q : q + w]
                    for i in range(2):  # one value per window, equal to the loop's
                        np.testing.assert_allclose(block[i], d[i], rtol=1e-4, atol=1e-7)
    assert default_window(120, 120) == 15 and default_window(5, 9) == 1
    with pytest.raises(SpecError, match="permute has no meaning"):
        window_map_fn(eng, torch.sigmoid, "permute")
    with pytest.raises(SpecError, match="window must be at least 1"):
        window_map_fn(eng, torch.sigmoid, "zeros", 0)
    assert C == sum(len(v) for v in GROUPS.values())


def test_maps_and_views_on_a_scene_classification_run(bigearthnet_root: Path, tmp_path: Path):
    from modalens.attribution import occlusion_maps, sample_views
    from modalens.data.rasters import RasterGrid  # noqa: F401  (the reader's grid type)
    from modalens.training import fit, load_run

    cfg = {
        "data": {"preset": "bigearthnet", "root": str(bigearthnet_root)},
        "model": {"base_width": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 4, "crop_size": 0, "limit_train_batches": 1},
    }
    run_dir = fit(cfg, out=tmp_path / "ben", progress=False)
    run = load_run(run_dir)
    sid = run.dataset("test").ids[0]
    files = occlusion_maps(run_dir, ids=[sid], out=tmp_path / "m", window=40, preview=False)
    (tif,) = files
    grid = run.reader().grid(sid)
    with rasterio.open(tif) as ds:
        arr = ds.read()
        assert ds.transform == grid.transform and ds.crs == grid.crs
        assert ds.tags()["window"] == "40" and ds.descriptions == ("s2", "s1")
    assert arr.shape == (2, 120, 120) and np.isfinite(arr).all() and (arr >= 0).all()
    # one value per 40 px window: 3 x 3 blocks per group
    for g in range(2):
        blocks = arr[g].reshape(3, 40, 3, 40)
        assert np.all(blocks == blocks[:, :1, :, :1])
    out = sample_views(run_dir, ids=[sid], out=tmp_path / "v")
    assert any(str(p).endswith(".png") for p in out)
