"""Sample views: files and index rows for chosen ids and top-k, one-line errors, BigEarthNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalens.attribution.render import WORLDCOVER_COLOURS, modality_picture, rgb_indices
from modalens.attribution.run import attribute_run
from modalens.attribution.views import INDEX_COLUMNS, sample_views, select_samples
from modalens.data import presets
from modalens.errors import DataError, SpecError


@pytest.fixture(scope="module")
def tiny_attr(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output-level zeros occlusion of two training samples of the tiny run."""
    from modalens.data.samples import sample_ids
    from modalens.training import load_run

    ids = [str(i) for i in sample_ids(load_run(tiny_run).spec)["train"][:2]]
    out = tmp_path_factory.mktemp("views_attr")
    attribute_run(
        tiny_run, split="train", ids=ids, out=out, strategies=["zeros"], levels=["output"],
        progress=False, figure=False,
    )  # fmt: skip
    return out


def test_views_for_ids_and_top_k_write_figures_and_index(tiny_run, tiny_attr, tmp_path) -> None:
    scores = pd.read_parquet(tiny_attr / "scores.parquet")
    scores = scores[scores["group"] != "ALL"]
    table = scores.pivot_table(index="sample_id", columns="group", values="value")
    table = table[list(dict.fromkeys(scores["group"]))]  # modality order of the spec
    sid = str(table.index[0])
    files = sample_views(tiny_run, tiny_attr, ids=[sid], top_k=1, out=tmp_path, tile=64, overlap=0)
    views = tmp_path / "views"
    assert files[-1] == views / "index.csv"
    for f in files[:-1]:
        head = f.read_bytes()[:400]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" if f.suffix == ".png" else b"<svg" in head
    index = pd.read_csv(views / "index.csv", dtype={"sample_id": str})
    assert list(index.columns) == INDEX_COLUMNS
    assert len(index) == 1 + len(table.columns)  # the requested id + top 1 per modality
    first = index.iloc[0]
    assert first["sample_id"] == sid and first["reason"] == "requested"
    assert first["modality"] == table.loc[sid].idxmax()
    assert first["influence"] == pytest.approx(table.loc[sid].max())
    top = index.iloc[1:]
    assert list(top["modality"]) == list(table.columns)
    for _, row in top.iterrows():
        assert row["sample_id"] == str(table[row["modality"]].idxmax())
        assert row["influence"] == pytest.approx(table[row["modality"]].max())
        assert row["reason"].startswith("top 1 by ")
    drawn = set(index["sample_id"])
    assert set(files[:-1]) == {views / f"{i}{ext}" for i in drawn for ext in (".png", ".svg")}
    assert {tmp_path / p for p in index["png"]} == {views / f"{i}.png" for i in drawn}


def test_views_errors_are_one_line(tiny_run, tiny_attr, tmp_path) -> None:
    with pytest.raises(DataError, match="unknown sample id") as err:
        sample_views(tiny_run, tiny_attr, ids=["nope"], out=tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no scores.parquet"):
        sample_views(tiny_run, tmp_path / "missing", top_k=1, out=tmp_path)
    with pytest.raises(SpecError, match="no samples chosen"):
        sample_views(tiny_run, tiny_attr, out=tmp_path)
    with pytest.raises(SpecError, match="no strategy 'ones'"):
        sample_views(tiny_run, tiny_attr, top_k=1, strategy="ones", out=tmp_path)


def test_select_samples_without_scores() -> None:
    rows = select_samples(None, ["a", "b"], None)
    assert [r["sample_id"] for r in rows] == ["a", "b"] and "modality" not in rows[0]


def test_modality_pictures_follow_the_spec(mapinwild_root) -> None:
    spec = presets.mapinwild_spec(mapinwild_root)
    s2, s1, wc, viirs = spec.modalities
    assert rgb_indices(s2) == (2, 1, 0)  # B4, B3, B2
    raw = np.random.default_rng(0).random((10, 8, 8)).astype(np.float32) * 3000
    rgb = modality_picture(s2, raw)
    assert rgb.array.shape == (8, 8, 3) and rgb.array.min() == 0 and rgb.array.max() == 1
    codes = np.full((1, 8, 8), 10.0, np.float32)
    codes[0, :2] = 50.0
    pic = modality_picture(wc, codes)
    assert [n for _, n in pic.legend] == ["Tree cover", "Built-up"]
    assert [c for c, _ in pic.legend] == [WORLDCOVER_COLOURS[10], WORLDCOVER_COLOURS[50]]
    sar = modality_picture(s1, np.stack([raw[0] / 1e4, raw[1] / 1e4]))  # linear -> dB
    assert "VH" in sar.quantity and "dB" in sar.quantity and np.nanmax(sar.array) <= 0
    assert modality_picture(viirs, raw[:1]).cmap == "cividis"


def test_classification_view_on_bigearthnet(bigearthnet_root: Path, tmp_path: Path) -> None:
    from modalens.training import fit

    cfg = {
        "data": {"preset": "bigearthnet", "root": str(bigearthnet_root)},
        "model": {"base_width": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 0},
    }
    run = fit(cfg, out=tmp_path / "ben", progress=False)
    ids = presets.bigearthnet_spec(bigearthnet_root)
    from modalens.data.samples import sample_ids

    sid = str(sample_ids(ids)["test"][0])
    files = sample_views(run, ids=[sid], out=tmp_path / "out")
    index = pd.read_csv(tmp_path / "out" / "views" / "index.csv")
    assert len(index) == 1 and pd.isna(index.loc[0, "modality"])  # no attribution: no bars
    assert files[0].exists() and files[1].suffix == ".svg"


def test_views_cli_error_is_one_line(tiny_run, tmp_path, capsys) -> None:
    from modalens.cli import main

    assert main(["views", str(tiny_run), "--ids", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("modalens: error: unknown sample id(s) nope") and "\n" not in err
