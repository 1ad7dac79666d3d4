"""Stratified influence: strata by an index column and by the dominant class of a modality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from modalens.attribution.run import recorded_run
from modalens.attribution.strata import (
    STRATA_COLUMNS,
    describe_strata,
    stratify,
)
from modalens.data.presets import WORLDCOVER_NAMES
from modalens.errors import SpecError

GROUPS = {"s2": 4.0, "s1": 3.0, "esa_wc": 1.0, "viirs": 2.0}
WINDOW = (8, 4, 24, 20)  # row, col, height, width


def _ids(run: Path) -> list[str]:
    root = Path(yaml.safe_load((run / "dataset.yaml").read_text())["root"])
    return sorted(p.stem for p in (root / "ESA_WC").glob("*.tif"))


def _scores(ids: list[str]) -> pd.DataFrame:
    """Occlusion rows (two strategies, two draws) and an ALL row for every sample."""
    rng = np.random.default_rng(0)
    rows = []
    win = ",".join(map(str, WINDOW))
    for i, sid in enumerate(ids):
        for strategy in ("zeros", "gaussian"):
            for group, base in [*GROUPS.items(), ("ALL", 12.0)]:
                for draw in (0, 1):
                    value = base * (1 + i) + rng.uniform(0, 0.5)
                    rows.append(
                        (
                            sid,
                            win,
                            "occlusion",
                            "embedding",
                            "euclidean",
                            strategy,
                            group,
                            draw,
                            value,
                        )
                    )
    cols = [
        "sample_id",
        "window",
        "method",
        "level",
        "distance",
        "strategy",
        "group",
        "draw",
        "value",
    ]
    return pd.DataFrame(rows, columns=cols)


def _expected_dominant(run: Path, sid: str) -> str:
    root = Path(yaml.safe_load((run / "dataset.yaml").read_text())["root"])
    with rasterio.open(root / "ESA_WC" / f"{sid}.tif") as ds:
        r, c, h, w = WINDOW
        codes = ds.read(1)[r : r + h, c : c + w].ravel()
    values, counts = np.unique(codes, return_counts=True)
    return WORLDCOVER_NAMES[int(values[np.argmax(counts)])]


def _check_shares_and_ranks(table: pd.DataFrame) -> None:
    ranked = table[table["group"] != "ALL"]
    keys = ["stratum", "method", "level", "distance", "strategy"]
    for _, block in ranked.groupby(keys):
        assert block["share"].sum() == pytest.approx(1.0)
        assert sorted(block["rank"].astype(int)) == list(range(1, len(GROUPS) + 1))
    assert table[table["group"] == "ALL"]["share"].isna().all()


def test_dominant_class_strata_match_the_rasters(tiny_run: Path, tmp_path: Path) -> None:
    ids = _ids(tiny_run)
    scores = _scores(ids)
    table = stratify(scores, tiny_run, "dominant:esa_wc", min_samples=2, out=tmp_path, n_boot=50)
    assert list(table.columns) == STRATA_COLUMNS
    expected = {sid: _expected_dominant(tiny_run, sid) for sid in ids}
    sizes = pd.Series(expected).value_counts()
    got = table.drop_duplicates("stratum").set_index("stratum")["n"]
    assert got.to_dict() == sizes.to_dict()
    # every stratum has one row per strategy and group (4 modalities + ALL)
    assert len(table) == len(sizes) * 2 * (len(GROUPS) + 1)
    assert list(got) == sorted(got, reverse=True)  # largest stratum first
    few = table.drop_duplicates("stratum").set_index("stratum")["few_samples"]
    assert few.to_dict() == {s: n < 2 for s, n in sizes.items()}
    _check_shares_and_ranks(table)
    # a stratum's mean is the mean over its samples of the draw-averaged values
    stratum, members = sizes.index[0], [s for s, c in expected.items() if c == sizes.index[0]]
    sub = scores[(scores["sample_id"].isin(members)) & (scores["group"] == "s1")]
    want = sub[sub["strategy"] == "zeros"].groupby("sample_id")["value"].mean().mean()
    row = table[(table["stratum"] == stratum) & (table["group"] == "s1")]
    assert float(row[row["strategy"] == "zeros"]["mean"].iloc[0]) == pytest.approx(want)
    written = pd.read_csv(tmp_path / "stratified.csv")
    assert list(written.columns) == STRATA_COLUMNS and len(written) == len(table)
    assert (tmp_path / "stratified.png").stat().st_size > 0
    assert (tmp_path / "stratified.svg").stat().st_size > 0
    text = describe_strata(written)
    assert any(line.startswith("ESA WorldCover carries") for line in text)
    assert any(stratum[1:] in line for line in text)


def test_index_column_strata_and_recorded_run(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ids = _ids(run)
    regions = {sid: ("north" if k % 3 else "south") for k, sid in enumerate(ids)}
    index = tmp_path / "index.csv"
    pd.DataFrame({"id": ids, "region": [regions[i] for i in ids]}).to_csv(index, index=False)
    spec = yaml.safe_load((run / "dataset.yaml").read_text())
    spec["index"] = str(index)
    (run / "dataset.yaml").write_text(yaml.safe_dump(spec))
    attr = tmp_path / "attr"
    attr.mkdir()
    _scores(ids).to_parquet(attr / "scores.parquet")
    with pytest.raises(SpecError, match="--run"):
        stratify(attr, by="region")
    (attr / "source.json").write_text(json.dumps({"run": str(run), "split": "test"}))
    assert recorded_run(attr) == run
    table = stratify(attr, by="region", n_boot=0)
    n = table.drop_duplicates("stratum").set_index("stratum")["n"].to_dict()
    assert n == pd.Series(regions).value_counts().to_dict()
    assert set(table["by"]) == {"region"}
    _check_shares_and_ranks(table)
    with pytest.raises(SpecError, match="region"):
        stratify(attr, by="country", n_boot=0)


def test_describe_strata_reads_the_shares() -> None:
    rows = []
    for stratum, n, shares in (("Built-up", 4, (0.31, 0.69)), ("Tree cover", 9, (0.06, 0.94))):
        for rank, (group, share) in enumerate(
            sorted(zip(("viirs", "s2"), shares, strict=True), key=lambda x: -x[1]), 1
        ):
            rows.append(
                {
                    "by": "dominant:esa_wc",
                    "stratum": stratum,
                    "n": n,
                    "few_samples": n < 5,
                    "method": "occlusion",
                    "level": "output",
                    "distance": "euclidean",
                    "strategy": "zeros",
                    "group": group,
                    "mean": share,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "share": share,
                    "rank": rank,
                }
            )
    text = describe_strata(pd.DataFrame(rows, columns=STRATA_COLUMNS))
    assert (
        "VIIRS night lights carry 31 % of the influence in built-up scenes (n = 4) and 6 % "
        "in tree cover scenes (n = 9)."
    ) in text
    assert "Sentinel-2 ranks first in every stratum." in text
    assert any("Built-up" in line and "Too few" in line for line in text)
