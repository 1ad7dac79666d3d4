"""Strategy comparison (Fig. 6), fill sanity and the ``strategies`` command on a tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalens.attribution import attribute_run
from modalens.cli import main
from modalens.data.stats import Statistics
from modalens.training.run import load_run
from modalens.validation.fills import FILL_COLUMNS, fill_sanity, train_statistics
from modalens.validation.strategies import (
    CONCORDANCE_COLUMNS,
    STRATEGY_COLUMNS,
    compare_strategies,
    describe_strategies,
)

STRATEGIES = "zeros,ones,mean,nodata"


@pytest.fixture(scope="module")
def attributed(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_run`` attributed with four strategies at embedding and output level."""
    out = tmp_path_factory.mktemp("strategies") / "attr"
    attribute_run(
        tiny_run, strategies=STRATEGIES, levels="embedding,output", out=out, progress=False
    )
    return out


def test_fill_sanity_finds_ones_outside_a_known_range_and_mean_inside(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    d = train_statistics(run, progress=False).to_dict()
    n = len(d["modalities"]["s2"]["bands"])
    d["modalities"]["s2"]["min"] = [0.0] * n  # S2 is scaled by 1/10000: range [0, 0.5]
    d["modalities"]["s2"]["max"] = [5000.0] * n
    known = Statistics.from_dict(d)
    fill = fill_sanity(
        run, STRATEGIES.split(","), samples=2, statistics=known, threshold=0.01, progress=False
    )
    assert list(fill.columns) == FILL_COLUMNS
    f = fill.set_index(["strategy", "group"])
    ones = f.loc[("ones", "s2")]
    assert ones["outside_share"] == 1.0 and ones["above_share"] == 1.0 and ones["flagged"]
    mean = f.loc[("mean", "s2")]  # train means (700..2700 raw) lie in [0, 5000]
    assert mean["outside_share"] == 0.0 and not mean["flagged"]
    assert f.loc[("zeros", "s2"), "outside_share"] == 0.0  # 0 is the minimum itself: inside
    assert np.isnan(ones["class_code_share"])  # continuous
    # WorldCover (ordinal codes): zeros/ones are real classes, nodata is none of them
    assert f.loc[("zeros", "esa_wc"), "class_code_share"] == 1.0
    assert f.loc[("ones", "esa_wc"), "outside_share"] == 0.0
    nodata = f.loc[("nodata", "esa_wc")]
    assert nodata["class_code_share"] == 0.0 and nodata["below_share"] == 1.0
    assert nodata["flagged"] and nodata["n_values"] > 0
    assert (f["threshold"] == 0.01).all()
    assert ((f["below_share"] + f["above_share"]) <= f["outside_share"] + 1e-12).all()


def test_compare_strategies_writes_consistent_tables(attributed: Path) -> None:
    result = compare_strategies(attributed, samples=2, progress=False)
    for name, columns in (
        ("strategies.csv", STRATEGY_COLUMNS),
        ("concordance.csv", CONCORDANCE_COLUMNS),
        ("fill_sanity.csv", FILL_COLUMNS),
    ):
        assert list(pd.read_csv(attributed / name).columns) == columns
    for name in ("strategies.png", "strategies.svg"):
        assert (attributed / name).stat().st_size > 1000
    table = pd.read_csv(attributed / "strategies.csv")
    assert set(table["strategy"]) == set(STRATEGIES.split(","))
    assert set(table["level"]) == {"embedding", "output"}
    for _, block in table.groupby(["level", "distance", "strategy"]):
        assert block["share"].sum() == pytest.approx(1.0)
        assert sorted(block["rank"]) == list(range(1, len(block) + 1))  # no ties here
        assert block.sort_values("rank")["mean"].is_monotonic_decreasing
    conc = result.concordance
    assert len(conc) == 2 and (conc["n_strategies"] == 4).all() and (conc["n_groups"] == 4).all()
    assert conc["kendall_w"].between(0, 1).all()
    # the fill flags of strategies.csv are those of fill_sanity.csv
    merged = table.merge(result.fill, on=["strategy", "group"], suffixes=("", "_fill"))
    assert (merged["flagged"] == merged["flagged_fill"]).all()
    assert merged.loc[
        (merged["strategy"] == "nodata") & (merged["group"] == "esa_wc"), "flagged"
    ].all()
    lines = describe_strategies(table, conc, result.fill)
    assert lines == result.lines and any("Kendall's W" in line for line in lines)
    assert any("`nodata`" in line and "ESA WorldCover" in line for line in lines)


def test_describe_strategies_by_hand() -> None:
    table = pd.DataFrame(
        {
            "level": ["output"] * 4,
            "distance": ["euclidean"] * 4,
            "strategy": ["zeros", "zeros", "ones", "ones"],
            "group": ["s2", "s1", "s2", "s1"],
            "mean": [2.0, 1.0, 3.0, 1.0],
            "share": [2 / 3, 1 / 3, 0.75, 0.25],
            "rank": [1, 2, 1, 2],
            "outside_share": [0.0, 0.0, 1.0, 0.0],
            "flagged": [False, False, True, False],
        }
    )
    conc = pd.DataFrame(
        [
            {
                "level": "output",
                "distance": "euclidean",
                "n_strategies": 2,
                "n_groups": 2,
                "kendall_w": 1.0,
            }
        ]
    )
    fill = pd.DataFrame(
        [
            ["ones", "s2", 1.0, 0.0, 1.0, np.nan, True, 0.01, 10],
            ["zeros", "s2", 0.0, 0.0, 0.0, np.nan, False, 0.01, 10],
        ],
        columns=FILL_COLUMNS,
    )
    lines = describe_strategies(table, conc, fill)
    assert lines[0] == "At output level the 2 strategies agree (Kendall's W = 1.00)."
    assert "Every strategy ranks Sentinel-2 first at output level." in lines
    assert "`ones` leaves the train range for Sentinel-2 (100 % of the filled values)." in lines


def test_strategies_command(
    attributed: Path,
    tiny_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["-q", "strategies", str(attributed), "--samples", "1"]) == 0
    assert "Kendall's W" in capsys.readouterr().out
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(attributed / "summary.csv", bare / "summary.csv")
    assert main(["-q", "strategies", str(bare)]) == 2
    assert "--run RUN" in capsys.readouterr().err
    assert main(["-q", "strategies", str(bare), "--run", str(tiny_run), "--threshold", "2"]) == 2
    assert "threshold" in capsys.readouterr().err
