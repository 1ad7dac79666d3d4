from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
import torch

import modalens.data as data
from modalens.data import presets, spec_from_dict
from modalens.data.augment import Augmentation, augment_batch
from modalens.data.dataset import make_weighted_sampler
from modalens.data.rasters import write_geotiff
from modalens.data.samples import discover_ids
from modalens.errors import DataError

S1_MEAN = (-11.0578, -18.3627)
S1_STD = (3.7392, 4.6393)


def _raw(path, window=None):
    with rasterio.open(path) as ds:
        from rasterio.windows import Window

        w = None if window is None else Window(window[1], window[0], window[3], window[2])
        return ds.read(window=w).astype(np.float64)


def test_sample_dict_continuous_target(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    reader = data.SampleReader(spec)
    grid = reader.grid("1")
    assert (grid.width, grid.height) == (64, 64)
    s = reader.read("1", (4, 8, 32, 16))
    assert s["image"].shape == (14, 32, 16) and s["image"].dtype == np.float32
    assert s["valid"].shape == (32, 16) and s["valid"].dtype == bool
    assert s["target"].shape == (1, 32, 16) and s["target"].dtype == np.float32
    assert s["id"] == "1" and s["window"] == (4, 8, 32, 16)
    ni = _raw(mapinwild_root / "NI" / "1.tif", (4, 8, 32, 16))[0]
    ok = ~np.isnan(ni)
    np.testing.assert_array_equal(s["valid"], ok)
    np.testing.assert_allclose(s["target"][0][ok], ni[ok] / 100, rtol=1e-6)
    assert (s["target"][0][~ok] == 0).all()


def test_normalisation_by_hand(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    win = (10, 3, 20, 20)
    img = data.SampleReader(spec).read("2", win)["image"].astype(np.float64)
    s2 = _raw(mapinwild_root / "s2_temporal_subset" / "2.tif", win)
    s1 = _raw(mapinwild_root / "s1" / "2.tif", win)
    wc = _raw(mapinwild_root / "ESA_WC" / "2.tif", win)
    viirs = _raw(mapinwild_root / "VIIRS" / "2.tif", win)
    np.testing.assert_allclose(img[0:10], s2 / 10000, rtol=1e-5)
    np.testing.assert_allclose(img[10], (s1[0] + 11.0578) / 3.7392, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(img[11], (s1[1] + 18.3627) / 4.6393, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(img[12], (wc[0] - 10) / 90, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(img[13], (viirs[0] - 2.0382) / 12.6409, rtol=1e-4, atol=1e-5)


def test_classes_target_mask(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, target="mask", stats="published")
    s = data.SampleReader(spec).read("3")
    assert s["target"].dtype == np.int64 and s["target"].shape == (64, 64)
    mask = _raw(mapinwild_root / "mask" / "3.tif")[0]
    assert set(np.unique(mask)) > {0, 1}  # WDPA classes 0-3, binarised as the authors do
    np.testing.assert_array_equal(s["target"][s["valid"]], (mask != 0)[s["valid"]])
    assert s["valid"].all()  # mask has no no-data and the inputs none either
    item = data.MultimodalDataset(spec, "val", crop_size=32)[0]
    assert item["target"].dtype == torch.int64 and item["target"].shape == (32, 32)
    assert item["window"] == (16, 16, 32, 32)  # centre crop for val


def test_nodata_inputs_filled_with_zero_per_channel(make_mapinwild):
    root = make_mapinwild(ni_nan_fraction=0.0)
    wc = _raw(root / "ESA_WC" / "1.tif").astype(np.uint8)
    wc[0, :5, :] = 0  # WorldCover 0 = no-data in the preset
    with rasterio.open(root / "ESA_WC" / "1.tif") as ds:
        crs, t = ds.crs, ds.transform
    write_geotiff(root / "ESA_WC" / "1.tif", wc, crs, t)
    s1 = _raw(root / "s1" / "1.tif").astype(np.float32)
    s1[1, 10, 10] = np.nan
    write_geotiff(root / "s1" / "1.tif", s1, crs, t)
    s = data.SampleReader(presets.mapinwild_spec(root, stats="published")).read("1")
    # an invalid channel is filled with 0; the other channels keep their values and the
    # pixel stays valid (only the target, or every input channel, invalid removes it)
    assert s["valid"].all()
    assert (s["image"][12, :5] == 0).all() and (s["image"][12, 5:] != 0).any()
    assert s["image"][11, 10, 10] == 0 and s["image"][10, 10, 10] != 0
    assert (s["image"][:10, :5] != 0).any()
    assert np.isfinite(s["image"]).all()


def test_all_nodata_crop_is_redrawn_then_error(make_mapinwild):
    root = make_mapinwild(ni_nan_fraction=0.0)
    with rasterio.open(root / "NI" / "1.tif") as ds:
        ni, crs, t = ds.read(), ds.crs, ds.transform
    ni[:, :, :48] = np.nan  # only the right quarter has target values
    write_geotiff(root / "NI" / "1.tif", ni, crs, t, nodata=float("nan"))
    spec = presets.mapinwild_spec(root, stats="published")
    ds = data.MultimodalDataset(spec, "train", ids=["1"], crop_size=16, seed=3)
    for epoch in range(5):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["valid"].any()
    with rasterio.open(root / "NI" / "2.tif") as ds:
        ni, crs, t = ds.read(), ds.crs, ds.transform
    ni[:] = np.nan
    write_geotiff(root / "NI" / "2.tif", ni, crs, t, nodata=float("nan"))
    bad = data.MultimodalDataset(spec, "train", ids=["2"], crop_size=16, max_tries=5)
    with pytest.raises(DataError) as exc:
        bad[0]
    msg = str(exc.value)
    assert "'2'" in msg and "all no-data" in msg and "NI" in msg and "\n" not in msg


def test_random_crops_reproducible_and_epoch_dependent(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    a = data.MultimodalDataset(spec, "train", crop_size=16, seed=1)
    b = data.MultimodalDataset(spec, "train", crop_size=16, seed=1)
    wins = [a[i]["window"] for i in range(len(a))]
    assert wins == [b[i]["window"] for i in range(len(b))]
    torch.testing.assert_close(a[2]["image"], b[2]["image"])
    a.set_epoch(1)
    assert [a[i]["window"] for i in range(len(a))] != wins
    whole = data.MultimodalDataset(spec, "test", crop_size=0)
    assert whole[0]["window"] == (0, 0, 64, 64)
    assert data.MultimodalDataset(spec, "test", crop_size=500)[0]["image"].shape == (14, 64, 64)


def test_train_items_carry_augmentation_seeds_and_pickle(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    ds = data.MultimodalDataset(spec, "train", crop_size=16)
    batch = data.collate([ds[0], ds[1]])
    flipped = augment_batch(Augmentation({"hflip": 1.0}), batch)
    torch.testing.assert_close(flipped["image"], batch["image"].flip(-1))
    torch.testing.assert_close(flipped["target"], batch["target"].flip(-1))
    assert torch.equal(flipped["valid"], batch["valid"].flip(-1))
    # the seed depends on (seed, epoch, draw, index): not on the item's batch or position
    assert ds[1]["aug_seed"] == batch["aug_seed"][1] and ds[0]["aug_seed"] != ds[1]["aug_seed"]
    ds.set_epoch(1)
    assert ds[0]["aug_seed"] != batch["aug_seed"][0]
    clone = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(clone[0]["image"], ds[0]["image"])


def test_split_file_with_nan_padding(tmp_path, mapinwild_root):
    (mapinwild_root / "split_IDs.csv").write_text(
        "train,validation,test\n1.0,7.0,9.0\n2.0,8.0,\n3.0,,\n4,,\n"
    )
    ids = data.sample_ids(presets.mapinwild_spec(mapinwild_root, stats="published"))
    assert ids == {"train": ["1", "2", "3", "4"], "val": ["7", "8"], "test": ["9"]}


def test_ratio_split_deterministic_by_seed(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    d = spec.to_dict()
    d["split"] = {"file": None, "seed": 7}
    no_file = spec_from_dict(d)
    a = data.sample_ids(no_file)
    assert a == data.sample_ids(no_file)
    assert [len(a[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert sorted(a["train"] + a["val"] + a["test"], key=int) == [str(i) for i in range(1, 11)]
    d["split"]["seed"] = 8
    assert data.sample_ids(spec_from_dict(d)) != a
    # ids found by globbing the first template with {id} -> *
    assert discover_ids(no_file) == sorted(str(i) for i in range(1, 11))


def test_onehot_normalisation(mapinwild_root):
    d = presets.mapinwild_spec(mapinwild_root, stats="published").to_dict()
    d["modalities"][2]["normalization"] = {"type": "onehot"}
    spec = spec_from_dict(d)
    assert spec.n_channels == 13 + 11
    s = data.SampleReader(spec).read("1", (0, 0, 8, 8))
    onehot = s["image"][12:23]
    wc = _raw(mapinwild_root / "ESA_WC" / "1.tif", (0, 0, 8, 8))[0]
    assert (onehot.sum(0) == 1).all()
    classes = np.array(presets.WORLDCOVER_CLASSES)
    np.testing.assert_array_equal(classes[onehot.argmax(0)], wc)


def test_weighted_sampler_inverse_mean(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    ds = data.MultimodalDataset(spec, "train")
    sampler = make_weighted_sampler(ds, seed=0)
    means = []
    for sid in ds.ids:
        ni = _raw(mapinwild_root / "NI" / f"{sid}.tif")[0] / 100
        means.append(np.nanmean(ni))
    # 64 px scenes are read whole (no decimation below 128 px): exact inverse means
    np.testing.assert_allclose(sampler.weights.numpy(), 1 / np.array(means), rtol=1e-5)
    assert list(sampler) == list(make_weighted_sampler(ds, seed=0))
    assert len(list(sampler)) == len(ds)


def test_needs_statistics_error(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    m = spec.modality("s1")
    from dataclasses import replace

    from modalens.data import Normalization

    spec = spec.with_modality(replace(m, normalization=Normalization("standard")))
    with pytest.raises(Exception, match="apply_statistics"):
        data.MultimodalDataset(spec, "train")
