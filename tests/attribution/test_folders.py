"""Attributions with different options are kept side by side in the run folder; --overwrite
replaces; an explicit --out holding another configuration is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from modalens.attribution.options import AttributionOptions
from modalens.attribution.run import folder_label, recorded_run
from modalens.cli import main
from modalens.training.runfolder import RunFolder


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run: attributing writes into the run folder."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def test_folder_label() -> None:
    assert folder_label(AttributionOptions()) == ""
    opts = AttributionOptions(strategies=["zeros", "mean"], levels=["output"], shapley=True)
    assert folder_label(opts, "bands") == "zeros+mean-output-shapley-bands"
    assert (
        folder_label(AttributionOptions(draws=3, seed=1, precision="bf16")) == "draws3-seed1-bf16"
    )
    other = folder_label(AttributionOptions(include_all=False))
    assert other.startswith("cfg-") and len(other) == 12
    assert folder_label(AttributionOptions(permutations=8)) == ""  # used by Shapley values only
    assert folder_label(AttributionOptions(shapley=True, permutations=8)).startswith("shapley-cfg-")
    assert folder_label(AttributionOptions(mean=[0.0] * 3)) == ""  # filled in from the run


def test_readme_sequence_keeps_results_side_by_side(run: Path, capsys) -> None:
    from modalens.report.collect import collect

    assert main(["-q", "attribute", str(run)]) == 0
    first = pd.read_csv(run / "attribution" / "test" / "summary.csv")
    assert main(["-q", "attribute", str(run), "--shapley"]) == 0
    assert main(["-q", "attribute", str(run), "--groups", "bands"]) == 0
    folders = sorted(p.name for p in (run / "attribution").iterdir())
    assert folders == ["test", "test-bands", "test-shapley"]
    pd.testing.assert_frame_equal(pd.read_csv(run / "attribution" / "test" / "summary.csv"), first)
    assert "shapley" in set(pd.read_csv(run / "attribution/test-shapley/summary.csv")["method"])
    assert len(set(pd.read_csv(run / "attribution/test-bands/summary.csv")["group"])) > 4
    for name in folders:
        assert recorded_run(run / "attribution" / name) == run.resolve()
    found = {p.name for p in collect(run)["attribution"]}
    assert found == set(folders)
    listed = RunFolder(run).attributions("test")  # what views takes by default: the first
    assert listed[0] == run / "attribution" / "test" and {p.name for p in listed} == set(folders)
    # a rerun of one of them resumes it (nothing recomputed, same numbers)
    assert main(["-q", "attribute", str(run), "--shapley"]) == 0
    capsys.readouterr()


def test_explicit_out_with_other_options_needs_overwrite(run: Path, tmp_path, capsys) -> None:
    out = tmp_path / "attr"
    assert main(["-q", "attribute", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    rc = main(["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros"])
    err = capsys.readouterr().err
    assert rc == 2 and "holds scores of another configuration" in err and "--overwrite" in err
    assert set(pd.read_csv(out / "summary.csv")["strategy"]) == {"mean"}  # untouched
    args = ["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros", "--overwrite"]
    assert main(args) == 0
    assert set(pd.read_csv(out / "summary.csv")["strategy"]) == {"zeros"}
    assert set(pd.read_parquet(out / "scores.parquet")["strategy"]) == {"zeros"}
    assert json.loads((out / "parts" / "config.json").read_text())["strategies"] == ["zeros"]
