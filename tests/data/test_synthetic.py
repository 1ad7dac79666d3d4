"""Synthetic MapInWild-layout data: layout, raster properties, realism, determinism and the
planted importances (the target is built from per-modality signals)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from modalens import data
from modalens.data import checks, stats
from modalens.data.presets import WORLDCOVER_CLASSES, mapinwild_spec
from modalens.data.synthetic import MODALITIES, generate_synthetic, parse_importance
from modalens.data.synthetic.planting import normalize_importance
from modalens.data.synthetic.signals import FOLDERS, modality_signals, read_signals
from modalens.errors import SpecError

N, SIZE = 6, 64
IDS = [str(100000 + i) for i in range(N)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(
        tmp_path_factory.mktemp("a") / "data", samples=N, size=SIZE, progress=False
    )


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read(root: Path, folder: str, sid: str) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(root / folder / f"{sid}.tif") as src:
        return src.read(), src.profile


def test_layout(synth: Path) -> None:
    for folder in FOLDERS.values():
        assert sorted(p.stem for p in (synth / folder).glob("*.tif")) == IDS
    assert not list(synth.rglob("*.tmp*")), "temporary files left behind"
    split = pd.read_csv(synth / "split_IDs.csv")
    assert list(split.columns) == ["train", "validation", "test"]
    ids = [str(int(v)) for v in split.stack().dropna()]
    assert sorted(ids) == IDS  # every id once
    assert split["validation"].notna().sum() >= 1 and split["test"].notna().sum() >= 1
    assert split["test"].isna().any()  # NaN-padded like MapInWild
    meta = json.loads((synth / "metadata.json").read_text())
    assert (meta["seed"], meta["size"], meta["samples"]) == (0, SIZE, N)
    assert meta["generator_version"] and meta["target"]["formula"] and meta["description"]
    assert set(meta["realised"]["variance_share"]) == set(MODALITIES)


def test_raster_properties(synth: Path) -> None:
    expect = {
        "s2": (10, "uint16", None),
        "s1": (2, "float32", None),
        "esa_wc": (1, "uint8", 0),
        "viirs": (1, "float32", None),
        "target": (1, "float32", "nan"),
    }
    origins = set()
    for sid in IDS[:3]:
        for key, (count, dtype, nodata) in expect.items():
            _, prof = _read(synth, FOLDERS[key], sid)
            assert (prof["count"], prof["dtype"]) == (count, dtype), key
            assert prof["crs"].to_epsg() == 32633
            assert (prof["transform"].a, prof["transform"].e) == (10.0, -10.0)
            assert (prof["width"], prof["height"]) == (SIZE, SIZE)
            if nodata == "nan":
                assert math.isnan(prof["nodata"])
            else:
                assert prof["nodata"] == nodata
        origins.add((prof["transform"].c, prof["transform"].f))
    assert len(origins) == 3  # a different origin per sample


def test_tiled_when_large(tmp_path: Path) -> None:
    out = generate_synthetic(tmp_path, samples=3, size=320, progress=False)
    for folder in FOLDERS.values():
        with rasterio.open(out / folder / "100000.tif") as src:
            assert src.profile["tiled"] and set(src.block_shapes) == {(256, 256)}, folder


def test_value_ranges(synth: Path) -> None:
    s2 = np.stack([_read(synth, FOLDERS["s2"], i)[0] for i in IDS]).astype(float)
    s1 = np.stack([_read(synth, FOLDERS["s1"], i)[0] for i in IDS])
    wc = np.stack([_read(synth, FOLDERS["esa_wc"], i)[0] for i in IDS])
    viirs = np.stack([_read(synth, FOLDERS["viirs"], i)[0] for i in IDS])
    ni = np.stack([_read(synth, FOLDERS["target"], i)[0] for i in IDS])
    assert s2.min() >= 1 and s2.max() < 7000
    band = s2.mean(axis=(0, 2, 3))
    assert band[6] > 1.5 * band[2]  # NIR (B8) well above red (B4): vegetation
    assert band[4] < band[6] and band[3] < band[4]  # red edge rises towards NIR
    assert -14 < s1[:, 0].mean() < -8 and -22 < s1[:, 1].mean() < -15
    assert 2 < s1[:, 0].std() < 6 and 2 < s1[:, 1].std() < 7
    assert set(np.unique(wc)) <= {0, *WORLDCOVER_CLASSES}
    assert len(set(np.unique(wc)) - {0}) >= 5
    assert viirs.min() >= 0 and np.median(viirs) < 1.0 and viirs.max() > 10.0
    valid = ni[np.isfinite(ni)]
    assert valid.min() >= 0 and valid.max() <= 100 and valid.std() > 10
    nan_share = np.isnan(ni).mean()
    assert 0 < nan_share < 0.2  # some no-data, not all
    # WorldCover no-data only where the target is no-data too
    assert np.all(np.isnan(ni[wc == 0]))


def test_same_seed_same_bytes(synth: Path, tmp_path: Path) -> None:
    again = generate_synthetic(tmp_path / "b", samples=N, size=SIZE, progress=False)
    assert _hashes(again) == _hashes(synth)


def test_different_seed_differs(synth: Path, tmp_path: Path) -> None:
    other = _hashes(
        generate_synthetic(tmp_path / "c", samples=N, size=SIZE, seed=1, progress=False)
    )
    base = _hashes(synth)
    for sid in IDS:
        for folder in FOLDERS.values():
            key = f"{folder}/{sid}.tif"
            assert other[key] != base[key], key


def test_inputs_do_not_depend_on_importance(synth: Path, tmp_path: Path) -> None:
    other = _hashes(
        generate_synthetic(tmp_path / "d", samples=N, size=SIZE, importance="s1=1", progress=False)
    )
    base = _hashes(synth)
    for key, digest in base.items():
        if key.startswith(("NI/", "metadata")):
            assert other[key] != digest, key
        else:
            assert other[key] == digest, key


def test_importance_normalised(tmp_path: Path) -> None:
    out = generate_synthetic(
        tmp_path, samples=3, size=32, importance={"s2": 2, "s1": 2}, progress=False
    )
    imp = json.loads((out / "metadata.json").read_text())["importance"]
    assert imp == {"s2": 0.5, "s1": 0.5, "esa_wc": 0.0, "viirs": 0.0}
    default = {"s2": 0.4, "s1": 0.3, "esa_wc": 0.2, "viirs": 0.1}
    assert normalize_importance(None) == pytest.approx(default)
    assert math.isclose(sum(normalize_importance("viirs=3,esa_wc=1").values()), 1.0)


def test_parse_importance() -> None:
    assert parse_importance("s2=0.5,s1=0.5") == {"s2": 0.5, "s1": 0.5}
    assert parse_importance(" S2 = 1 , viirs=0 ,") == {"s2": 1.0, "viirs": 0.0}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("s2", "bad importance item 's2'"),
        ("s2=abc", "not a number"),
        ("lidar=1", "unknown modality 'lidar'"),
        ("s2=-0.1", "'s2' is negative"),
        ("s2=1,s2=2", "given twice"),
        ("s2=nan", "not finite"),
        ("s2=0,s1=0", "sum to 0"),
    ],
)
def test_bad_importance_strings(text: str, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        normalize_importance(parse_importance(text) if text else text)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and "--importance" in msg
    assert "e.g." in msg  # says how to fix it


def test_bad_arguments_raise_before_writing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown modality 'S1'"):
        generate_synthetic(tmp_path / "x", importance={"S1": 1.0}, progress=False)
    with pytest.raises(SpecError, match="negative"):
        generate_synthetic(tmp_path / "x", importance={"s1": -1.0}, progress=False)
    with pytest.raises(SpecError, match="samples must be an integer >= 3"):
        generate_synthetic(tmp_path / "x", samples=2, progress=False)
    with pytest.raises(SpecError, match="size must be"):
        generate_synthetic(tmp_path / "x", size=8, progress=False)
    assert not (tmp_path / "x").exists()


def _pooled_signals(root: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    zs: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    targets = []
    for sid in IDS:
        ni = _read(root, FOLDERS["target"], sid)[0][0]
        valid = np.isfinite(ni)
        for m, z in read_signals(root, sid).items():
            zs[m].append(z[valid])
        targets.append(ni[valid])
    return {m: np.concatenate(v) for m, v in zs.items()}, np.concatenate(targets)


def test_planted_signal(tmp_path: Path) -> None:
    out = generate_synthetic(tmp_path, samples=N, size=SIZE, importance="s2=1", progress=False)
    z, ni = _pooled_signals(out)
    corr = {m: np.corrcoef(z[m], ni)[0, 1] for m in MODALITIES}
    assert corr["s2"] > 0.95
    assert corr["viirs"] < corr["s2"] - 0.3
    assert corr["s1"] < corr["s2"] - 0.3
    share = json.loads((out / "metadata.json").read_text())["realised"]["variance_share"]
    assert share["s2"] > 0.95 and share["viirs"] == 0.0


def test_realised_shares_follow_importance(synth: Path) -> None:
    meta = json.loads((synth / "metadata.json").read_text())
    share, imp = meta["realised"]["variance_share"], meta["importance"]
    for m in MODALITIES:
        assert abs(share[m] - imp[m]) < 0.12, (m, share[m], imp[m])
    assert sorted(MODALITIES, key=share.get) == sorted(MODALITIES, key=imp.get)


def test_signals_from_arrays() -> None:
    s2 = np.zeros((10, 2, 2), np.uint16)
    s2[2], s2[6] = 300, 3300  # dense vegetation: NDVI 0.83
    s2[1], s2[8] = 500, 1800
    s1 = np.stack([np.full((2, 2), -8.0), np.full((2, 2), -19.0)])  # VH - VV = -11
    wc = np.array([[50, 10], [0, 80]], np.uint8)
    viirs = np.array([[0.0, 60.0], [0.6, 0.0]], np.float32)
    z = modality_signals(s2, s1, wc, viirs)
    assert np.allclose(z["s2"], 1.0) and np.allclose(z["s1"], 0.0)
    assert z["esa_wc"][0, 0] == 0.0 and np.isnan(z["esa_wc"][1, 0])
    assert z["viirs"][0, 0] == 1.0 and z["viirs"][0, 1] < 1e-6


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_synthetic(tmp_path, samples=3, size=16, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_reads_through_data_layer(synth: Path) -> None:
    spec = mapinwild_spec(synth)
    assert checks.check_dataset(spec, progress=False) == []
    splits = data.sample_ids(spec)
    assert sorted(sum(splits.values(), [])) == IDS
    spec = stats.apply_statistics(
        spec, stats.compute_statistics(spec, splits["train"], progress=False)
    )
    ds = data.MultimodalDataset(spec, "test", crop_size=0)
    item = ds[0]
    assert tuple(item["image"].shape) == (14, SIZE, SIZE)
    assert tuple(item["target"].shape) == (1, SIZE, SIZE)
    # the target is NI / 100 where valid (the preset's scale)
    with rasterio.open(synth / "NI" / f"{item['id']}.tif") as src:
        ni = src.read(1)
    valid = item["valid"].numpy().astype(bool)
    assert valid.any() and not np.isnan(ni[valid]).any()
    np.testing.assert_allclose(item["target"][0].numpy()[valid], ni[valid] / 100.0, rtol=1e-6)
    train = data.MultimodalDataset(spec, "train", crop_size=32)
    assert tuple(train[0]["image"].shape) == (14, 32, 32)
