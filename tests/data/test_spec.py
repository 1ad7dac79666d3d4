"""Dataset/modality specs: YAML loading, validation errors, derived channel layout, presets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from modalens.attribution import groups_from_spec
from modalens.data import (
    SampleReader,
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
    # default: S1 and VIIRS are standardised with the train split's statistics
    for name in ("s1", "viirs"):
        assert spec.modality(name).normalization.needs_statistics
    published = mapinwild_spec("/x", stats="published")
    s1 = published.modality("s1").normalization
    assert s1.mean == (-11.0578, -18.3627) and s1.std == (3.7392, 4.6393)
    assert published.modality("viirs").normalization.mean == (2.0382,)
    with pytest.raises(SpecError, match="unknown MapInWild stats option 'paper'"):
        mapinwild_spec("/x", stats="paper")
    wc = spec.modality("esa_wc").normalization
    assert (wc.offset, wc.divisor) == (10.0, 90.0)
    assert spec.target.source.template == "NI/{id}.tif" and spec.target.scale == 100
    mask = mapinwild_spec("/x", target="mask")
    assert mask.target.kind == "classes" and mask.target.classes == (0, 1)
    assert mask.target.class_names == ("other", "protected") and mask.target.other_code == 1
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


# ------------------------------------------------------------------------------ named targets
NI = {"kind": "continuous", "source": "NI/{id}.tif", "scale": 100, "nodata": "nan"}
MASK = {"kind": "classes", "source": "mask/{id}.tif", "classes": [0, 1, 2, 3]}


def _with_targets(targets: dict) -> dict:
    data = {k: v for k, v in SPEC.items() if k != "target"}
    return {**data, "targets": targets}


def test_several_named_targets_keep_their_order_and_the_first_is_main(tmp_path: Path) -> None:
    spec = load_spec(write_yaml(tmp_path, _with_targets({"mask": MASK, "ni": NI})))
    assert spec.target_names == ["mask", "ni"]
    assert spec.target is spec.targets["mask"] and spec.target.kind == "classes"
    assert spec.targets["ni"].scale == 100 and math.isnan(spec.targets["ni"].nodata)
    # modality selection and other copies keep the targets
    assert spec.select(drop=["wc"]).targets == spec.targets
    assert spec.with_root("/elsewhere").target_names == ["mask", "ni"]


def test_named_targets_round_trip_and_a_single_target_is_main() -> None:
    spec = spec_from_dict(_with_targets({"ni": NI, "mask": MASK}))
    text = spec_to_yaml(spec)
    assert "targets:" in text and "\ntarget:" not in text
    again = spec_from_dict(yaml.safe_load(text))
    assert again.target_names == ["ni", "mask"]
    assert again.targets["mask"] == spec.targets["mask"]
    assert again.target.to_dict() == spec.target.to_dict()
    single = spec_from_dict(SPEC)
    assert single.target_names == ["main"]
    assert "target" in single.to_dict() and "targets" not in single.to_dict()
    # a single target written under another name stays named
    named = spec_from_dict(_with_targets({"ni": NI}))
    assert named.target_names == ["ni"] and "targets" in named.to_dict()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            {"ni": NI, "mask": {**MASK, "kind": "pixels"}},
            r"unknown target kind 'pixels'.*targets\.mask\.kind",
        ),
        (
            {"mask": {k: v for k, v in MASK.items() if k != "classes"}},
            r"classes target needs its class list.*targets\.mask\.classes",
        ),
        ({"ni": {**NI, "scale": "big"}}, r"scale must be a number.*targets\.ni\.scale"),
        ({"ni": {**NI, "colour": 1}}, r"unknown key 'colour'.*targets\.ni\.colour"),
        ({"ni": 5}, r"targets\.ni must be a mapping"),
        ({}, r"targets must be a non-empty mapping"),
        ({1: NI}, r"target name 1 must be a non-empty string"),
    ],
)
def test_bad_named_target_is_one_line_naming_key_and_file(
    tmp_path: Path, targets: dict, message: str
) -> None:
    path = write_yaml(tmp_path, _with_targets(targets))
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_target_and_targets_together_are_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, {**SPEC, "targets": {"ni": NI}})
    with pytest.raises(SpecError, match="either 'target' or 'targets'") as info:
        load_spec(path)
    assert str(path) in str(info.value)
    spec = spec_from_dict(_with_targets({"ni": NI, "mask": MASK}))
    with pytest.raises(SpecError, match="disagree"):
        spec.__class__(
            spec.name, spec.root, spec.modalities, spec.targets["mask"], targets=spec.targets
        )


def test_target_kind_properties() -> None:
    cont = spec_from_dict(SPEC).target
    mask = spec_from_dict(_with_targets({"m": MASK})).target
    labels = bigearthnet_spec("/x").target
    assert (cont.is_dense, mask.is_dense, labels.is_dense) == (True, True, False)
    assert (cont.is_continuous, mask.is_continuous, labels.is_continuous) == (True, False, False)
    assert (cont.resampling, mask.resampling) == ("bilinear", "nearest")
    assert (cont.class_codes, mask.class_codes, labels.class_codes) == (None, (0, 1, 2, 3), None)
    assert (cont.dtype, cont.fill, mask.dtype, mask.fill) == ("float32", 0.0, "int64", -1)
    assert (cont.n_outputs, mask.n_outputs, labels.n_outputs) == (1, 4, 43)
    assert "key" in labels.to_dict() and "key" not in mask.to_dict()


def test_reader_reads_the_main_target(mapinwild_root: Path) -> None:
    base = mapinwild_spec(mapinwild_root, stats="published")
    mask = mapinwild_spec(mapinwild_root, target="mask").target
    first_mask = base.__class__(
        base.name, base.root, base.modalities, targets={"mask": mask, "ni": base.target}
    )
    item = SampleReader(first_mask).read("1")
    assert item["target"].dtype.name == "int64" and item["target"].shape == (64, 64)
    first_ni = base.__class__(
        base.name, base.root, base.modalities, targets={"ni": base.target, "mask": mask}
    )
    item = SampleReader(first_ni).read("1")
    assert item["target"].dtype.name == "float32" and item["target"].shape == (1, 64, 64)
