"""Resuming an ablation: finished runs are skipped, interrupted ones continued, others refused."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from modalens.errors import SpecError
from modalens.training import fit
from modalens.validation import AblationResult, RunRecord, ablate
from modalens.validation.settings import plan_settings, run_config


def _mtimes(out: Path) -> dict[str, int]:
    return {
        p.parent.parent.name: p.stat().st_mtime_ns
        for p in (out / "runs").glob("*/checkpoints/best.ckpt")
    }


def test_rerun_retrains_only_the_damaged_run(
    ablation: AblationResult, base_config: dict, tmp_path: Path
) -> None:
    out = tmp_path / "abl"
    shutil.copytree(ablation.out, out)
    damaged = out / "runs" / "single-s1-seed0"
    (damaged / "metrics_test.csv").unlink()
    shutil.rmtree(damaged / "checkpoints")
    before = _mtimes(out)
    result = ablate(base_config, out, seeds=(0,), progress=False)
    assert {r.path.name: r.status for r in result.records if r.status != "skipped"} == {
        "single-s1-seed0": "resumed"
    }
    assert result.statuses == {"skipped": 8, "resumed": 1}
    after = _mtimes(out)
    assert set(after) == set(before) | {"single-s1-seed0"}
    assert all(after[name] == t for name, t in before.items())
    # the same seed trains the same model again: same test numbers on CPU
    old = ablation.table.set_index("setting")
    new = result.table.set_index("setting")
    assert new.loc["single-s1", "mae"] == pytest.approx(old.loc["single-s1", "mae"], rel=1e-6)
    assert len(pd.read_csv(out / "table1.csv")) == 9


def test_interrupted_ablation_resumes_and_seeds_give_mean_and_std(
    make_config: Callable[..., dict], tmp_path: Path
) -> None:
    cfg = make_config(use=["s2", "s1"])
    out = tmp_path / "abl2"
    done: list[RunRecord] = []

    def stop_after_two(record: RunRecord) -> None:
        done.append(record)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ablate(cfg, out, seeds="0,1", progress=False, on_run=stop_after_two)
    assert len(pd.read_csv(out / "table1.csv")) == 2  # finished rows are on disk
    first = _mtimes(out)
    result = ablate(cfg, out, seeds="0,1", progress=False)
    assert [r.status for r in result.records] == ["skipped"] * 2 + ["trained"] * 4
    assert all(_mtimes(out)[name] == t for name, t in first.items())

    table = pd.read_csv(out / "table1.csv", dtype={"seed": str})
    assert list(table["setting"]) == ["all"] * 3 + ["single-s2"] * 3 + ["single-s1"] * 3
    assert list(table["seed"]) == ["0", "1", "mean"] * 3
    for col in ("mae_std", "rmse_std", "train_s_per_epoch_std", "infer_s_per_sample_std"):
        assert col in table.columns
    for _, group in table.groupby("setting"):
        runs, mean = group[group["seed"] != "mean"], group[group["seed"] == "mean"].iloc[0]
        assert mean["n_seeds"] == 2
        assert mean["mae"] == pytest.approx(runs["mae"].mean())
        assert mean["mae_std"] == pytest.approx(runs["mae"].std(ddof=1))
        assert runs["mae_std"].isna().all()
    text = (out / "table1.md").read_text()
    assert "±" in text and "mean ± std over seeds 0, 1" in text
    assert "leaving s2 out is using s1 alone" in text


def test_partly_trained_run_is_continued(make_config: Callable[..., dict], tmp_path: Path) -> None:
    cfg = make_config(use=["s2"], epochs=2)
    out = tmp_path / "abl1"
    (setting,) = plan_settings(["s2"])
    # an interrupted run: one of its two epochs trained (train.epochs may grow on resume)
    first = run_config(cfg, setting, 0)
    first["train"]["epochs"] = 1
    fit(first, out=out / "runs" / "all-seed0", progress=False)
    result = ablate(cfg, out, seeds=(0,), progress=False)
    assert [r.status for r in result.records] == ["resumed"]
    assert len(pd.read_csv(out / "runs" / "all-seed0" / "metrics.csv")) == 2
    assert result.table.loc[0, "epochs"] == 2
    assert result.table.loc[0, "modalities"] == "s2"


def test_other_configuration_is_refused(
    make_config: Callable[..., dict], ablation: AblationResult, tmp_path: Path
) -> None:
    out = tmp_path / "abl"
    shutil.copytree(ablation.out, out)
    other = make_config(lr=0.01)
    # the ablation folder's record names the differing key
    with pytest.raises(SpecError) as info:
        ablate(other, out, progress=False)
    message = str(info.value)
    assert "'train.lr'" in message and "ablation.json" in message and "\n" not in message
    # without the record, the run folder's own config refuses it
    (out / "ablation.json").unlink()
    with pytest.raises(SpecError) as info:
        ablate(other, out, progress=False)
    message = str(info.value)
    assert "all-seed0" in message and "'train.lr'" in message and "\n" not in message
    # a folder holding another seed's run
    shutil.copytree(out / "runs" / "all-seed0", out / "runs" / "all-seed1")
    with pytest.raises(SpecError) as info:
        ablate(make_config(), out, seeds=(1,), progress=False)
    assert "holds another run (seed 0" in str(info.value)
