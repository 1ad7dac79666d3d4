"""The faithfulness figure: which methods recover which world, and how much a null modality gets.

:func:`faithfulness_figure` draws two panels sharing the method axis (one row per method, those
recovering most worlds first): a methods x worlds grid coloured by the share of seeds in which
the method recovers the world (annotated ``k/n`` with the mean Spearman rho), and the largest
share of influence any null modality (decoy, non-causal raster) gets in any world, against the
recovery threshold. Written as PNG and SVG (:func:`modalens.plotting.save_figures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.aggregation import BLOCK
from ..errors import DataError
from ..plotting import color, new_figure, save_figures
from .faithfulness_scores import RECOVER_DECOY, across_worlds, method_label

#: colour index per level (leave-one-out retraining in black, the dropout model's methods apart)
LEVEL_COLOURS = {"embedding": 0, "output": 1, "loss": 2, "dropout model": 5, "retraining": 7}


def faithfulness_figure(table: pd.DataFrame, path: str | Path, n_seeds: int | None = None) -> Path:
    """Draw ``faithfulness.png`` / ``.svg`` from a ``faithfulness.csv`` table.

    Args:
        table: the table (:func:`~.faithfulness_scores.summarize_seeds`).
        path: the PNG path (the SVG goes beside it).
        n_seeds: seeds (in the title).

    Returns:
        The PNG path.

    Raises:
        DataError: the table is empty.
    """
    return save_figures(draw_faithfulness(table, n_seeds, where=str(path)), Path(path))


def draw_faithfulness(
    table: pd.DataFrame, n_seeds: int | None = None, where: str = "faithfulness.csv"
) -> Any:
    """The figure of :func:`faithfulness_figure`, not written (a
    :class:`matplotlib.figure.Figure`, made without pyplot).

    Raises:
        DataError: the table is empty (``where`` names it).
    """
    if len(table) == 0:
        raise DataError("no faithfulness results to draw", where, "run the benchmark first")
    overall = across_worlds(table)
    worlds = list(dict.fromkeys(table["world"]))
    cell = table.set_index(["world", *BLOCK])
    grid = np.full((len(overall), len(worlds)), np.nan)
    notes = [["" for _ in worlds] for _ in range(len(overall))]
    for i, (_, row) in enumerate(overall.iterrows()):
        for j, w in enumerate(worlds):
            key = (w, *(row[b] for b in BLOCK))
            if key in cell.index:
                r = cell.loc[key]
                grid[i, j] = r["n_recovered"] / max(1, r["n_seeds"])
                rho = r["spearman_realised_mean"]
                notes[i][j] = f"{int(r['n_recovered'])}/{int(r['n_seeds'])}\nρ {rho:.2f}"
    height = max(3.5, 0.34 * len(overall) + 1.6)
    fig = new_figure(figsize=(12, height))
    ax1, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 1.4]})
    ax1.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=1)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            dark = np.isfinite(grid[i, j]) and grid[i, j] > 0.6
            ax1.text(
                j,
                i,
                notes[i][j],
                ha="center",
                va="center",
                fontsize=6,
                color="white" if dark else "black",
            )
    labels = [method_label(r) for _, r in overall.iterrows()]
    ax1.set_yticks(range(len(labels)), labels, fontsize=7)
    ax1.set_xticks(range(len(worlds)), worlds, fontsize=8)
    ax1.set_title("seeds in which the method recovers the world", fontsize=9)
    y = np.arange(len(overall))
    colours = [color(LEVEL_COLOURS.get(str(lv), 4)) for lv in overall["level"]]
    ax2.barh(y, 100 * overall["decoy_share_max"].fillna(0), color=colours, height=0.7)
    ax2.axvline(
        100 * RECOVER_DECOY,
        color="grey",
        ls="--",
        lw=0.8,
        label=f"{100 * RECOVER_DECOY:.0f} % (recovery threshold)",
    )
    ax2.set_xlabel("largest null-modality share over worlds (%)", fontsize=8)
    for lv, k in LEVEL_COLOURS.items():
        if lv in set(overall["level"]):
            ax2.barh([np.nan], [0], color=color(k), label=lv if k in (5, 7) else f"{lv} level")
    ax2.legend(fontsize=7, loc="lower right")
    title = "Faithfulness across worlds"
    if n_seeds:
        title += f" ({n_seeds} seeds per world)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
