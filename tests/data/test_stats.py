from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio

import modalens.data as data
from modalens.data import Normalization, presets, stats
from modalens.data.presets import mapinwild
from modalens.errors import DataError


def _free_spec(root):
    """MapInWild spec whose S1 and VIIRS statistics are left to be computed."""
    spec = presets.mapinwild_spec(root)
    for name in ("s1", "viirs"):
        m = spec.modality(name)
        spec = spec.with_modality(replace(m, normalization=Normalization("standard")))
    return spec


def _stack(root, folder, ids):
    arrs = []
    for i in ids:
        with rasterio.open(root / folder / f"{i}.tif") as ds:
            arrs.append(ds.read().astype(np.float64))
    return np.concatenate([a.reshape(a.shape[0], -1) for a in arrs], axis=1)


def test_statistics_on_train_only_match_numpy(mapinwild_root):
    spec = _free_spec(mapinwild_root)
    train = data.sample_ids(spec)["train"]
    assert train == ["1", "2", "3", "4", "5", "6"]
    st = stats.compute_statistics(spec, train, progress=False)
    s1 = _stack(mapinwild_root, "s1", train)
    np.testing.assert_allclose(st.mean("s1"), s1.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(st.std("s1"), s1.std(axis=1), rtol=1e-9)
    s2 = _stack(mapinwild_root, "s2_temporal_subset", train)
    np.testing.assert_allclose(st.mean("s2"), s2.mean(axis=1), rtol=1e-10)
    ni = _stack(mapinwild_root, "NI", train)[0] / 100
    assert st.target["mean"] == pytest.approx(np.nanmean(ni), rel=1e-6)  # float32 scaling
    wc = _stack(mapinwild_root, "ESA_WC", train)[0]
    freq = st.modalities["esa_wc"].class_frequencies
    assert freq["10"] == pytest.approx((wc == 10).mean())
    # the other splits differ: statistics are not computed on them
    everything = _stack(mapinwild_root, "s1", [str(i) for i in range(1, 11)])
    assert not np.allclose(st.mean("s1"), everything.mean(axis=1), rtol=1e-9)


def test_json_roundtrip_cache_and_apply(tmp_path, mapinwild_root):
    spec = _free_spec(mapinwild_root)
    cache = tmp_path / "run" / "statistics.json"
    st = stats.load_or_compute(spec, cache, progress=False)
    assert cache.exists()
    raw = json.loads(cache.read_text())
    assert raw["modalities"]["s1"]["bands"] == ["VV", "VH"]
    again = stats.Statistics.load(cache)
    assert again.to_dict() == st.to_dict()
    # the cache is reused when it matches (mark it to see)
    raw["dataset"] = "from-cache"
    cache.write_text(json.dumps(raw))
    assert stats.load_or_compute(spec, cache, progress=False).dataset == "from-cache"
    # a spec with other bands does not match: recomputed
    m = spec.modality("s1")
    other = spec.with_modality(replace(m, bands=("HH", "HV")))
    assert stats.load_or_compute(other, cache, progress=False).dataset == "mapinwild"
    # nor does one whose no-data value changed (the raw values it was computed from differ)
    raw["dataset"] = "from-cache"
    cache.write_text(json.dumps(raw))
    nodata = spec.with_modality(replace(m, nodata=-9999.0))
    assert stats.load_or_compute(nodata, cache, progress=False).dataset == "mapinwild"
    applied = stats.apply_statistics(spec, st)
    assert applied.modality("s1").normalization.mean == pytest.approx(st.mean("s1"))
    assert applied.modality("viirs").normalization.std == pytest.approx(st.std("viirs"))
    # constants given in the spec (the preset's published ones) are kept
    preset = presets.mapinwild_spec(mapinwild_root, stats="published")
    kept = stats.apply_statistics(preset, st)
    assert kept.modality("s1").normalization.mean == mapinwild.S1_MEAN
    # the dataset accepts the filled spec
    item = data.MultimodalDataset(applied, "train", crop_size=16)[0]
    assert item["image"].shape == (14, 16, 16)


def test_range_matches_numpy_and_maps_to_normalised_space(mapinwild_root):
    spec = _free_spec(mapinwild_root)
    train = data.sample_ids(spec)["train"]
    st = stats.compute_statistics(spec, train, progress=False)
    s1 = _stack(mapinwild_root, "s1", train)
    ms = st.modalities["s1"]
    np.testing.assert_allclose(ms.min, s1.min(axis=1))
    np.testing.assert_allclose(ms.max, s1.max(axis=1))
    applied = stats.apply_statistics(spec, st)
    lo, hi = stats.normalized_range(applied.modality("s1"), ms)
    mean, std = np.asarray(st.mean("s1")), np.asarray(st.std("s1"))
    np.testing.assert_allclose(lo, (s1.min(axis=1) - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(hi, (s1.max(axis=1) - mean) / std, rtol=1e-5)
    assert (lo < 0).all() and (hi > 0).all()  # the mean lies inside


def test_version_1_statistics_load_without_range_and_are_recomputed(tmp_path, mapinwild_root):
    spec = _free_spec(mapinwild_root)
    cache = tmp_path / "stats.json"
    raw = stats.load_or_compute(spec, cache, progress=False).to_dict()
    raw["version"] = 1
    for entry in raw["modalities"].values():
        entry.pop("min"), entry.pop("max")
    raw["dataset"] = "old"
    cache.write_text(json.dumps(raw))
    old = stats.Statistics.load(cache)  # an old run folder still loads
    assert not old.modalities["s1"].has_range
    with pytest.raises(DataError, match="min/max"):
        stats.normalized_range(spec.modality("s1"), old.modalities["s1"])
    again = stats.load_or_compute(spec, cache, progress=False)
    assert again.dataset == "mapinwild" and again.modalities["s1"].has_range
