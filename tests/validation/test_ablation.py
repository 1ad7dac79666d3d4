"""Table I of a tiny 4-modality ablation: rows, columns and numbers consistent with the runs."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from modalens.training import load_run
from modalens.validation import AblationResult, measure
from modalens.validation.table import LEADING, TRAILING

SETTINGS = [
    "all",
    "single-s2",
    "single-s1",
    "single-esa_wc",
    "single-viirs",
    "leaveout-s2",
    "leaveout-s1",
    "leaveout-esa_wc",
    "leaveout-viirs",
]


def test_nine_runs_with_table_columns(ablation: AblationResult) -> None:
    table = pd.read_csv(ablation.table_csv, dtype={"seed": str})
    assert list(table["setting"]) == SETTINGS
    assert list(table.columns) == [*LEADING, "mae", "rmse", *TRAILING]
    assert ablation.metrics == ["mae", "rmse"]
    assert ablation.task == "regression"
    assert ablation.statuses == {"trained": 9}
    assert set(table["seed"]) == {"0"}
    for name in SETTINGS:
        assert (ablation.run_dir(name) / "checkpoints" / "best.ckpt").is_file()


def test_modalities_column_matches_what_each_run_used(ablation: AblationResult) -> None:
    table = pd.read_csv(ablation.table_csv)
    for _, row in table.iterrows():
        run_dir = ablation.out / row["run"]
        used = row["modalities"].split("+")
        assert load_run(run_dir).spec.modality_names == used
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["use"] == used and not saved["drop"]
        if row["kind"] == "single":
            assert used == [row["modality"]]
        elif row["kind"] == "leave_one_out":
            assert row["modality"] not in used and len(used) == 3
        else:
            assert used == ["s2", "s1", "esa_wc", "viirs"]


def test_runs_share_one_schedule(ablation: AblationResult) -> None:
    configs = [
        yaml.safe_load((ablation.run_dir(name) / "config.yaml").read_text()) for name in SETTINGS
    ]
    for cfg in configs:
        cfg.pop("use")
        cfg.pop("drop")
    assert all(cfg == configs[0] for cfg in configs)


def test_numbers_are_those_of_the_runs(ablation: AblationResult) -> None:
    table = pd.read_csv(ablation.table_csv)
    for _, row in table.iterrows():
        run_dir = ablation.out / row["run"]
        metrics = pd.read_csv(run_dir / "metrics_test.csv", dtype={"id": str})
        pooled = metrics[metrics["id"] == "all"].iloc[0]
        assert row["mae"] == pytest.approx(pooled["mae"])
        assert row["rmse"] == pytest.approx(pooled["rmse"])
        assert row["n_test"] == 4 == len(metrics) - 1
        epochs = pd.read_csv(run_dir / "metrics.csv")
        assert row["epochs"] == len(epochs) == 1
        assert row["train_s_per_epoch"] == pytest.approx(epochs["seconds"].mean())
        assert row["infer_s_per_sample"] > 0  # its arithmetic: test_inference_seconds_*
        assert row["parameters"] == sum(p.numel() for p in load_run(run_dir).model.parameters())


def test_fewer_inputs_mean_fewer_parameters(ablation: AblationResult) -> None:
    table = pd.read_csv(ablation.table_csv).set_index("setting")
    everything = table.loc["all", "parameters"]
    for name in SETTINGS[1:]:
        assert table.loc[name, "parameters"] < everything
    # a single-channel modality leaves fewer weights than S2's ten bands
    assert table.loc["single-viirs", "parameters"] < table.loc["single-s2", "parameters"]


def test_markdown_table(ablation: AblationResult) -> None:
    text = ablation.table_md.read_text()
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| setting | modalities | MAE | RMSE |")
    assert len(lines) == 2 + 9
    assert "| s1 left out | s2, esa_wc, viirs |" in text
    assert "4 samples" in text and "seed 0" in text


class _Clock:
    """A fake ``time.perf_counter`` that a model advances (no timed test)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_inference_seconds_is_the_fastest_repeat_per_sample_after_a_warm_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=clock))
    calls: list[int] = []

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # the warm-up call takes 5 s; then a batch of n takes 0.02 n s, 0.01 n s more
            # on every other call (the fastest repeat counts)
            calls.append(x.shape[0])
            clock.now += 5.0 if len(calls) == 1 else 0.02 * x.shape[0] * (1 + len(calls) % 2 * 0.5)
            return x

    dataset = [{"image": torch.zeros(1, 2, 2)} for _ in range(5)]
    per_sample, n = measure.inference_seconds(Model(), dataset, 2, torch.device("cpu"))
    assert n == 5 and calls == [2] + [2] * 3 + [2] * 3 + [1] * 3  # warm-up, 3 repeats per batch
    assert per_sample == pytest.approx(0.02)
    assert measure.inference_seconds(Model(), dataset, 2, torch.device("cpu"), limit=3)[1] == 3
