"""Dataset/modality specs: YAML loading, validation errors, derived channel layout, presets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from modalens.attribution import groups_from_spec
from modalens.data import (
    bigearthnet_spec,
    get_preset,
    load_spec,
    mapinwild_spec,
    resolve_spec,
    spec_from_dict,
    spec_to_yaml,
)
from modalens.errors import SpecError

SPEC = {
    "name": "tiny",
    "root": "data",
    "modalities": [
        {
            "name": "s2",
            "bands": ["B2", "B3", "B4"],
            "source": {"path": "s2/{id}.tif", "bands": [1, 2, 3]},
            "normalization": {"type": "scale", "divisor": 10000},
        },
        {
            "name": "wc",
            "bands": ["lc"],
            "source": "wc/{id}.tif",
            "kind": "categorical",
            "classes": [10, 20, 30],
            "normalization": {"type": "onehot"},
            "nodata": 0,
        },
        {
            "name": "s1",
            "bands": ["VV", "VH"],
            "sources": ["s1/{id}_VV.tif", "s1/{id}_VH.tif"],
            "normalization": {"type": "standard"},
        },
    ],
    "target": {"kind": "continuous", "source": "NI/{id}.tif", "scale": 100, "nodata": "nan"},
}


def write_yaml(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_channel_slices_are_derived_from_order(tmp_path: Path) -> None:
    spec = load_spec(write_yaml(tmp_path, SPEC))
    assert spec.root == tmp_path / "data"
    # onehot WorldCover takes one channel per class
    assert spec.channel_slices() == {"s2": slice(0, 3), "wc": slice(3, 6), "s1": slice(6, 8)}
    assert spec.n_channels == 8
    assert spec.channel_names[3:6] == ["wc:10", "wc:20", "wc:30"]
    assert math.isnan(spec.target.nodata)
    assert spec.modality("s1").normalization.needs_statistics
    assert groups_from_spec(spec)["s1"] == [6, 7]
    assert len(groups_from_spec(spec, "bands")) == 8


def test_select_use_and_drop_keep_order() -> None:
    spec = spec_from_dict(SPEC)
    assert spec.select(use=["s1", "s2"]).modality_names == ["s2", "s1"]
    assert spec.select(drop=["wc"]).channel_slices() == {"s2": slice(0, 3), "s1": slice(3, 5)}
    with pytest.raises(SpecError, match="unknown modality 'viirs'.*choose from s2, wc, s1"):
        spec.select(use=["viirs"])
    with pytest.raises(SpecError, match="leaves no modality"):
        spec.select(drop=["s2", "wc", "s1"])


def test_roundtrip_through_yaml() -> None:
    spec = mapinwild_spec("/data/miw", s2_folder="s2_summer")
    again = spec_from_dict(yaml.safe_load(spec_to_yaml(spec)))
    assert again.modalities == spec.modalities
    assert again.channel_slices() == spec.channel_slices()
    assert again.target.scale == 100


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["modalities"][0].update(kind="radar"), r"unknown modality kind 'radar'.*s2"),
        (lambda d: d["modalities"][0].update(colour=1), r"unknown key 'colour'"),
        (lambda d: d["modalities"][1].pop("classes"), r"categorical modality needs its class"),
        (
            lambda d: d["modalities"][0]["source"].update(bands=[1, 2]),
            r"the sources read 2 bands but 3 band names",
        ),
        (lambda d: d["target"].update(kind="pixels"), r"unknown target kind 'pixels'"),
        (lambda d: d.pop("target"), r"missing key 'target'"),
        (
            lambda d: d["modalities"][0].update(normalization={"type": "ordinal"}),
            r"'ordinal' is for categorical",
        ),
        (lambda d: d["modalities"].append(dict(d["modalities"][0])), r"'s2' repeats"),
        (
            lambda d: d["modalities"][0].update(normalization={"type": "scale", "divisor": "x"}),
            r"divisor must be a number, got 'x'.*modalities\[0\] \(s2\)\.normalization\.divisor",
        ),
        (lambda d: d["target"].update(scale="big"), r"scale must be a number.*target\.scale"),
        (lambda d: d.update(crop_size="256px"), r"crop_size must be an integer"),
        (lambda d: d["modalities"][1].update(classes=[10, "x"]), r"classes must be an integer"),
        (lambda d: d.update(split={"ratios": ["a", 0.1, 0.1]}), r"ratios must be a number"),
    ],
)
def test_spec_errors_name_key_and_file(tmp_path: Path, mutate, message: str) -> None:
    import copy

    data = copy.deepcopy(SPEC)
    mutate(data)
    path = write_yaml(tmp_path, data)
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path)
    text = str(info.value)
    assert "\n" not in text
    assert str(path) in text


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("modalities: [\n")
    with pytest.raises(SpecError, match="not valid YAML.*bad.yaml, line"):
        load_spec(bad)
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_mapinwild_preset_matches_reference() -> None:
    spec = mapinwild_spec("/x")
    assert spec.n_channels == 14
    assert spec.channel_slices() == {
        "s2": slice(0, 10),
        "s1": slice(10, 12),
        "esa_wc": slice(12, 13),
        "viirs": slice(13, 14),
    }
    s1 = spec.modality("s1").normalization
    assert s1.mean == (-11.0578, -18.3627) and s1.std == (3.7392, 4.6393)
    wc = spec.modality("esa_wc").normalization
    assert (wc.offset, wc.divisor) == (10.0, 90.0)
    assert spec.target.source.template == "NI/{id}.tif" and spec.target.scale == 100
    mask = mapinwild_spec("/x", target="mask")
    assert mask.target.kind == "classes" and mask.target.classes == (0, 1, 2, 3)
    with pytest.raises(SpecError, match="unknown MapInWild S2 folder"):
        mapinwild_spec("/x", s2_folder="s2_monsoon")
    with pytest.raises(SpecError, match="unknown preset 'sen12'"):
        get_preset("sen12", "/x")


def test_preset_from_yaml(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path, {"preset": "mapinwild", "root": "miw", "preset_options": {"target": "mask"}}
    )
    spec = load_spec(path)
    assert spec.root == tmp_path / "miw" and spec.target.kind == "classes"


def test_bigearthnet_preset_layout() -> None:
    spec = bigearthnet_spec("/x")
    assert spec.n_channels == 14
    assert len(spec.modality("s2").sources) == 12
    assert spec.target.kind == "scene_labels" and len(spec.target.classes) == 43


def test_resolve_spec_guesses_layout_or_asks(tmp_path: Path) -> None:
    (tmp_path / "split_IDs.csv").write_text("train,validation,test\n")
    assert resolve_spec(tmp_path).name == "mapinwild"
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(SpecError, match="cannot tell the dataset layout.*--preset"):
        resolve_spec(other)
