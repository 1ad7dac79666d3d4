"""The faithfulness benchmark on tiny settings: artefacts, value ranges, resuming, scoring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalens.errors import SpecError
from modalens.validation import FaithfulnessSettings, describe_faithfulness, faithfulness
from modalens.validation.faithfulness_scores import (
    SEED_COLUMNS,
    TABLE_COLUMNS,
    TRUTH_COLUMNS,
    loo_deviation,
    seed_rows,
    summarize_seeds,
)

TINY = {"model": {"base_width": 4, "depth": 2}, "train": {"batch_size": 4, "lr": 1e-3}}
SETTINGS = {
    "samples": 10,
    "size": 32,
    "epochs": 1,
    "config": TINY,
    "progress": False,
    "worlds": "planted",
}
MODS = ["s2", "s1", "esa_wc", "viirs", "decoy"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faith") / "bench"
    faithfulness(out, seeds="0", **SETTINGS)
    return out


def test_writes_every_artefact_with_its_columns(bench: Path) -> None:
    truth = pd.read_csv(bench / "truth.csv")
    assert list(truth.columns) == TRUTH_COLUMNS
    assert list(truth["modality"]) == MODS and set(truth["world"]) == {"planted"}
    assert truth["realised"].sum() == pytest.approx(1.0, abs=1e-4)
    assert truth.set_index("modality").loc["decoy", "null"]
    assert truth.set_index("modality").loc["decoy", ["nominal", "realised"]].tolist() == [0, 0]
    seeds = pd.read_csv(bench / "faithfulness_seeds.csv")
    assert list(seeds.columns) == SEED_COLUMNS
    table = pd.read_csv(bench / "faithfulness.csv")
    assert list(table.columns) == TABLE_COLUMNS
    methods = set(zip(table["method"], table["level"], strict=True))
    assert {("occlusion", "embedding"), ("occlusion", "output"), ("occlusion", "loss")} <= methods
    assert ("shapley", "output") in methods and ("leave_one_out", "retraining") in methods
    dropout = table[table["method"] == "modality_dropout"]
    assert sorted(dropout["strategy"]) == ["leave_one_out", "performance_shapley"]
    assert dropout["spearman_realised_mean"].between(-1 - 1e-9, 1 + 1e-9).all()
    assert {"zeros", "ones", "uniform", "gaussian", "mean"} <= set(table["strategy"].dropna())
    for col in ("spearman_realised", "spearman_nominal", "spearman_loo"):
        v = seeds[col].dropna()
        assert len(v) and ((v >= -1 - 1e-9) & (v <= 1 + 1e-9)).all()
    d = seeds["decoy_share"]
    assert d.notna().all() and ((d >= 0) & (d <= 1)).all()
    loo = seeds[seeds["method"] == "leave_one_out"]
    assert loo["spearman_loo"].iloc[0] == pytest.approx(1.0)
    assert seeds["recovered"].isin([True, False]).all()
    for name in ("faithfulness.md", "faithfulness.png", "faithfulness.svg"):
        assert (bench / name).stat().st_size > 0
    text = (bench / "faithfulness.md").read_text()
    assert "leave-one-out retraining" in text and "one dropout model, performance Shapley" in text
    assert (bench / "planted/seed0/dropout/runs/all-seed0/subsets-test/subsets.csv").is_file()


def test_rerun_reuses_finished_work(bench: Path) -> None:
    ckpts = sorted(bench.glob("planted/seed0/runs/*/checkpoints/best.ckpt"))
    assert len(ckpts) == 6  # all + one leave-one-out run per modality (decoy included)
    before = {p: p.stat().st_mtime_ns for p in ckpts}
    glob = "planted/seed0/attribution/parts/*.parquet"
    parts = {p: p.stat().st_mtime_ns for p in bench.glob(glob)}
    result = faithfulness(bench, seeds="0", **SETTINGS)
    assert result.statuses == {"skipped": 7}  # and the modality-dropout model
    assert {p: p.stat().st_mtime_ns for p in ckpts} == before
    assert {p: p.stat().st_mtime_ns for p in bench.glob(glob)} == parts
    with pytest.raises(SpecError, match="other settings"):
        faithfulness(bench, seeds="0", **{**SETTINGS, "samples": 12})


def _truth(realised: list[float]) -> pd.DataFrame:
    nominal = [0.4, 0.3, 0.2, 0.1, 0.0]
    rows = zip(MODS, nominal, realised, strict=True)
    return pd.DataFrame(
        [
            {"world": "w", "seed": 0, "modality": m, "nominal": n, "realised": r,
             "realised_se": 0.0, "null": m == "decoy"}
            for m, n, r in rows
        ]
    )  # fmt: skip


def _summary(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for strategy, vals in values.items():
        for m, v in zip([*MODS, "ALL"], [*vals, 9.0], strict=True):
            rows.append(
                {"method": "occlusion", "level": "output", "distance": "euclidean",
                 "strategy": strategy, "group": m, "mean": v}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_loo_deviation_is_negative_when_better_without() -> None:
    # without the modality: MAE 0.30 -> 0.25 (better), IoU 0.70 -> 0.60 (worse)
    assert loo_deviation({"mae": 0.30}, {"mae": 0.25}, "mae") == pytest.approx(-0.05)
    assert loo_deviation({"iou": 0.70}, {"iou": 0.60}, "iou") == pytest.approx(0.10)
    assert loo_deviation({"iou": 0.70}, {"iou": 0.75}, "iou") == pytest.approx(-0.05)


def test_scores_a_perfect_and_a_reversed_method() -> None:
    truth = _truth([0.5, 0.25, 0.15, 0.1, 0.0])  # s2 > s1 > esa_wc > viirs > decoy
    per_sample = np.tile([5.0, 2.5, 1.5, 1.0, 0.0], (12, 1)) + np.linspace(0, 0.1, 12)[:, None]
    per_sample[:, 4] = 0.0
    summary = _summary({"mean": [5, 4, 3, 2, 0], "ones": [0, 2, 3, 4, 5]})
    loo = dict(zip(MODS, [0.05, 0.04, 0.03, 0.01, -0.001], strict=True))
    rows = seed_rows(
        "w", 0, truth, per_sample, loo, summary, levels={"occlusion": ["output"]}, metric="mae"
    )
    by = rows.set_index("strategy")
    assert by.loc["mean", "spearman_realised"] == pytest.approx(1.0)
    assert by.loc["mean", "decoy_share"] == 0.0 and bool(by.loc["mean", "recovered"])
    assert by.loc["ones", "spearman_realised"] == pytest.approx(-1.0)
    assert by.loc["ones", "decoy_share"] == pytest.approx(5 / 14)
    assert not bool(by.loc["ones", "recovered"]) and "s2 vs s1" in by.loc["ones", "misordered"]
    assert by.loc["", "spearman_loo"] == pytest.approx(1.0)  # leave-one-out itself
    assert by.loc["", "decoy_share"] == 0.0  # better without the decoy -> no share
    table = summarize_seeds(pd.concat([rows, rows.assign(seed=1)]))
    best = table.iloc[0]
    assert best["strategy"] == "mean" and bool(best["recovers"]) and best["n_exact"] == 2
    assert not bool(table.set_index("strategy").loc["ones", "recovers"])
    text = describe_faithfulness(table)
    good = "output-level occlusion with mean fill recovers every world"
    assert any(good in s.lower() for s in text)
    assert all(isinstance(s, str) and s.endswith(".") for s in text)
    assert not math.isnan(np.float64(table["spearman_loo_mean"].iloc[0]))


def test_a_table_from_before_the_worlds_is_still_read() -> None:
    old = pd.DataFrame(
        [{"method": "occlusion", "level": "output", "distance": "euclidean", "strategy": "mean",
          "n_seeds": 3, "spearman_realised_mean": 0.9, "spearman_realised_std": 0.1,
          "spearman_loo_mean": 0.9, "spearman_loo_std": 0.1, "decoy_share_mean": 0.02,
          "decoy_share_std": 0.0, "recovers": True, "n_exact": 1}]
    )  # fmt: skip
    text = describe_faithfulness(old)
    assert "1 of 1 attribution methods recover all 1 worlds" in text[0]


def test_settings_are_a_typed_model_with_one_line_errors(tmp_path: Path) -> None:
    s = FaithfulnessSettings(seeds="1,0", worlds="planted,real", importance="s2=1,decoy=0")
    assert s.seeds == (1, 0) and s.worlds == ("planted", "real")
    record = s.record()
    assert record["importance"] == {"s2": 1.0, "s1": 0.0, "esa_wc": 0.0, "viirs": 0.0}
    assert record["decoy"] is True and record["worlds"] == ["planted", "real"]
    assert record["sparsity"] == {"s1": 0.8, "viirs": 0.75}  # the default
    assert FaithfulnessSettings().replace(epochs=3) == FaithfulnessSettings(epochs=3)
    bad = [
        ({"epochs": 0}, "--epochs"),
        ({"worlds": "mars"}, "unknown world 'mars'"),
        ({"seeds": "0,x"}, "bad seed 'x'"),
        ({"importance": "s3=1"}, "--importance"),
        ({"sparsity": "viirs=2"}, "--sparsity"),
        ({"sample": 3}, "unknown benchmark setting 'sample'"),
    ]
    for kw, expected in bad:
        with pytest.raises(SpecError) as err:
            faithfulness(tmp_path / "bench", **kw)
        assert expected in str(err.value) and "\n" not in str(err.value), kw
    assert not (tmp_path / "bench").exists()  # refused before anything is written


def test_importances_not_summing_to_1_are_noted(tmp_path: Path, caplog, monkeypatch) -> None:
    """The benchmark says how it normalised planted importances, as ``synth`` does."""
    import importlib
    import logging

    bench = importlib.import_module("modalens.validation.faithfulness")  # the module

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before any world")

    monkeypatch.setattr(bench, "_one_seed", stop)
    with caplog.at_level(logging.DEBUG, logger="modalens"), pytest.raises(RuntimeError):
        bench.faithfulness(tmp_path / "b", importance="s2=2,s1=2", worlds="planted", seeds="0",
                           progress=False)  # fmt: skip
    assert "the importances sum to 4, not 1: normalised to s2=0.5,s1=0.5,esa_wc=0,viirs=0" in (
        caplog.text
    )
