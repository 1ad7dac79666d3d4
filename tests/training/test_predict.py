"""Sliding-window inference and whole-scene prediction to GeoTIFF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from modalens.data import synthetic
from modalens.data.reader import SampleReader
from modalens.errors import ModelError
from modalens.training import evaluate, fit, load_run, predict
from modalens.training.tiling import ArrayReader, blend_weights, sliding_window, tile_starts


def _pointwise(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[:, 0] * 2 + 1, x[:, 1] - x[:, 2]], dim=1)


@pytest.mark.parametrize("size", [(64, 64), (100, 75), (20, 40)])
def test_sliding_window_reproduces_a_pointwise_function(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, *size)).astype(np.float32)
    reader = ArrayReader({"a": image})
    out = sliding_window(_pointwise, reader, "a", tile=32, overlap=8, out_channels=2, batch_size=3)
    expected = _pointwise(torch.from_numpy(image)[None])[0].numpy()
    assert out.shape == (2, *size) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_sliding_window_reads_tiles_only_and_masks_invalid() -> None:
    image = np.ones((2, 80, 80), np.float32)
    valid = np.ones((80, 80), bool)
    valid[10:20, 30:40] = False
    windows: list[tuple[int, int, int, int]] = []

    class Counting(ArrayReader):
        def read(self, sample_id, window=None):
            windows.append(window)
            return super().read(sample_id, window)

    reader = Counting({"a": image}, {"a": valid})
    out, v = sliding_window(
        lambda x: x[:, :1], reader, "a", tile=32, overlap=16, return_valid=True, fill=-1.0
    )
    assert all(w is not None and w[2] <= 32 and w[3] <= 32 for w in windows)
    assert len(windows) == len(tile_starts(80, 32, 16)) ** 2
    assert np.array_equal(v, valid)
    assert (out[0][~valid] == -1).all() and np.allclose(out[0][valid], 1.0)


def test_tiling_helpers_and_errors() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 8) == [0]
    w = blend_weights(32, 8)
    assert w.min() > 0 and w[16] == 1 and np.allclose(w, w[::-1])
    reader = ArrayReader({"a": np.zeros((1, 64, 64), np.float32)})
    with pytest.raises(ModelError, match="multiple of the model's downsampling factor 16"):
        sliding_window(lambda x: x, reader, "a", tile=40)
    with pytest.raises(ModelError, match="overlap"):
        sliding_window(lambda x: x, reader, "a", tile=32, overlap=32)


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("predict")
    root = synthetic.generate_synthetic(base / "data", samples=6, size=64, seed=1, progress=False)
    cfg = {
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 32},
    }
    return fit(cfg, out=base / "run", progress=False), root


def test_predict_writes_geotiff_with_input_grid(run_and_data: tuple[Path, Path], tmp_path) -> None:
    run_dir, root = run_and_data
    ids = ["100000", "100003"]
    paths = predict(run_dir, ids=ids, out_dir=tmp_path / "pred", tile=32, overlap=8)
    assert [p.name for p in paths] == [f"{i}.tif" for i in ids]
    for sid, path in zip(ids, paths, strict=True):
        with (
            rasterio.open(root / "s2_temporal_subset" / f"{sid}.tif") as src,
            rasterio.open(path) as dst,
        ):
            assert dst.crs == src.crs
            assert dst.transform == src.transform
            assert (dst.width, dst.height, dst.count) == (src.width, src.height, 1)
            assert dst.dtypes[0] == "float32"
            pred = dst.read(1)
        _, valid = _inputs(run_dir, sid)
        assert valid.mean() > 0.5
        np.testing.assert_array_equal(np.isfinite(pred), valid)  # no-data exactly where invalid


def _inputs(run_dir: Path, sid: str) -> tuple[np.ndarray, np.ndarray]:
    """The scene's normalised inputs ``[C, H, W]`` and their valid mask, read whole."""
    reader = SampleReader(load_run(run_dir).spec)
    try:
        return reader.read_inputs(sid)
    finally:
        reader.close()


@pytest.mark.parametrize("tile", [256, 64])
def test_predict_equals_the_forward_pass_on_a_whole_scene(
    run_and_data: tuple[Path, Path], tmp_path: Path, tile: int
) -> None:
    # a 64 px scene fits one tile: the sliding window must give the model's own output on the
    # whole scene (inputs zeroed where invalid, as in training), times the target's scale
    run_dir, root = run_and_data
    sid = "100002"
    (path,) = predict(run_dir, ids=[sid], out_dir=tmp_path / "p", tile=tile, overlap=0)
    image, valid = _inputs(run_dir, sid)
    model = load_run(run_dir).model.eval()
    x = torch.from_numpy(np.where(valid[None], image, 0.0).astype(np.float32))[None]
    with torch.inference_mode():
        expected = model(x)[0, 0].numpy() * 100.0
    expected[~valid] = np.nan
    with (
        rasterio.open(path) as dst,
        rasterio.open(root / "s2_temporal_subset" / f"{sid}.tif") as src,
    ):
        got = dst.read(1)
        assert dst.crs == src.crs and dst.transform == src.transform
        assert dst.nodata is not None and np.isnan(dst.nodata)
    assert got.shape == expected.shape == (64, 64)
    assert np.ptp(expected[valid]) > 0.01  # a prediction that varies over the scene
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # NaN where invalid too


def test_predict_on_other_root_without_targets(run_and_data, tmp_path: Path) -> None:
    run_dir, root = run_and_data
    import shutil

    other = tmp_path / "new"
    for folder in ("s2_temporal_subset", "s1", "ESA_WC", "VIIRS"):
        shutil.copytree(root / folder, other / folder)
    paths = predict(run_dir, data_root=other, out_dir=tmp_path / "p2", tile=32, overlap=0)
    assert len(paths) == 6 and all(p.exists() for p in paths)


def test_predict_scene_labels_json(bigearthnet_root: Path, tmp_path: Path) -> None:
    cfg = {
        "data": {"preset": "bigearthnet", "root": str(bigearthnet_root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 1, "batch_size": 4, "crop_size": 0, "limit_train_batches": 1},
    }
    run_dir = fit(cfg, out=tmp_path / "ben", progress=False)
    (path,) = predict(run_dir, out_dir=tmp_path / "p")
    info = json.loads(path.read_text())
    assert path.suffix == ".json" and len(info["probabilities"]) == 43
    assert all(0 <= p <= 1 for p in info["probabilities"].values())
    assert set(info) >= {"probabilities", "predicted"}
    # per-sample scene metrics are defined per sample (over its labels), not NaN
    table = evaluate(run_dir)
    per = table[table["id"] != "all"]
    assert len(per) > 0
    for col in ("f1", "map", "label_accuracy"):
        assert per[col].notna().all() and per[col].between(0, 1).all(), col
