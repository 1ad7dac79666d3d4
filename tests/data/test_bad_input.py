"""One test per bad input: a one-line DataError/SpecError naming the file, key or sample."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio

import modalens.data as data
from modalens.data import presets, spec_from_dict
from modalens.data.rasters import write_geotiff
from modalens.errors import DataError, ModalensError, SpecError


def _message(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    assert isinstance(exc_info.value, ModalensError)
    return msg


def _profile(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.crs, ds.transform


def test_missing_file(mapinwild_root):
    (mapinwild_root / "VIIRS" / "1.tif").unlink()
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("1")
    msg = _message(exc)
    assert "raster file not found" in msg and "VIIRS/1.tif" in msg and "path template" in msg


def test_wrong_band_count_given_indices(mapinwild_root):
    arr, crs, t = _profile(mapinwild_root / "s1" / "1.tif")
    write_geotiff(mapinwild_root / "s1" / "1.tif", arr[:1], crs, t)
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("1")
    msg = _message(exc)
    assert "file has 1 bands, spec wants band 2" in msg and "s1/1.tif" in msg


def test_wrong_band_count_all_bands(mapinwild_root):
    d = presets.mapinwild_spec(mapinwild_root, stats="published").to_dict()
    d["modalities"][1]["sources"] = ["s1/{id}.tif"]  # every band of the file: must be 2
    spec = spec_from_dict(d)
    arr, crs, t = _profile(mapinwild_root / "s1" / "2.tif")
    write_geotiff(mapinwild_root / "s1" / "2.tif", np.concatenate([arr, arr[:1]]), crs, t)
    with pytest.raises(DataError) as exc:
        data.SampleReader(spec).read("2")
    msg = _message(exc)
    assert "file has 3 bands, spec wants 2" in msg and "s1/2.tif" in msg and "'s1'" in msg


def test_truncated_file(mapinwild_root):
    path = mapinwild_root / "VIIRS" / "3.tif"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("3")
    msg = _message(exc)
    assert "truncated or corrupt" in msg and "VIIRS/3.tif" in msg and "re-" in msg


def test_non_tiff_file(mapinwild_root):
    (mapinwild_root / "ESA_WC" / "4.tif").write_text("<html>not found</html>")
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("4")
    msg = _message(exc)
    assert "not a TIFF file" in msg and "ESA_WC/4.tif" in msg


def test_unknown_modality_in_selection(mapinwild_root):
    with pytest.raises(SpecError) as exc:
        presets.mapinwild_spec(mapinwild_root, stats="published").select(drop=["lidar"])
    msg = _message(exc)
    assert "unknown modality 'lidar'" in msg and "s2, s1, esa_wc, viirs" in msg


def test_empty_split(mapinwild_root):
    (mapinwild_root / "split_IDs.csv").write_text("train,validation,test\n1.0,2.0,\n3.0,,\n")
    with pytest.raises(DataError) as exc:
        data.sample_ids(presets.mapinwild_spec(mapinwild_root, stats="published"))
    msg = _message(exc)
    assert "split 'test' is empty" in msg and "split_IDs.csv" in msg and "'test'" in msg


def test_split_ids_without_files(mapinwild_root):
    (mapinwild_root / "split_IDs.csv").write_text(
        "train,validation,test\n1,7,9\n2,8,10\n99.0,,\n100.0,,\n"
    )
    with pytest.raises(DataError) as exc:
        data.sample_ids(presets.mapinwild_spec(mapinwild_root, stats="published"))
    msg = _message(exc)
    assert "2 train ids have no s2 file: '99', '100'" in msg
    assert str(mapinwild_root / "s2_temporal_subset") in msg


def test_categorical_values_outside_class_list(mapinwild_root):
    arr, crs, t = _profile(mapinwild_root / "ESA_WC" / "5.tif")
    arr[0, 3, 3] = 15
    arr[0, 4, 4] = 33
    write_geotiff(mapinwild_root / "ESA_WC" / "5.tif", arr, crs, t)
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("5")
    msg = _message(exc)
    assert "values 15, 33" in msg and "sample '5'" in msg and "ESA_WC/5.tif" in msg
    assert "not in the class list" in msg


def test_class_target_codes_outside_list(mapinwild_root):
    arr, crs, t = _profile(mapinwild_root / "mask" / "6.tif")
    arr[0, 0, 0] = 7
    write_geotiff(mapinwild_root / "mask" / "6.tif", arr, crs, t)
    spec = presets.mapinwild_spec(mapinwild_root, target="mask", stats="published")
    data.SampleReader(spec).read("6")  # the preset's mask: every code but 0 is "protected"
    plain = replace(spec.target, code_map=(), other_code=None, classes=(0, 1, 2, 3))
    strict = replace(spec, targets={"main": plain})
    with pytest.raises(DataError) as exc:
        data.SampleReader(strict).read("6")
    msg = _message(exc)
    assert "values 7 of the target in sample '6'" in msg and "mask/6.tif" in msg


def test_unknown_scene_label(tmp_path, mapinwild_root):
    d = presets.mapinwild_spec(mapinwild_root, stats="published").to_dict()
    d["target"] = {
        "kind": "scene_labels",
        "source": "labels/{id}.json",
        "classes": ["forest", "water"],
        "key": "labels",
    }
    (mapinwild_root / "labels").mkdir()
    (mapinwild_root / "labels" / "1.json").write_text(json.dumps({"labels": ["forest", "desert"]}))
    with pytest.raises(DataError) as exc:
        data.SampleReader(spec_from_dict(d)).read("1")
    msg = _message(exc)
    assert "unknown label 'desert'" in msg and "sample '1'" in msg and "labels/1.json" in msg


def test_non_overlapping_extents_name_both_files(mapinwild_root):
    arr, crs, _ = _profile(mapinwild_root / "VIIRS" / "2.tif")
    from affine import Affine

    write_geotiff(
        mapinwild_root / "VIIRS" / "2.tif", arr, crs, Affine(10, 0, 100000, 0, -10, 1000000)
    )
    with pytest.raises(DataError) as exc:
        data.SampleReader(presets.mapinwild_spec(mapinwild_root, stats="published")).read("2")
    msg = _message(exc)
    assert "does not overlap" in msg and "VIIRS/2.tif" in msg and "s2_temporal_subset/2.tif" in msg


def test_missing_split_file(mapinwild_root):
    (mapinwild_root / "split_IDs.csv").unlink()
    with pytest.raises(DataError) as exc:
        data.sample_ids(presets.mapinwild_spec(mapinwild_root, stats="published"))
    assert "split file not found" in _message(exc)
