"""Pruning: retrain without the k least influential modalities, resumable, within a tolerance."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from modalens.errors import DataError
from modalens.validation import AblationResult, describe_pruning, prune
from modalens.validation.pruning import least_influential, pruning_table
from modalens.validation.settings import subset_setting


def _summary(means: dict[str, float]) -> pd.DataFrame:
    """An attribution summary with two strategies that rank the modalities differently."""
    rows = []
    for strategy, sign in (("zeros", 1.0), ("gaussian", -1.0)):
        for group, mean in means.items():
            rows.append(
                {
                    "method": "occlusion",
                    "level": "embedding",
                    "distance": "euclidean",
                    "strategy": strategy,
                    "group": group,
                    "mean": sign * mean + 10,
                }
            )
    return pd.DataFrame(rows)


def _mtimes(out: Path) -> dict[str, int]:
    return {
        p.parent.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/checkpoints/*.ckpt")
    }


def test_subset_settings_share_the_ablation_names() -> None:
    mods = ["s2", "s1", "esa_wc", "viirs"]
    assert subset_setting(mods, mods).name == "all"
    assert subset_setting(mods, ["s1"]).name == "single-s1"
    assert subset_setting(mods, ["viirs", "s2", "s1"]).name == "leaveout-esa_wc"
    two = subset_setting(mods, ["s1", "s2"])
    assert (two.name, two.kind, two.use) == ("subset-s2+s1", "subset", ("s2", "s1"))


def test_ranking_follows_the_chosen_block() -> None:
    summary = _summary({"s2": 4.0, "s1": 3.0, "viirs": 1.0, "esa_wc": 2.0})
    order, block = least_influential(summary, ["s2", "s1", "viirs"], strategy="zeros")
    assert order == ["viirs", "s1", "s2"] and block["strategy"] == "zeros"
    order, _ = least_influential(summary, ["s2", "s1", "viirs"], strategy="gaussian")
    assert order == ["s2", "s1", "viirs"]
    with pytest.raises(DataError, match="present: zeros, gaussian"):
        least_influential(summary, ["s2"], strategy="ones")
    with pytest.raises(DataError, match="no influence"):
        least_influential(summary, ["s2", "mystery"], strategy="zeros")


@pytest.mark.parametrize(
    "metric, values", [("mae", [1.0, 1.04, 1.2, 0.9]), ("iou", [0.5, 0.48, 0.4, 0.6])]
)
def test_within_tolerance_follows_the_metric_direction(metric: str, values: list[float]) -> None:
    rows = [
        {
            "k": k,
            "dropped": "+".join("abc"[:k]),
            "kept": "+".join("abcd"[k:]),
            metric: v,
            "train_s_per_epoch": 2.0 / (k + 1),
            "infer_s_per_sample": 0.01,
            "parameters": 100,
            "n_test": 4,
            "run": f"runs/r{k}",
        }
        for k, v in enumerate(values)
    ]
    table = pruning_table(rows, [metric], 0.05, "occlusion/output/euclidean/zeros")
    assert list(table["k"]) == [0, 1, 2, 3]
    assert table["delta"].tolist() == pytest.approx([v - values[0] for v in values])
    rel = table["rel_delta"].to_numpy()
    worse = rel if metric == "mae" else -rel
    assert table["within_tolerance"].tolist() == [bool(w <= 0.05) for w in worse]
    assert table["within_tolerance"].tolist() == [True, True, False, True]
    assert table["speedup_train"].tolist() == pytest.approx([1, 2, 3, 4])
    text = describe_pruning(table)
    assert text[0].startswith("Dropping a, b and c (k = 3) keeps")
    assert "although a smaller k does not" in text[0]


def test_prune_trains_k_runs_in_ranking_order_and_resumes(
    make_config: Callable[..., dict], tmp_path: Path
) -> None:
    cfg = make_config(use=["s2", "s1", "viirs"], epochs=2)
    summary = _summary({"s2": 3.0, "s1": 1.0, "viirs": 2.0, "esa_wc": 0.5})
    out = tmp_path / "prune"
    result = prune(cfg, summary, out, tolerance=0.05, progress=False, strategy="zeros")
    assert result.ranking == ["s1", "viirs", "s2"]
    table = pd.read_csv(out / "pruning.csv")
    assert table["k"].tolist() == [0, 1, 2]
    assert table["dropped"].fillna("").tolist() == ["", "s1", "s1+viirs"]
    assert table["kept"].tolist() == ["s2+s1+viirs", "s2+viirs", "s2"]
    assert table["params"].is_monotonic_decreasing
    assert result.statuses == {"trained": 3}
    base = table.loc[0, "mae"]
    assert table["delta"].tolist() == pytest.approx((table["mae"] - base).tolist())
    assert table["within_tolerance"].tolist() == [
        bool(r <= 0.05 + 1e-12) for r in table["rel_delta"]
    ]
    assert math.isclose(table.loc[0, "speedup_train"], 1.0)
    for name in ("pruning.md", "pruning.png", "pruning.svg", "pruning.json"):
        assert (out / name).stat().st_size > 0
    before = _mtimes(out)
    again = prune(cfg, summary, out, tolerance=0.05, progress=False, strategy="zeros")
    assert again.statuses == {"skipped": 3}
    assert _mtimes(out) == before
    pd.testing.assert_frame_equal(again.table.reset_index(drop=True), result.table)


def test_prune_reuses_finished_ablation_runs(
    ablation: AblationResult, base_config: dict, tmp_path: Path
) -> None:
    summary = _summary({"s2": 4.0, "s1": 3.0, "esa_wc": 1.0, "viirs": 2.0})
    out = tmp_path / "prune"
    result = prune(base_config, summary, out, progress=False, strategy="zeros", reuse=ablation.out)
    # all, leaveout-esa_wc and single-s2 come from the ablation; s2+s1 is trained
    assert result.statuses == {"reused": 3, "trained": 1}
    assert [r.path.parent.parent for r in result.records if r.status == "reused"] == [
        ablation.out
    ] * 3
    table1 = ablation.table.set_index("setting")
    assert result.table.loc[0, "mae"] == pytest.approx(table1.loc["all", "mae"])
    assert not (out / "runs" / "all-seed0").exists()
