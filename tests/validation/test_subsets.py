"""modalens subsets: every modality subset scored with one model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from modalens.validation.subsets import score_subsets, shapley_values
from modalens.validation.subsets_run import evaluate_subsets


class _Module:
    """Output = a + b of two one-channel modalities a and b (symmetric in them)."""

    def predict_all(self, batch):
        x = batch["image"]
        return {"out": x[:, :1] + x[:, 1:2]}

    def compute(self, batch, output):
        pred, tgt = output["out"].flatten(), batch["target"].flatten()
        return {
            "n": pred.numel(),
            "loss": float(((pred - tgt) ** 2).mean()),
            "preds": pred,
            "targets": tgt,
            "aux": {},
        }


class _Task:
    name = "regression"

    def metrics(self):
        from torchmetrics import MeanAbsoluteError, MetricCollection

        return MetricCollection({"mae": MeanAbsoluteError()})

    def metric_dict(self):
        return {"mae": None}

    def sample_metrics(self, p, t):
        return {"mae": float((p - t).abs().mean())}


def test_exact_shapley_efficiency_and_symmetry():
    torch.manual_seed(0)
    a = torch.rand(4, 1, 3, 3) + 1
    x = torch.cat([a, a], 1)  # a and b hold the same values: their roles are exchangeable
    batches = [{"image": x, "target": x[:, :1] + x[:, 1:2], "id": list("abcd")}]
    from modalens.attribution.strategies import zeros

    slices = {"a": slice(0, 1), "b": slice(1, 2)}
    subs = [(), ("a",), ("b",), ("a", "b")]
    table, _ = score_subsets(_Module(), _Task(), batches, slices, zeros, subs)
    v = table["mae"].to_numpy()
    assert v[3] == pytest.approx(0.0, abs=1e-6)
    phi = shapley_values(v, ["a", "b"], "mae")
    assert phi.sum() == pytest.approx(v[0] - v[3])  # gain of v(all) over v(empty)
    # symmetry: exchangeable players get equal values (each half of the gain, mean |a|)
    assert phi[0] == pytest.approx(phi[1]) and phi[0] == pytest.approx(float(a.mean()))


def test_tiny_run_all_row_equals_evaluate(tiny_run, tmp_path):
    from modalens.training import evaluate

    res = evaluate_subsets(tiny_run, out=tmp_path / "s", n_boot=20)
    ref = evaluate(tiny_run, out=tmp_path / "m.csv").iloc[0]
    n = len(res.shapley)
    assert len(res.table) == 2**n - 1
    row = res.table.iloc[0]
    assert row["size"] == n
    assert row[res.metric] == pytest.approx(float(ref[res.metric]))
    t1 = pd.read_csv(tmp_path / "s" / "table1.csv")
    assert t1["setting"].iloc[0] == "all" and len(t1) == 2 * n + 1
    assert t1[res.metric].iloc[0] == pytest.approx(float(ref[res.metric]))
    sh = pd.read_csv(tmp_path / "s" / "performance_shapley.csv")
    assert sh["shapley"].sum() == pytest.approx(
        float(np.sign(1) * (sh["v_empty"][0] - sh["v_all"][0])), rel=1e-6
    )


def test_resume_reuses_parts_and_new_checkpoint_recomputes(tiny_run, tmp_path, monkeypatch):
    import modalens.validation.subsets_run as sr

    out = tmp_path / "s"
    evaluate_subsets(tiny_run, out=out, n_boot=0)
    calls = []
    real = sr.score_subsets
    monkeypatch.setattr(sr, "score_subsets", lambda *a, **k: calls.append(1) or real(*a, **k))
    evaluate_subsets(tiny_run, out=out, n_boot=0)
    assert calls == []  # every subset reused
    rec = out / "subsets.json"
    import json

    saved = json.loads(rec.read_text())
    saved["provenance"]["checkpoint"] = "0" * 64  # another checkpoint made the parts
    rec.write_text(json.dumps(saved))
    evaluate_subsets(tiny_run, out=out, n_boot=0)
    assert len(calls) == 2 ** len(saved["options"]["modalities"])


def test_cli(tiny_run, tmp_path):
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "modalens", "subsets", str(tiny_run), "--out",
                         str(tmp_path / "c"), "--n-boot", "5", "--quiet"],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "c" / "subsets.csv").is_file()
    bad = subprocess.run([sys.executable, "-m", "modalens", "subsets", str(tmp_path)],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1


def test_report_section_what_each_modality_is_worth(tiny_run, tmp_path):
    import shutil

    from modalens.attribution.run import attribute_run
    from modalens.report import build_report
    from modalens.report.collect import collect

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    evaluate_subsets(run, n_boot=20)
    attribute_run(run, progress=False, figure=False)
    arts = collect(tmp_path)
    assert arts["subsets"] == [run / "subsets-test"]
    assert run / "subsets-test" not in arts["ablation"]  # its table1.csv is not an ablation
    html = build_report(tmp_path).read_text()
    assert "What each modality is worth" in html
    assert "By performance Shapley of mae" in html
    assert "between performance Shapley and occlusion influence" in html
