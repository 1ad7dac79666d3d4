"""modalens mtl compare: three models per seed, tables, paired tests, nothing retrained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import mtl_config
from scipy import stats  # an independent reference (in the test extras: never skipped)

from modalens.cli import main
from modalens.multitask import compare, paired_test
from modalens.multitask.paired import wilcoxon_signed_rank


def test_compare_writes_tables_and_a_rerun_retrains_nothing(mapinwild_root, tmp_path):
    cfg = mtl_config(mapinwild_root, targets=["s1"])
    cfg["model"] = {"base_width": 4, "depth": 2}
    out = tmp_path / "cmp"
    result = compare(cfg, out, seeds="0,1", progress=False, timing_samples=1)
    assert result.statuses == {"trained": 6}
    table = pd.read_csv(out / "mtl_compare.csv")
    assert list(table["model"]) == ["unimodal", "fusion", "multitask"]
    assert list(table["inputs"]) == ["s2", "s2+s1", "s2"]
    assert (table["metric"] == "mae").all() and (table["n_seeds"] == 2).all()
    assert table["std"].notna().all() and (table["train_s_per_epoch"] > 0).all()
    params = table.set_index("model")
    # the multitask model trains a head more than the unimodal one but predicts with the same
    assert params.loc["multitask", "parameters"] == params.loc["unimodal", "parameters"] + 4 * 2 + 2
    assert params.loc["multitask", "parameters_main"] == params.loc["unimodal", "parameters"]
    tests = pd.read_csv(out / "mtl_tests.csv")
    assert list(tests["baseline"]) == ["unimodal", "fusion"]
    assert (tests["n_pairs"] == 2 * 2).all()  # 2 test samples x 2 seeds
    assert tests["p_value"].between(0, 1).all()
    assert "Wilcoxon" in (out / "mtl_compare.md").read_text()

    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("best.ckpt")}
    again = compare(cfg, out, seeds="0,1", progress=False, timing_samples=1)
    assert again.statuses == {"skipped": 6}
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("best.ckpt")} == stamps
    pd.testing.assert_frame_equal(again.table, result.table)


def test_compare_refuses_a_config_without_auxiliary(mapinwild_root, tmp_path, capsys):
    cfg = tmp_path / "plain.yaml"
    cfg.write_text(f"data: {{preset: mapinwild, root: {mapinwild_root}}}\n")
    assert main(["mtl", "compare", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "auxiliary" in err[0]


def test_wilcoxon_against_hand_and_scipy_values():
    # n=5, all positive: W = 0, exact p = 2 / 2^5
    stat, p, method = wilcoxon_signed_rank([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (stat, method) == (0.0, "exact") and p == pytest.approx(2 / 32)
    assert wilcoxon_signed_rank([0.0, 0.0]) == (0.0, 1.0, "none")
    t = paired_test([3.0, 2.0, 5.0], [1.0, 2.0, 1.0])
    assert t.n_pairs == 3 and t.mean_diff == pytest.approx(2.0) and t.median_diff == 2.0
    rng = np.random.default_rng(0)
    for n in (12, 40, 80, 300):
        d = np.round(rng.normal(0.2, 1.0, n), 1 if n == 80 else 6)
        ours = wilcoxon_signed_rank(d)
        ref = stats.wilcoxon(d)
        assert ours[0] == pytest.approx(ref.statistic) and ours[1] == pytest.approx(ref.pvalue)
