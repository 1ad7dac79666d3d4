"""BigEarthNet v2 (reBEN) in the ``bigearthnet`` preset: a tiny v2 root built in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from modalens import data
from modalens.cli import main
from modalens.data import presets, stats
from modalens.data.presets.bigearthnet import BIGEARTHNET_S2_BANDS
from modalens.data.presets.bigearthnet_v2 import BIGEARTHNET_19_LABELS
from modalens.data.rasters import write_geotiff
from modalens.data.specfile import spec_from_dict
from modalens.errors import DataError, SpecError
from tests.helpers import tiny_config

S2_TILE = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP"
S1_TILE = "S1A_IW_GRDH_1SDV_20170613T165043"
#: (patch row/col, split, labels)
PATCHES = [
    ((26, 57), "train", ["Urban fabric", "Arable land"]),
    (
        (26, 58),
        "train",
        ["Land principally occupied by agriculture, with significant areas of natural vegetation"],
    ),
    ((27, 57), "train", ["Coniferous forest", "Mixed forest", "Inland waters"]),
    ((27, 58), "validation", ["Pastures"]),
    ((28, 57), "test", ["Transitional woodland, shrub", "Marine waters"]),
]


def write_v2(root: Path, labels: list[list[str]] | None = None, s1: bool = True) -> pd.DataFrame:
    """A 5-patch BigEarthNet v2 root (32x32 single-band GeoTIFFs); its metadata table."""
    rng = np.random.default_rng(0)
    crs = CRS.from_epsg(32633)
    rows = []
    for k, ((r, c), split, labs) in enumerate(PATCHES):
        pid, s1name = f"{S2_TILE}_{r}_{c}", f"{S1_TILE}_33UUP_{r}_{c}"
        transform = Affine(10.0, 0, 300000 + 1200 * c, 0, -10.0, 5000000 - 1200 * r)
        folder = root / "BigEarthNet-S2" / S2_TILE / pid
        for b in BIGEARTHNET_S2_BANDS:
            arr = rng.integers(1, 5000, (32, 32)).astype(np.uint16)
            write_geotiff(folder / f"{pid}_{b}.tif", arr, crs, transform)
        if s1:
            for p in ("VV", "VH"):
                arr = rng.normal(-12, 3, (32, 32)).astype(np.float32)
                write_geotiff(
                    root / "BigEarthNet-S1" / S1_TILE / s1name / f"{s1name}_{p}.tif",
                    arr,
                    crs,
                    transform,
                )
        rows.append(
            {
                "patch_id": pid,
                "labels": np.array(labels[k] if labels else labs, dtype=object),
                "split": split,
                "country": "Austria",
                "s1_name": s1name,
                "s2v1_name": f"S2A_MSIL2A_20170613T101031_{r}_{c}",
                "contains_seasonal_snow": False,
                "contains_cloud_or_shadow": False,
            }
        )
    df = pd.DataFrame(rows)
    df.to_parquet(root / "metadata.parquet")
    return df


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "reben"
    write_v2(root)
    return root


def test_v2_is_detected_and_checks(v2_root: Path, capsys) -> None:
    assert main(["data", "check", str(v2_root), "--preset", "bigearthnet"]) == 0
    said = capsys.readouterr()
    assert "BigEarthNet v2 (reBEN)" in said.out + said.err
    spec = presets.bigearthnet_spec(v2_root)
    assert [m.name for m in spec.modalities] == ["s2", "s1"]
    assert spec.target.classes == BIGEARTHNET_19_LABELS and spec.target.column == "labels"


def test_split_follows_the_parquet(v2_root: Path) -> None:
    ids = data.sample_ids(presets.bigearthnet_spec(v2_root))
    want = {"train": [], "val": [], "test": []}
    for (r, c), split, _ in PATCHES:
        want["val" if split == "validation" else split].append(f"{S2_TILE}_{r}_{c}")
    assert {k: sorted(v) for k, v in ids.items()} == want


def with_stats(spec: data.DatasetSpec) -> data.DatasetSpec:
    """``spec`` with statistics of its train patches (S1 is standardised)."""
    train = data.sample_ids(spec)["train"]
    return stats.apply_statistics(spec, stats.compute_statistics(spec, train, progress=False))


def test_multi_hot_target_equals_the_labels(v2_root: Path) -> None:
    reader = data.SampleReader(with_stats(presets.bigearthnet_spec(v2_root)))
    for (r, c), _, labs in PATCHES:
        sample = reader.read(f"{S2_TILE}_{r}_{c}")
        got = [BIGEARTHNET_19_LABELS[k] for k in np.flatnonzero(sample["target"])]
        assert sorted(got) == sorted(labs)
        assert sample["image"].shape == (14, 32, 32)


def test_version_option_and_spec_round_trip(v2_root: Path) -> None:
    with pytest.raises(DataError):  # v1 layout asked for: no v1 S1 folder there
        data.sample_ids(presets.get_preset("bigearthnet", v2_root, version="1"))
    spec = presets.get_preset("bigearthnet", v2_root, version="2")
    d = spec.to_dict()["target"]
    assert d["column"] == "labels" and d["separator"] == ";" and d["source"] is None
    again = spec_from_dict(spec.to_dict())
    assert again.target == spec.target


def test_fit_one_epoch(v2_root: Path, tmp_path: Path) -> None:
    from modalens import fit

    cfg = tiny_config(v2_root, epochs=1, crop_size=32)
    cfg["data"] = {"preset": "bigearthnet", "root": str(v2_root), "crop_size": 32}
    run = fit(cfg, out=tmp_path / "run", progress=False)
    assert (Path(run) / "config.yaml").exists()


def test_s2_only_layout(tmp_path: Path, capsys) -> None:
    root = tmp_path / "reben"
    write_v2(root, s1=False)
    spec = presets.bigearthnet_spec(root)
    assert [m.name for m in spec.modalities] == ["s2"]
    said = capsys.readouterr()
    assert "no BigEarthNet-S1/ in" in said.out + said.err
    assert data.SampleReader(spec).read(f"{S2_TILE}_26_57")["image"].shape == (12, 32, 32)
    # recognised without --preset by its metadata.parquet
    assert main(["data", "check", str(root), "-q"]) == 0


def test_unknown_label_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "reben"
    labels = [p[2] for p in PATCHES]
    labels[0] = ["Urban fabric", "Glaciers"]
    write_v2(root, labels=labels)
    reader = data.SampleReader(presets.bigearthnet_spec(root))
    with pytest.raises(DataError) as err:
        reader.scene_labels(f"{S2_TILE}_26_57")
    msg = str(err.value)
    assert "unknown label 'Glaciers'" in msg and f"{S2_TILE}_26_57" in msg and "\n" not in msg
    assert main(["data", "check", str(root), "--preset", "bigearthnet"]) == 2


def test_missing_patch_folder_is_one_line(v2_root: Path, capsys) -> None:
    pid = f"{S2_TILE}_27_58"
    shutil.rmtree(v2_root / "BigEarthNet-S2" / S2_TILE / pid)
    reader = data.SampleReader(presets.bigearthnet_spec(v2_root))
    with pytest.raises(DataError) as err:
        reader.read(pid)
    msg = str(err.value)
    assert pid in msg and "\n" not in msg
    assert main(["data", "check", str(v2_root), "--preset", "bigearthnet"]) == 2


def test_spec_yaml_target_column(v2_root: Path) -> None:
    d = presets.bigearthnet_spec(v2_root).to_dict()
    d["target"]["kind"] = "classes"
    d["target"]["classes"] = [0, 1]
    with pytest.raises(SpecError) as err:
        spec_from_dict(d, source="spec.yaml")
    assert "target.column" in str(err.value) and "spec.yaml" in str(err.value)
