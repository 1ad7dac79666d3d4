"""Agreement of ablation deviations and occlusion influence: constructed cases and a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalens.errors import DataError, SpecError
from modalens.validation import AblationResult, agreement, plan_settings
from modalens.validation.agree import COLUMNS, aggregate

MODALITIES = ["a", "b", "c", "d"]
GAPS = {"a": 0.40, "b": 0.30, "c": 0.20, "d": 0.10}  # how much worse each single run is


def _fake_ablation(out: Path, n_samples: int = 6) -> Path:
    """An ablation folder by hand: ablation.json and one metrics_test.csv per setting, where
    the single run of m is worse than all by GAPS[m] (its leave-one-out run by half that)."""
    ids = [f"s{i}" for i in range(n_samples)]
    rng = np.random.default_rng(0)
    base = 0.1 + 0.02 * rng.random(n_samples)
    for setting in plan_settings(MODALITIES):
        gap = 0.0 if setting.kind == "all" else GAPS[setting.modality]
        gap = gap / 2 if setting.kind == "leave_one_out" else gap
        mae = base + gap
        rows = [
            {"id": i, "n": 100, "loss": m, "mae": m, "rmse": m * 1.2}
            for i, m in zip(ids, mae, strict=True)
        ]
        pooled = {"id": "all", "n": 100 * n_samples, "loss": mae.mean(), "mae": mae.mean()}
        folder = out / "runs" / setting.run_name(0)
        folder.mkdir(parents=True)
        pd.DataFrame([pooled, *rows]).to_csv(folder / "metrics_test.csv", index=False)
    record = {"config": {}, "modalities": MODALITIES, "seeds": [0], "task": "regression"}
    (out / "ablation.json").write_text(json.dumps(record))
    return out


def _scores(influence: dict[str, float], n_samples: int = 6) -> pd.DataFrame:
    """Long-form occlusion scores: per sample the influence times a factor in [1, 1.2]
    (the ranking holds in every sample), one strategy at two levels, plus ALL rows."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_samples):
        factor = 1 + 0.2 * rng.random()
        for level in ("embedding", "output"):
            for group, value in [*influence.items(), ("ALL", 9.0)]:
                rows.append(
                    {
                        "sample_id": f"s{i}",
                        "window": "0,0,8,8",
                        "method": "occlusion",
                        "level": level,
                        "distance": "euclidean",
                        "strategy": "zeros",
                        "group": group,
                        "draw": 0,
                        "value": value * factor,
                    }
                )
    return pd.DataFrame(rows)


def test_perfect_agreement(tmp_path: Path) -> None:
    out = _fake_ablation(tmp_path / "abl")
    influence = {"a": 4.0, "b": 2.5, "c": 1.0, "d": 0.2}  # same order as GAPS
    result = agreement(out, [_scores(influence)], n_boot=200, progress=False)
    table = result.table
    assert len(table) == 4  # 2 deviation kinds x 2 levels
    for col in ("spearman", "kendall", "spearman_low", "spearman_high", "kendall_low"):
        np.testing.assert_allclose(table[col], 1.0)
    assert (table["pearson"] > 0.8).all()
    assert set(table["n_samples"]) == {6} and set(table["n_modalities"]) == {4}
    values = result.values
    single = values[(values["deviation"] == "single") & (values["level"] == "embedding")]
    np.testing.assert_allclose(single["deviation_share"], [0.4, 0.3, 0.2, 0.1])
    assert single["influence_share"].sum() == pytest.approx(1.0)


def test_reversed_agreement(tmp_path: Path) -> None:
    out = _fake_ablation(tmp_path / "abl")
    influence = {"a": 0.2, "b": 1.0, "c": 2.5, "d": 4.0}
    table = agreement(out, [_scores(influence)], n_boot=200, figure=False, progress=False).table
    for col in ("spearman", "kendall", "spearman_high", "kendall_high"):
        np.testing.assert_allclose(table[col], -1.0)
    assert (table["pearson"] < -0.8).all()


def test_tied_influence_is_not_perfect(tmp_path: Path) -> None:
    out = _fake_ablation(tmp_path / "abl")
    influence = {"a": 3.0, "b": 1.0, "c": 1.0, "d": 0.5}  # b and c tie
    table = agreement(out, [_scores(influence)], n_boot=0, figure=False, progress=False).table
    row = table[table["deviation"] == "single"].iloc[0]
    # ranks 4, 2.5, 2.5, 1 against 4, 3, 2, 1
    assert row["spearman"] == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert row["kendall"] == pytest.approx(5 / np.sqrt(5 * 6))
    assert np.isnan(row["spearman_low"]) and row["n_boot"] == 0


def test_pooled_metrics_are_recomputed_exactly(ablation: AblationResult) -> None:
    metrics = pd.read_csv(ablation.run_dir("all") / "metrics_test.csv", dtype={"id": str})
    pooled, rows = metrics.iloc[0], metrics.iloc[1:]
    idx = np.arange(len(rows))[None]
    for metric in ("mae", "rmse", "loss"):
        value = aggregate(rows[metric].to_numpy(), rows["n"].to_numpy(), idx, metric)[0]
        assert value == pytest.approx(pooled[metric], rel=1e-5)


def test_agreement_of_the_tiny_ablation(ablation: AblationResult) -> None:
    result = agreement(ablation.out, n_boot=100, progress=False)
    table = pd.read_csv(ablation.out / "agreement.csv")
    assert list(table.columns) == COLUMNS
    # the all-modality run was attributed with the paper's four strategies at two levels
    assert (ablation.run_dir("all") / "attribution" / "test" / "scores.parquet").is_file()
    assert len(table) == 2 * 4 * 2
    assert set(table["deviation"]) == {"single", "leave_one_out"}
    assert set(table["strategy"]) == {"zeros", "ones", "uniform", "gaussian"}
    assert set(table["level"]) == {"embedding", "output"}
    assert set(table["n_modalities"]) == {4} and set(table["n_samples"]) == {4}
    for name in ("spearman", "kendall", "pearson"):
        for col in (name, f"{name}_low", f"{name}_high"):
            finite = table[col].dropna()
            assert ((finite >= -1) & (finite <= 1)).all()
        both = table[[f"{name}_low", f"{name}_high"]].dropna()
        assert (both[f"{name}_low"] <= both[f"{name}_high"] + 1e-12).all()
    assert table["spearman"].notna().all()
    for suffix in ("png", "svg"):
        assert (ablation.out / f"agreement.{suffix}").stat().st_size > 1000
    shares = result.values.groupby(["deviation", "level", "strategy"])["influence_share"].sum()
    np.testing.assert_allclose(shares, 1.0)
    # the same seed gives the same numbers
    again = agreement(ablation.out, n_boot=100, figure=False, progress=False)
    pd.testing.assert_frame_equal(again.table, result.table)


def test_agreement_errors(tmp_path: Path, ablation: AblationResult) -> None:
    with pytest.raises(DataError, match="not an ablation folder"):
        agreement(tmp_path, progress=False)
    out = _fake_ablation(tmp_path / "abl")
    scores = _scores({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0})
    with pytest.raises(SpecError, match="'iou' has no per-sample values"):
        agreement(out, [scores], metric="iou", progress=False)
    with pytest.raises(SpecError, match="no runs of seed"):
        agreement(out, [scores], seeds=(3,), progress=False)
    with pytest.raises(DataError, match="no block whose groups are the modalities"):
        agreement(out, [scores.assign(group="band1")], progress=False)
    (out / "runs" / "single-c-seed0" / "metrics_test.csv").unlink()
    with pytest.raises(DataError, match="not finished"):
        agreement(out, [scores], seeds=(0,), progress=False)
