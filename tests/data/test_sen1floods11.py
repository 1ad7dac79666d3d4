"""The ``sen1floods11`` preset on tiny v1.1-layout folders and ``modalens data tile``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from helpers import tiny_config

from modalens.cli import main
from modalens.data import sample_ids
from modalens.data.presets import get_preset, sen1floods11_layout
from modalens.data.rasters import write_geotiff
from modalens.data.tiling import tile_dataset
from modalens.errors import ModalensError, SpecError

CHIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen1floods11-example"
HAND = "data/flood_events/HandLabeled"
SPLITS = {
    "train": ["Spain_1", "Spain_2", "Spain_3"],
    "valid": ["Ghana_1"],
    "test": ["India_1"],
    "bolivia": ["Bolivia_1"],
}
SIZE = 64


def _chip_arrays(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Affine]:
    """S1, S2, label arrays and transform of chip ``k``: a window of the real chip when it is
    there, else synthetic values with NaN / -1 no-data."""
    if CHIP.is_dir():
        win = rasterio.windows.Window((k % 8) * SIZE, (k // 8) * SIZE, SIZE, SIZE)
        out = []
        for folder in ("S1Hand", "S2Hand", "LabelHand"):
            with rasterio.open(next((CHIP / folder).glob("*.tif"))) as src:
                out.append(src.read(window=win))
                transform = src.window_transform(win)
        return out[0], out[1], out[2], transform
    rng = np.random.default_rng(k)
    s1 = rng.normal(-15, 4, (2, SIZE, SIZE)).astype(np.float32)
    s1[:, :3, :3] = np.nan
    s2 = rng.integers(1, 5000, (13, SIZE, SIZE)).astype(np.int16)
    label = (rng.random((1, SIZE, SIZE)) > 0.7).astype(np.int16)
    label[:, -2:, :] = -1
    return s1, s2, label, Affine(9e-5, 0, -0.78 + k * 0.01, 0, -9e-5, 38.1)


def write_sen1floods11(root: Path, splits: bool = True, chips_at: str = HAND) -> Path:
    """A tiny v1.1 folder: chips of :data:`SPLITS` (64 px) and, with ``splits``, the lists."""
    crs = "EPSG:4326"
    for k, chip in enumerate(c for v in SPLITS.values() for c in v):
        s1, s2, label, t = _chip_arrays(k)
        base = root / chips_at
        write_geotiff(base / "S1Hand" / f"{chip}_S1Hand.tif", s1, crs, t, nodata=float("nan"))
        write_geotiff(base / "S2Hand" / f"{chip}_S2Hand.tif", s2, crs, t, nodata=0)
        write_geotiff(base / "LabelHand" / f"{chip}_LabelHand.tif", label, crs, t)
    if splits:
        folder = root / "splits" / "flood_handlabeled"
        folder.mkdir(parents=True)
        for name, chips in SPLITS.items():
            lines = "".join(f"{c}_S1Hand.tif,{c}_LabelHand.tif\n" for c in chips)
            (folder / f"flood_{name}_data.csv").write_text(lines)
    return root


@pytest.fixture
def v11(tmp_path: Path) -> Path:
    return write_sen1floods11(tmp_path / "v1.1")


def test_data_check_passes_through_the_cli(v11: Path, capsys) -> None:
    assert main(["-q", "data", "check", str(v11), "--preset", "sen1floods11"]) == 0
    out = capsys.readouterr().out
    assert "sen1floods11: v1.1 layout at" in out and "official split" in out
    assert "samples: train 3, val 1, test 1 (total 5)" in out
    assert "no problems found" in out


def test_official_splits_and_bolivia(v11: Path) -> None:
    spec = get_preset("sen1floods11", v11)
    assert sample_ids(spec) == {"train": SPLITS["train"], "val": ["Ghana_1"], "test": ["India_1"]}
    bolivia = get_preset("sen1floods11", v11, test_split="bolivia")
    assert sample_ids(bolivia)["test"] == ["Bolivia_1"]
    assert [m.name for m in spec.modalities] == ["s1", "s2"]
    assert spec.modalities[1].bands[8] == "B8A" and len(spec.modalities[1].bands) == 13
    assert spec.target.class_names == ("dry", "water") and spec.target.nodata == -1
    assert [m.name for m in get_preset("sen1floods11", v11, modalities="s2").modalities] == ["s2"]


def test_layouts_detected(tmp_path: Path, v11: Path) -> None:
    assert sen1floods11_layout(v11) == ("v1.1", HAND, "splits/flood_handlabeled")
    hand = v11 / HAND
    assert sen1floods11_layout(hand).splits == "../../../splits/flood_handlabeled"
    assert sample_ids(get_preset("sen1floods11", hand))["test"] == ["India_1"]
    flat = write_sen1floods11(tmp_path / "flat", splits=False, chips_at="")
    layout = sen1floods11_layout(flat)
    assert layout == ("chip folders", "", None)
    ids = sample_ids(get_preset("sen1floods11", flat))
    assert sorted(i for v in ids.values() for i in v) == sorted(
        c for v in SPLITS.values() for c in v
    )


def test_bad_options_are_one_line(v11: Path) -> None:
    for key, value in (("modalities", "sar"), ("test_split", "spain")):
        with pytest.raises(SpecError) as err:
            get_preset("sen1floods11", v11, **{key: value})
        assert "\n" not in str(err.value) and f"preset_options.{key}" in str(err.value)


def test_normalisation_reads_real_values(v11: Path) -> None:
    from modalens.data.reader import SampleReader
    from modalens.data.stats import apply_statistics, compute_statistics

    spec = get_preset("sen1floods11", v11)
    spec = apply_statistics(spec, compute_statistics(spec, sample_ids(spec)["train"]))
    sample = SampleReader(spec).read("Spain_1")
    s1, s2, label, _ = _chip_arrays(0)
    image = np.asarray(sample["image"])
    assert np.allclose(image[2:], np.where(s2 == 0, image[2:], s2 / 10000.0), atol=1e-6)
    target = np.asarray(sample["target"])
    assert set(np.unique(target)) <= {-1, 0, 1}
    assert (target == -1).sum() == (label[0] == -1).sum()


def test_fit_one_epoch(v11: Path, tmp_path: Path) -> None:
    from modalens.training import fit

    cfg = tiny_config(v11, epochs=1)
    cfg["data"] = {"preset": "sen1floods11", "root": str(v11)}
    cfg["train"]["loss"] = "ce"
    run = fit(cfg, out=tmp_path / "run", progress=False)
    assert (run / "checkpoints" / "best.ckpt").is_file()
    stats = json.loads((run / "stats.json").read_text())["modalities"]["s1"]
    train = np.concatenate([_chip_arrays(k)[0][0].ravel() for k in range(3)])
    assert stats["mean"][0] == pytest.approx(float(np.nanmean(train)), abs=1e-3)
    assert stats["count"][0] == int(np.isfinite(train).sum())
    assert "val_iou" in (run / "metrics.csv").read_text()


def test_tile_windows_and_split(v11: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tiles"
    counts = tile_dataset(v11, out, size=32, preset="sen1floods11", progress=False)
    assert counts["scenes"] == 6 and counts["tiles"] == 24 and counts["files"] == 72
    src = v11 / HAND / "S1Hand" / "Spain_2_S1Hand.tif"
    tile = out / HAND / "S1Hand" / "Spain_2_r1_c0_S1Hand.tif"
    with rasterio.open(src) as a, rasterio.open(tile) as b:
        win = rasterio.windows.Window(0, 32, 32, 32)
        np.testing.assert_array_equal(a.read(window=win), b.read())
        assert b.transform == a.window_transform(win) and b.crs == a.crs
        assert b.dtypes == a.dtypes
    lines = (out / "splits/flood_handlabeled/flood_valid_data.csv").read_text().splitlines()
    assert lines[0] == "Ghana_1_r0_c0_S1Hand.tif,Ghana_1_r0_c0_LabelHand.tif" and len(lines) == 4
    ids = sample_ids(get_preset("sen1floods11", out))
    assert ids["test"] == [f"India_1_r{r}_c{c}" for r in range(2) for c in range(2)]
    bolivia = sample_ids(get_preset("sen1floods11", out, test_split="bolivia"))["test"]
    assert bolivia == [f"Bolivia_1_r{r}_c{c}" for r in range(2) for c in range(2)]
    assert main(["-q", "data", "check", str(out), "--preset", "sen1floods11"]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_tile_refusals_are_one_line(v11: Path, tmp_path: Path, capsys) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    cases = [
        (full, 32, "the output folder is not empty"),
        (tmp_path / "a", 4, "tile size must be >= 8"),
        (tmp_path / "b", 128, "smaller than one 128 px tile"),
    ]
    for out, size, what in cases:
        with pytest.raises(ModalensError) as err:
            tile_dataset(v11, out, size=size, preset="sen1floods11", progress=False)
        assert what in str(err.value) and "\n" not in str(err.value)
    argv = ["data", "tile", str(v11), str(full), "--preset", "sen1floods11"]
    assert main(["-q", *argv]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("modalens: error")]
    assert len(errors) == 1 and "the output folder is not empty" in errors[0]


def test_split_random_replaces_the_official_lists(v11: Path) -> None:
    official = get_preset("sen1floods11", v11)
    assert official.split.kind == "lists"
    with pytest.raises(SpecError, match="split_seed applies to a random split"):
        get_preset("sen1floods11", v11, split_seed="3")
    spec = get_preset("sen1floods11", v11, split="random", split_seed="3")
    assert spec.split.kind == "random" and spec.split.seed == 3
    ids = sorted(sum(sample_ids(spec).values(), []))
    # every hand-labelled chip on disk, the held-out Bolivia event included
    assert ids == sorted([*sum(sample_ids(official).values(), []), "Bolivia_1"])


def test_a_sen1floods11_folder_is_recognised_without_preset(v11: Path, tmp_path: Path) -> None:
    from modalens.data.specfile import resolve_spec

    assert resolve_spec(v11).name == get_preset("sen1floods11", v11).name
    with pytest.raises(SpecError, match=r"--preset bigearthnet\|mapinwild\|sen1floods11"):
        resolve_spec(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


def test_fit_preset_and_root_train_one_epoch_and_report_water_iou(
    v11: Path, tmp_path: Path
) -> None:
    argv = ["fit", "--preset", "sen1floods11", "--root", str(v11), "--epochs", "1", "-q"]
    argv += ["--base-width", "4", "--option", "crop_size=32", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert main(["test", str(tmp_path / "run"), "-q"]) == 0
    tested = pd.read_csv(tmp_path / "run" / "metrics_test.csv")
    assert list(tested.columns[3:5]) == ["iou_water", "f1_water"]  # the headline first
    assert tested[["iou_water", "iou_dry", "iou_macro"]].notna().all().all()
