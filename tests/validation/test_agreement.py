"""Agreement of ablation deviations and occlusion influence: constructed cases and a tiny run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modalens.errors import DataError, SpecError
from modalens.validation import AblationResult, ablate, agreement, format_agreement
from modalens.validation.agree import COLUMNS, aggregate
from modalens.validation.settings import plan_settings

MODALITIES = ["a", "b", "c", "d"]
GAPS = {"a": 0.40, "b": 0.30, "c": 0.20, "d": 0.10}  # how much worse each single run is


def _fake_ablation(
    out: Path,
    n_samples: int = 6,
    *,
    single: dict[str, float] | None = None,
    loo: dict[str, float] | None = None,
    metric: str = "mae",
    task: str = "regression",
    per_sample_nan: tuple[str, ...] = (),
) -> Path:
    """An ablation folder by hand: ablation.json and one metrics_test.csv per setting, where
    the single run of m is worse than all by ``single[m]`` (default GAPS) and its leave-one-out
    run by ``loo[m]`` (default half that), "worse" in ``metric``'s direction (higher for mae,
    lower for iou). ``per_sample_nan`` columns are pooled-only (NaN per sample)."""
    single = GAPS if single is None else single
    loo = {m: g / 2 for m, g in single.items()} if loo is None else loo
    sign = 1.0 if metric in ("mae", "rmse") else -1.0
    ids = [f"s{i}" for i in range(n_samples)]
    rng = np.random.default_rng(0)
    base = 0.5 + 0.02 * rng.random(n_samples)
    for setting in plan_settings(MODALITIES):
        gaps = {"all": {}, "single": single, "leave_one_out": loo}[setting.kind]
        value = base + sign * gaps.get(setting.modality, 0.0)
        rows = [
            {"id": i, "n": 100, "loss": v, metric: v, "rmse": v * 1.2, "accuracy": 0.9}
            for i, v in zip(ids, value, strict=True)
        ]
        pooled = {"id": "all", "n": 100 * n_samples, "loss": value.mean(), metric: value.mean()}
        pooled.update({c: 0.5 for c in per_sample_nan})
        for row in rows:
            row.update({c: np.nan for c in per_sample_nan})
        folder = out / "runs" / setting.run_name(0)
        folder.mkdir(parents=True)
        pd.DataFrame([pooled, *rows]).to_csv(folder / "metrics_test.csv", index=False)
    record = {"config": {}, "modalities": MODALITIES, "seeds": [0], "task": task}
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
    # the all-modality run was attributed, in a folder of its own, with the default fill (mean)
    # beside the paper's four, at the default levels (loss, output) and the paper's embedding
    attributed = ablation.run_dir("all") / "attribution"
    assert (attributed / "test-agreement" / "scores.parquet").is_file()
    assert not (attributed / "test").exists()  # the default attribution's folder is left alone
    assert len(table) == 2 * 5 * 3
    assert set(table["deviation"]) == {"single", "leave_one_out"}
    assert set(table["strategy"]) == {"mean", "zeros", "ones", "uniform", "gaussian"}
    assert set(table["level"]) == {"loss", "output", "embedding"}
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
    keys = ["deviation", "level", "strategy"]
    # shares are signed (correlation.shares): their magnitudes sum to 1 in every block; the
    # distances of the embedding and output levels are non-negative, so their shares sum to 1
    # (the loss level's influence is a signed change of the loss)
    magnitudes = result.values.assign(m=result.values["influence_share"].abs()).groupby(keys)["m"]
    np.testing.assert_allclose(magnitudes.sum(), 1.0)
    distances = result.values[result.values["level"] != "loss"]
    np.testing.assert_allclose(distances.groupby(keys)["influence_share"].sum(), 1.0)
    assert len(distances.groupby(keys)) == 2 * 5 * 2
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


def _deviation(values: pd.DataFrame, kind: str) -> dict[str, float]:
    first = values[(values["deviation"] == kind) & (values["level"] == "output")]
    return dict(zip(first["modality"], first["deviation_value"], strict=True))


@pytest.mark.parametrize(
    ("metric", "task"), [("mae", "regression"), ("iou", "segmentation")], ids=["mae", "iou"]
)
def test_deviations_keep_their_sign(tmp_path: Path, metric: str, task: str) -> None:
    # leaving out d *improves* the metric by 0.05 (lower MAE / higher IoU); c alone beats all
    single = {"a": 0.40, "b": 0.30, "c": -0.02, "d": 0.10}
    loo = {"a": 0.20, "b": 0.15, "c": 0.10, "d": -0.05}
    out = _fake_ablation(tmp_path / "abl", single=single, loo=loo, metric=metric, task=task)
    influence = {"a": 4.0, "b": 2.5, "c": 1.0, "d": 0.2}
    result = agreement(out, [_scores(influence)], n_boot=0, figure=False, progress=False)
    assert result.metric == metric and result.headline == metric
    for kind, expected in (("leave_one_out", loo), ("single", single)):
        got = _deviation(result.values, kind)
        assert got == pytest.approx(expected, abs=1e-9)  # signed: d (loo) and c (single) < 0
    row = result.table[
        (result.table["deviation"] == "leave_one_out") & (result.table["level"] == "output")
    ].iloc[0]
    # d's share is negative; the magnitudes (0.20 + 0.15 + 0.10 + 0.05) sum to 1
    shares = result.values[
        (result.values["deviation"] == "leave_one_out") & (result.values["level"] == "output")
    ].set_index("modality")["deviation_share"]
    assert shares["d"] == pytest.approx(-0.05 / 0.50)
    assert shares.abs().sum() == pytest.approx(1.0)
    assert row["spearman"] == pytest.approx(1.0) and row["pairs_alike"] == row["pairs"] == 6


def test_a_negative_deviation_changes_the_ranking(tmp_path: Path) -> None:
    # the magnitudes |0.3|, |-0.4| would rank b first; signed, b is last
    loo = {"a": 0.30, "b": -0.40, "c": 0.20, "d": 0.10}
    out = _fake_ablation(tmp_path / "abl", loo=loo)
    influence = {"a": 4.0, "b": 0.1, "c": 2.0, "d": 1.0}  # the signed order a > c > d > b
    result = agreement(out, [_scores(influence)], n_boot=0, progress=False)
    row = result.table[result.table["deviation"] == "leave_one_out"].iloc[0]
    assert row["spearman"] == pytest.approx(1.0) and row["pairs_alike"] == 6
    assert result.paths["png"].stat().st_size > 1000  # the figure draws a bar below zero


@pytest.mark.parametrize(
    ("task", "columns", "headline"),
    [
        ("regression", ("rmse", "mae"), "mae"),
        ("classification", ("f1", "map"), "map"),
        ("segmentation", ("iou", "iou_positive"), "iou_positive"),
        ("segmentation", ("f1", "iou"), "iou"),
    ],
)
def test_the_task_headline_metric_is_used(
    tmp_path: Path, task: str, columns: tuple[str, ...], headline: str
) -> None:
    out = _fake_ablation(tmp_path / "abl", metric=columns[0], task=task)
    for path in (out / "runs").glob("*/metrics_test.csv"):
        table = pd.read_csv(path)
        for c in columns[1:]:
            table[c] = table[columns[0]]
        table.to_csv(path, index=False)
    scores = _scores({"a": 4.0, "b": 2.5, "c": 1.0, "d": 0.2})
    result = agreement(out, [scores], n_boot=0, figure=False, progress=False)
    assert result.metric == result.headline == headline
    assert set(result.table["metric"]) == set(result.table["headline"]) == {headline}
    assert "headline" not in format_agreement(result.table)  # nothing to note
    # another metric asked for by name is used, and the table says it is not the headline
    other = agreement(out, [scores], metric="accuracy", n_boot=0, figure=False, progress=False)
    assert other.metric == "accuracy" and other.headline == headline
    assert f"not the task's headline metric {headline}" in format_agreement(other.table)


def test_no_silent_fallback_from_the_headline(tmp_path: Path) -> None:
    # a segmentation whose IoU exists only pooled (as before per-sample IoU was defined)
    out = _fake_ablation(
        tmp_path / "abl", metric="accuracy", task="segmentation", per_sample_nan=("iou",)
    )
    scores = _scores({"a": 4.0, "b": 2.5, "c": 1.0, "d": 0.2})
    with pytest.warns(
        UserWarning,
        match="headline metric 'iou' has no per-sample values.*"
        "the deviations use 'accuracy' instead",
    ):
        result = agreement(out, [scores], n_boot=0, figure=False, progress=False)
    assert result.metric == "accuracy" and result.headline == "iou"
    saved = pd.read_csv(out / "agreement.csv")
    assert set(saved["headline"]) == {"iou"} and set(saved["metric"]) == {"accuracy"}
    text = format_agreement(saved)
    assert "Note: deviations in accuracy, not the task's headline metric iou." in text
    # a task without a known headline says so too
    record = json.loads((out / "ablation.json").read_text())
    (out / "ablation.json").write_text(json.dumps({**record, "task": None}))
    with pytest.warns(UserWarning, match="no headline metric of task None is known"):
        agreement(out, [scores], n_boot=0, figure=False, progress=False)


def test_few_modalities_and_samples_are_not_findings(tmp_path: Path) -> None:
    out = _fake_ablation(tmp_path / "abl")
    table = agreement(
        out,
        [_scores({"a": 4.0, "b": 2.5, "c": 1.0, "d": 0.2})],
        n_boot=50,
        figure=False,
        progress=False,
    ).table
    text = format_agreement(table)
    assert "pairs alike 6/6" in text
    assert "each correlation is over 4 modalities only" in text
    assert "the intervals resample 6 test samples: too few to be a finding" in text


def test_segmentation_ablation_uses_the_per_sample_iou(
    tmp_path: Path, make_mapinwild: Any, make_config: Any
) -> None:
    cfg = make_config(use=["s2", "s1"])
    cfg["data"]["root"] = str(make_mapinwild(n=8, size=32, splits=(4, 1, 3)))
    cfg["data"]["preset_options"] = {"target": "mask"}  # protected-area classes 0-3
    result = ablate(cfg, tmp_path / "abl", seeds=(0,), progress=False)
    tested = pd.read_csv(result.run_dir("all") / "metrics_test.csv", dtype={"id": str})
    per_sample = tested[tested["id"] != "all"]
    per_class = [f"iou_{c}" for c in range(4)]
    assert per_sample[["iou_macro", "f1_macro", "accuracy", *per_class]].notna().all().all()
    ids = list(per_sample["id"])
    scores = pd.DataFrame(
        [
            {"sample_id": i, "method": "occlusion", "level": "output", "distance": "euclidean",
             "strategy": "mean", "group": g, "value": v}
            for i in ids
            for g, v in (("s2", 2.0), ("s1", 1.0))
        ]
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the headline is there: no substitute, no warning
        got = agreement(result.out, [scores], n_boot=0, figure=False, progress=False)
    assert got.metric == got.headline == "iou_macro"  # not accuracy, as before
    assert set(got.values["metric"]) == {"iou_macro"}
