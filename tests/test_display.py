"""Result objects in notebooks: ``_repr_html_`` shows their tables, ``plot()`` returns the
figure (made without pyplot, so nothing is shown and the backend is left alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from modalens.attribution.shapley import ShapleyResult
from modalens.errors import DataError
from modalens.multitask.compare import CompareResult
from modalens.validation import AblationResult, FaithfulnessResult, PruningResult
from modalens.validation.strategies import StrategiesResult

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "report" / "fixtures" / "studies"


def _plain(fig: Figure) -> bool:
    return isinstance(fig, Figure) and fig.canvas.manager is None  # not pyplot's


def test_pruning_shows_its_table_and_plots_two_panels(tmp_path: Path) -> None:
    table = pd.read_csv(FIXTURES / "pruning" / "pruning.csv")
    result = PruningResult(tmp_path, table, ["esa_wc", "viirs"], {"method": "occlusion"})
    page = result._repr_html_()
    assert "<table" in page and "esa_wc" in page and "1083617" in page
    fig = result.plot()
    assert _plain(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["(a) metric after pruning", "(b) measured cost"]
    assert len(fig.axes) == 3  # (b) has a second y axis


def test_faithfulness_shows_its_table_and_plots_grid_and_null_share(tmp_path: Path) -> None:
    table = pd.read_csv(ROOT / "docs" / "benchmarks" / "faithfulness" / "faithfulness.csv")
    seeds = pd.DataFrame({"seed": [0, 1, 2]})
    result = FaithfulnessResult(tmp_path, pd.DataFrame(), seeds, table, [])
    page = result._repr_html_()
    assert (
        "spearman_realised_mean" in page
        and f"{table['spearman_realised_mean'].iloc[0]:.4f}"[:5] in page
    )
    fig = result.plot()
    assert _plain(fig) and len(fig.axes) >= 2
    worlds = list(dict.fromkeys(table["world"]))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][: len(worlds)] == worlds


def test_ablation_shows_table_one_and_plot_needs_the_agreement(tmp_path: Path) -> None:
    table = pd.read_csv(FIXTURES / "ablation" / "table1.csv")
    result = AblationResult(tmp_path, table, [], ["s2", "s1"], [], (0,), "regression", ["mae"])
    page = result._repr_html_()
    assert "Table I" in page and str(table["label"].iloc[0]) in page
    with pytest.raises(DataError, match="attribute=True"):
        result.plot()


def test_compare_strategies_and_shapley_show_their_tables(tmp_path: Path) -> None:
    compare = CompareResult(
        tmp_path,
        pd.read_csv(FIXTURES / "mtl" / "mtl_compare.csv"),
        pd.read_csv(FIXTURES / "mtl" / "mtl_tests.csv"),
        [],
        "regression",
        "mae",
    )
    page = compare._repr_html_()
    assert "unimodal (s2)" in page and "mtl_tests.csv" in page
    attr = FIXTURES / "attribution"
    strategies = StrategiesResult(
        pd.read_csv(attr / "strategies.csv"),
        pd.read_csv(attr / "concordance.csv"),
        pd.read_csv(attr / "fill_sanity.csv"),
        [],
    )
    assert strategies._repr_html_().count("<table") == 3
    shapley = ShapleyResult(["s1", "s2"], np.array([[0.25, 0.75], [0.5, 0.125]]))
    assert shapley.table().to_dict("list") == {"s1": [0.25, 0.5], "s2": [0.75, 0.125]}
    page = shapley._repr_html_()
    assert "0.125" in page and "<th>s2</th>" in page
