"""MapInWild as released: part folders read in place, ``data prepare`` merging them, the mask
target binarised as the authors do, the official split file with its index column."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from modalens.cli import main
from modalens.data import SampleReader, prepare_mapinwild, sample_ids, spec_from_dict
from modalens.data.presets import mapinwild_spec
from modalens.errors import DataError
from tests.helpers import tiny_config, write_mapinwild

PARTED = ("s1", "s2_temporal_subset", "s2_summer")


def write_release(root: Path, n: int = 6, size: int = 32) -> Path:
    """A tiny MapInWild folder as the release unzips: S1 and two S2 seasons in two part
    folders each, no NI, a mask of 0 and WDPA codes, split_IDs.csv with its index column."""
    write_mapinwild(root, n=n, size=size, splits=(4, 1, 1))
    shutil.copytree(root / "s2_temporal_subset", root / "s2_summer")
    shutil.rmtree(root / "NI")
    rng = np.random.default_rng(1)
    for i in range(1, n + 1):
        path = root / "mask" / f"{i}.tif"
        with rasterio.open(path, "r+") as ds:  # mostly unprotected, a few WDPA codes
            codes = rng.choice(np.array([0, 0, 1, 2, 3], np.uint8), size=(1, size, size))
            ds.write(codes)
    for folder in PARTED:
        for i in range(1, n + 1):
            part = root / f"{folder}_part{1 if i <= n // 2 else 2}"
            part.mkdir(exist_ok=True)
            (root / folder / f"{i}.tif").rename(part / f"{i}.tif")
        (root / folder).rmdir()
    split = pd.read_csv(root / "split_IDs.csv")
    split.to_csv(root / "split_IDs.csv")  # the release's leading unnamed index column
    return root


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "mapinwild")


def test_the_release_layout_is_as_written(release: Path) -> None:
    names = sorted(p.name for p in release.iterdir())
    assert "NI" not in names and "s1" not in names and "s1_part2" in names
    assert (release / "split_IDs.csv").read_text().startswith(",train,validation,test\n0,1.0,")


def test_data_check_passes_on_the_release(release: Path, capsys) -> None:
    assert main(["data", "check", str(release), "--preset", "mapinwild", "-q"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "target is mask" in text and "--option target=NI|mask" in text
    assert "target: classes (2 output(s)) from mask/{id}.tif" in out.out
    assert "samples: train 4, val 1, test 1" in out.out


def test_parts_are_read_in_place(release: Path) -> None:
    spec = mapinwild_spec(release, stats="published")
    assert spec.modalities[0].sources[0].template == "{s2_temporal_subset}/{id}.tif"
    assert spec.modality("esa_wc").sources[0].template == "ESA_WC/{id}.tif"
    assert sample_ids(spec) == {"train": ["1", "2", "3", "4"], "val": ["5"], "test": ["6"]}
    reader = SampleReader(spec)
    paths = {m: reader.sources("5")[k].path for k, m in enumerate(("s2", "s1"))}
    assert paths["s2"].parent.name == "s2_temporal_subset_part2"
    assert paths["s1"].parent.name == "s1_part2"
    assert reader.read("2")["image"].shape == (14, 32, 32)


def test_the_mask_is_binarised_as_the_authors_do(release: Path) -> None:
    spec = mapinwild_spec(release, stats="published")
    assert spec.target.class_names == ("other", "protected")
    with rasterio.open(release / "mask" / "3.tif") as ds:
        raw = ds.read(1)
    target = SampleReader(spec).read("3")["target"]
    assert set(np.unique(raw)) == {0, 1, 2, 3}
    assert np.array_equal(target, (raw != 0).astype(np.int64))  # mask[mask != 0] = 1


def test_target_choice(release: Path, tmp_path: Path) -> None:
    assert mapinwild_spec(release, target="mask").target.kind == "classes"
    assert mapinwild_spec(release, target="NI").target.kind == "continuous"
    merged = write_mapinwild(tmp_path / "with_ni", n=3, size=16, splits=(1, 1, 1))
    assert mapinwild_spec(merged).target.source.template == "NI/{id}.tif"  # NI there: NI


def test_the_mask_target_round_trips_through_a_spec_dict(release: Path) -> None:
    spec = mapinwild_spec(release)
    again = spec_from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again.target == spec.target and again.index_builder == spec.index_builder


def test_a_missing_season_names_the_seasons_present(release: Path) -> None:
    with pytest.raises(DataError) as exc:
        mapinwild_spec(release, s2_folder="s2_winter")
    assert "seasons present: s2_temporal_subset, s2_summer" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert mapinwild_spec(release, s2_folder="s2_summer").modalities[0].sources[0].template == (
        "{s2_summer}/{id}.tif"
    )


def test_fit_trains_on_the_binarised_mask(release: Path, tmp_path: Path) -> None:
    from modalens.training import fit
    from modalens.training.config import load_config

    cfg = tiny_config(release, epochs=1, crop_size=32)
    assert load_config(cfg).task == "segmentation"
    run = fit(cfg, out=tmp_path / "run", progress=False)
    row = pd.read_csv(run / "metrics.csv").iloc[-1]
    # two classes named by the preset: the headline is the protected class's IoU
    assert np.isfinite(row["train_loss"]) and 0 <= row["val_iou_protected"] <= 1
    assert {"val_iou_other", "val_f1_protected", "val_iou_macro"} <= set(row.index)


def test_prepare_merges_resumes_and_leaves_no_temporaries(release: Path, capsys) -> None:
    assert main(["data", "prepare", "mapinwild", str(release), "-q"]) == 0
    for folder in PARTED:
        assert sorted(p.name for p in (release / folder).iterdir()) == [
            f"{i}.tif" for i in range(1, 7)
        ]
        assert (release / f"{folder}_part1" / "1.tif").is_file()  # parts are kept
    assert not list(release.rglob(".modalens-merge-*"))
    again = prepare_mapinwild(release, progress=False)
    assert (again.merged, again.skipped, again.failed) == (0, 18, [])
    spec = mapinwild_spec(release)
    assert spec.modalities[0].sources[0].template == "{s2_temporal_subset}/{id}.tif"
    assert SampleReader(spec).sources("5")[0].path.parent.name == "s2_temporal_subset"


def test_prepare_move_removes_the_parts(release: Path) -> None:
    result = prepare_mapinwild(release, move=True, progress=False)
    assert (result.merged, result.skipped) == (18, 0)
    assert not list(release.glob("*_part*"))
    spec = mapinwild_spec(release)
    assert spec.index_builder is None and spec.modalities[1].sources[0].template == "s1/{id}.tif"
    assert sample_ids(spec)["test"] == ["6"]


def test_prepare_reports_a_truncated_part_file(release: Path, capsys) -> None:
    bad = release / "s1_part2" / "5.tif"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    assert main(["data", "prepare", "mapinwild", str(release), "-q"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "5.tif" in line]
    assert lines and all("s1_part2/5.tif" in line for line in lines)
    assert "modalens: error: 1 part file(s) failed" in err
    assert not (release / "s1" / "5.tif").exists() and (release / "s1" / "4.tif").is_file()
    assert not list(release.rglob(".modalens-merge-*"))
    bad.write_bytes(data)  # downloaded again: the rerun merges only what is missing
    result = prepare_mapinwild(release, progress=False)
    assert (result.merged, result.skipped) == (1, 17)


def test_prepare_refuses_a_folder_without_mapinwild(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no part folders"):
        prepare_mapinwild(tmp_path, progress=False)


def test_fit_preset_and_root_train_one_epoch_on_the_release(
    release: Path, tmp_path: Path, capsys
) -> None:
    # the "done when": nothing beyond --preset and --root (and, on 32 px test
    # scenes, a crop that fits them; a small width to stay fast)
    argv = ["fit", "--preset", "mapinwild", "--root", str(release), "--epochs", "1", "-q"]
    argv += ["--base-width", "4", "--option", "crop_size=32", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["data"]["preset_options"]["target"] == "auto"
    epochs = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert 0 <= epochs["val_iou_protected"].iloc[-1] <= 1  # the binarised mask was learnt
    said = capsys.readouterr()
    assert "no NI folder: the target is mask" in said.out + said.err
    # the packaged config is the paper's NI regression: its MSE loss and weighted sampling
    # are left out for the mask, and one line says so
    assert "train.loss, train.weighted_sampling left out" in said.out + said.err
