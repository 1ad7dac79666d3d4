from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from modalens.data.rasters import (
    RasterCache,
    RasterGrid,
    open_raster,
    plan_read,
    read_onto,
    read_raster,
    write_geotiff,
)
from modalens.errors import DataError

UTM = CRS.from_epsg(32633)
T10 = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5300000.0)


def _grid(width: int, height: int, transform: Affine = T10, crs=UTM) -> RasterGrid:
    return RasterGrid(crs, transform, width, height)


def test_windowed_read_equals_slice_of_full_array(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 10000, size=(3, 512, 512)).astype(np.uint16)
    path = write_geotiff(tmp_path / "a.tif", arr, UTM, T10, blocksize=256)
    with rasterio.open(path) as ds:
        assert ds.block_shapes[0] == (256, 256)  # tiled: a window touches only its blocks
    win = (100, 300, 64, 80)
    out = read_raster(path, window=win)
    assert out.dtype == np.float32 and out.shape == (3, 64, 80)
    np.testing.assert_array_equal(out, arr[:, 100:164, 300:380].astype(np.float32))
    one = read_raster(path, bands=[2], window=win)
    np.testing.assert_array_equal(one[0], arr[1, 100:164, 300:380])


def test_window_grid_and_scaled():
    g = _grid(100, 80)
    w = g.window_grid((10, 20, 30, 40))
    assert (w.width, w.height) == (40, 30)
    assert w.transform.c == 400000.0 + 200.0 and w.transform.f == 5300000.0 - 100.0
    assert g.window_grid(None) is g
    s = g.scaled(4)
    assert (s.width, s.height) == (25, 20) and s.bounds == pytest.approx(g.bounds)
    assert g.contains((0, 0, 80, 100)) and not g.contains((1, 0, 80, 100))


def test_resample_20m_band_onto_10m_grid(tmp_path):
    rng = np.random.default_rng(1)
    coarse = rng.uniform(0, 1000, size=(1, 30, 30)).astype(np.float32)
    t20 = Affine(20.0, 0.0, 400000.0, 0.0, -20.0, 5300000.0)
    path = write_geotiff(tmp_path / "b20.tif", coarse, UTM, t20)
    ref = _grid(60, 60)
    with open_raster(path) as ds:
        plan = plan_read(ds, ref)
        assert plan.mode == "scale"
        full = read_onto(ds, ref, [1], plan, resampling="bilinear")
        near = read_onto(ds, ref, [1], plan, resampling="nearest")
        crop = read_onto(ds, ref, [1], plan, window=(11, 7, 20, 24), resampling="bilinear")
    assert full.shape == (1, 60, 60) and not np.isnan(full).any()
    # nearest = each 20 m pixel repeated 2x2
    np.testing.assert_array_equal(near[0], np.repeat(np.repeat(coarse[0], 2, 0), 2, 1))
    # bilinear stays within the source range and is smooth (differs from nearest)
    assert full.min() >= coarse.min() - 1e-3 and full.max() <= coarse.max() + 1e-3
    assert not np.allclose(full, near)
    # a window of the resampled grid equals the slice of the whole resampled read
    np.testing.assert_allclose(crop[0], full[0, 11:31, 7:31], rtol=1e-4, atol=1e-2)


def test_other_crs_is_warped_and_non_overlap_is_an_error(tmp_path):
    arr = np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64)
    path = write_geotiff(tmp_path / "a.tif", arr, UTM, T10)
    # the same area described in UTM 32N (a real reprojection)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(UTM, "EPSG:32632", 400000, 5299360, 400640, 5300000)
    g32 = RasterGrid(CRS.from_epsg(32632), Affine(10.0, 0, left, 0, -10.0, top), 40, 40)
    with open_raster(path) as ds:
        plan = plan_read(ds, g32)
        assert plan.mode == "warp"
        out = read_onto(ds, g32, [1], plan, resampling="nearest")
    assert out.shape == (1, 40, 40)
    assert np.isfinite(out).mean() > 0.3  # a good part lands inside the source
    far = RasterGrid(UTM, Affine(10.0, 0, 900000.0, 0, -10.0, 100000.0), 10, 10)
    with open_raster(path) as ds:
        with pytest.raises(DataError) as exc:
            plan_read(ds, far, "ref.tif")
    msg = str(exc.value)
    assert "does not overlap" in msg and "ref.tif" in msg and "a.tif" in msg


def test_nodata_becomes_nan_file_and_declared(tmp_path):
    arr = np.array([[[0, 5], [7, 255]]], dtype=np.uint8)
    path = write_geotiff(tmp_path / "n.tif", arr, UTM, T10, nodata=255)
    out = read_raster(path)
    assert math.isnan(out[0, 1, 1]) and out[0, 0, 0] == 0
    out2 = read_raster(path, nodata=0)
    assert math.isnan(out2[0, 0, 0]) and math.isnan(out2[0, 1, 1]) and out2[0, 0, 1] == 5


def test_direct_read_partly_outside_is_nan(tmp_path):
    arr = np.ones((1, 32, 32), np.float32)
    path = write_geotiff(tmp_path / "o.tif", arr, UTM, T10)
    out = read_raster(path, window=(-4, 28, 8, 8))
    assert np.isnan(out[0, :4]).all() and np.isnan(out[0, :, 4:]).all()
    assert (out[0, 4:, :4] == 1).all()


def test_offset_source_on_same_grid_is_direct(tmp_path):
    arr = np.arange(40 * 40, dtype=np.float32).reshape(1, 40, 40)
    shifted = T10 @ Affine.translation(5, 3)  # starts 5 columns right, 3 rows down
    path = write_geotiff(tmp_path / "s.tif", arr, UTM, shifted)
    ref = _grid(50, 50)
    with open_raster(path) as ds:
        plan = plan_read(ds, ref)
        assert (plan.mode, plan.row_shift, plan.col_shift) == ("direct", -3, -5)
        out = read_onto(ds, ref, [1], plan, window=(3, 5, 10, 10))
    np.testing.assert_array_equal(out[0], arr[0, :10, :10])


def test_raster_cache_reuses_and_evicts(tmp_path):
    paths = [
        write_geotiff(tmp_path / f"{i}.tif", np.zeros((1, 8, 8), np.uint8), UTM, T10)
        for i in range(3)
    ]
    cache = RasterCache(size=2)
    a = cache.get(paths[0])
    assert cache.get(paths[0]) is a
    cache.get(paths[1])
    cache.get(paths[2])
    assert a.closed
    cache.close()


def test_windowed_read_touches_only_its_tiles(tmp_path):
    """Corrupt a tile outside the window: the window still reads, the whole file does not."""
    arr = np.random.default_rng(2).normal(size=(1, 512, 512)).astype(np.float32)
    path = write_geotiff(tmp_path / "t.tif", arr, UTM, T10, blocksize=256)
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(ds.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    raw = bytearray(path.read_bytes())
    raw[offset : offset + size] = b"\xff" * size  # bottom-right tile is now garbage
    path.write_bytes(bytes(raw))
    out = read_raster(path, window=(10, 20, 200, 200))  # inside the top-left tile
    np.testing.assert_array_equal(out, arr[:, 10:210, 20:220])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_raster(path)
