"""One modality-dropout model against the ablation's retraining (dropout_vs_ablation)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from modalens.validation import AblationResult
from modalens.validation.dropout_check import (
    _seed_rows,
    _seed_summary,
    describe_dropout_check,
    dropout_vs_ablation,
)

MODS = ["s2", "s1", "esa_wc", "viirs"]


def test_compares_the_dropout_models_subsets_with_the_retrained_rows(
    tmp_path: Path, base_config: dict[str, Any], ablation: AblationResult
) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(ablation.out, out / "ablation")  # the shared ablation, reused as finished
    result = dropout_vs_ablation(base_config, out, seeds=(0,), progress=False)
    rows = result.rows
    names = ["all", *(f"single-{m}" for m in MODS), *(f"leaveout-{m}" for m in MODS)]
    assert list(rows["setting"]) == names
    metric = str(rows["metric"].iloc[0])
    table1 = ablation.table[ablation.table["seed"].astype(str) == "0"].set_index("setting")
    for r in rows.itertuples():
        assert r.retrained == pytest.approx(float(table1.loc[r.setting, metric]))
    run = out / "dropout" / "runs" / "all-seed0"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["modality_dropout"]["p"] == 0.25  # the default
    assert saved["train"]["epochs"] == 2 * base_config["train"]["epochs"]  # EPOCH_FACTOR
    subsets = pd.read_csv(run / "subsets-test" / "subsets.csv").set_index("subset")
    assert rows.iloc[0]["dropout_subset"] == pytest.approx(subsets.loc["+".join(MODS), metric])
    assert rows.iloc[5]["dropout_subset"] == pytest.approx(subsets.loc["s1+esa_wc+viirs", metric])
    t = result.table.iloc[0]
    for col in ("spearman_single", "spearman_loo", "spearman_shapley_loo"):
        assert -1.0 - 1e-9 <= t[col] <= 1.0 + 1e-9
    assert math.isnan(t["spearman_loo_seeds"])  # one seed: no noise floor
    ablation_s = sum(float(table1.loc[n, "epochs"]) * float(table1.loc[n, "train_s_per_epoch"])
                     for n in names)  # fmt: skip
    assert t["ablation_s"] == pytest.approx(ablation_s)
    assert t["compute_ratio"] == pytest.approx((t["dropout_train_s"] + t["subsets_s"]) / ablation_s)
    text = (out / "dropout_check.md").read_text()
    assert "Rankings:" in text and "Compute:" in text
    assert (out / "dropout_check.csv").is_file() and (out / "dropout_rows.csv").is_file()


def _rows(dropout: list[float]) -> list[dict[str, Any]]:
    retrained = {"all": 0.1, **{f"single-{m}": 0.2 + 0.1 * i for i, m in enumerate(MODS)},
                 **{f"leaveout-{m}": 0.5 - 0.1 * i for i, m in enumerate(MODS)}}  # fmt: skip
    subsets = pd.DataFrame({"subset": ["+".join(MODS), *MODS,
                                       *("+".join(o for o in MODS if o != m) for m in MODS)],
                            "mae": dropout})  # fmt: skip
    return _seed_rows(0, {k: {"mae": v} for k, v in retrained.items()}, subsets, MODS, "mae")


def test_perfect_and_reversed_agreement() -> None:
    cost = {"epochs": 10, "train_s_per_epoch": 1.0, "n_test": 4, "infer_s_per_sample": 0.01}
    shap = pd.DataFrame({"shapley": [4.0, 3.0, 2.0, 1.0]})
    same = _rows([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.4, 0.3, 0.2])
    s = _seed_summary(0, same, "mae", 90.0, cost, shap, 15)
    assert s["spearman_single"] == pytest.approx(1.0) and s["spearman_loo"] == pytest.approx(1.0)
    assert s["spearman_shapley_loo"] == pytest.approx(1.0) and s["mean_abs_diff"] < 1e-12
    assert s["compute_ratio"] == pytest.approx((10.0 + 15 * 4 * 0.01) / 90.0)
    flipped = _rows([0.11, 0.5, 0.4, 0.3, 0.2, 0.2, 0.3, 0.4, 0.5])
    s = _seed_summary(0, flipped, "mae", 90.0, cost, shap, 15)
    assert s["spearman_single"] == pytest.approx(-1.0) and s["spearman_loo"] == pytest.approx(-1.0)
    assert s["all_worse_rel"] == pytest.approx(0.1)  # 0.11 against 0.1, lower is better
    text = " ".join(describe_dropout_check(pd.DataFrame([s])))
    assert "not every seed" in text and "at most 10.0% worse" in text and "outside" in text
