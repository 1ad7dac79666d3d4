"""Invalid input values: +-inf is invalid like NaN, and invalid values are filled per channel."""

from __future__ import annotations

import numpy as np
import rasterio

from modalens.data import SampleReader, presets
from modalens.data.rasters import write_geotiff
from modalens.data.reader import INPUT_FILL, fill_invalid
from modalens.data.stats import compute_statistics


def _rewrite(path, edit):
    with rasterio.open(path) as ds:
        arr, crs, t = ds.read(), ds.crs, ds.transform
    edit(arr)
    write_geotiff(path, arr, crs, t)


def test_inf_is_invalid_in_reader_and_statistics(mapinwild_root):
    def put_inf(a):
        a[1, :5, :5] = np.inf
        a[0, 10, 10] = -np.inf

    _rewrite(mapinwild_root / "s1" / "1.tif", put_inf)
    spec = presets.mapinwild_spec(mapinwild_root)
    stats = compute_statistics(spec, ["1", "2"], progress=False)
    s1 = stats.modalities["s1"]
    assert all(np.isfinite(s1.mean)) and all(np.isfinite(s1.std))
    assert all(np.isfinite(s1.min)) and all(np.isfinite(s1.max))
    assert s1.count[1] == 2 * 64 * 64 - 25 and s1.count[0] == 2 * 64 * 64 - 1
    assert None not in stats.to_dict()["modalities"]["s1"]["mean"]


def test_one_invalid_band_keeps_the_other_channels(mapinwild_root):
    def vh_nan(a):
        a[1, :8, :8] = np.nan  # only VH invalid in the corner

    _rewrite(mapinwild_root / "s1" / "1.tif", vh_nan)
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    item = SampleReader(spec).read("1")
    image, valid = item["image"], item["valid"]
    sl = spec.channel_slices()
    vh = sl["s1"].start + 1
    assert np.isfinite(image).all()
    assert (image[vh, :8, :8] == INPUT_FILL).all()
    # S2 keeps its values there and the pixels stay in the loss (where the target is valid)
    with rasterio.open(mapinwild_root / "s2_temporal_subset" / "1.tif") as ds:
        s2 = ds.read().astype(np.float32) / 10000
    np.testing.assert_allclose(image[sl["s2"], :8, :8], s2[:, :8, :8], rtol=1e-6)
    with rasterio.open(mapinwild_root / "NI" / "1.tif") as ds:
        target_ok = np.isfinite(ds.read(1))
    np.testing.assert_array_equal(valid, target_ok)


def test_pixel_leaves_the_loss_only_when_every_input_is_invalid(mapinwild_root):
    root = mapinwild_root
    for folder in ("s2_temporal_subset", "s1", "VIIRS"):
        with rasterio.open(root / folder / "2.tif") as ds:
            arr, crs, t = ds.read().astype(np.float32), ds.crs, ds.transform
        arr[:, :4, :4] = np.nan
        write_geotiff(root / folder / "2.tif", arr, crs, t)
    _rewrite(root / "ESA_WC" / "2.tif", lambda a: a.__setitem__((0, slice(0, 4), slice(0, 4)), 0))
    image, ivalid = SampleReader(presets.mapinwild_spec(root, stats="published")).read_inputs("2")
    assert not ivalid[:4, :4].any() and ivalid[4:, :].all() and ivalid[:, 4:].all()
    assert (image[:, :4, :4] == INPUT_FILL).all()


def test_fill_invalid_rule():
    img = np.ones((3, 2, 2), np.float32)
    img[0, 0, 0] = np.nan
    img[:, 1, 1] = [np.inf, -np.inf, np.nan]
    valid = fill_invalid(img)
    np.testing.assert_array_equal(valid, [[True, True], [True, False]])
    assert img[0, 0, 0] == INPUT_FILL and (img[1:, 0, 0] == 1).all()
    assert (img[:, 1, 1] == INPUT_FILL).all()
