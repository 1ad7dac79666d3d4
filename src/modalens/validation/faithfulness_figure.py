"""The faithfulness figure: rank correlation with the truth and the decoy's share, per method.

:func:`faithfulness_figure` draws two panels sharing the method axis (one row per method, best
first): Spearman's rho with the realised importance (bars, mean over seeds, error bars one
standard deviation, with rho against leave-one-out retraining as a marker) and the share of the
influence the method gives the pure-noise decoy. Bars are coloured by level (Okabe-Ito palette);
methods that recover the truth are marked. Written as PNG and SVG
(:func:`modalens.plotting.save_figures`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import color, pyplot, save_figures
from .faithfulness_scores import RECOVER_DECOY, RECOVER_RHO, method_label

#: colour index per level (leave-one-out retraining in black)
LEVEL_COLOURS = {"embedding": 0, "output": 1, "loss": 2, "retraining": 7}


def faithfulness_figure(
    table: pd.DataFrame, path: str | Path, n_test: int | None = None, n_seeds: int | None = None
) -> Path:
    """Draw ``faithfulness.png`` / ``.svg`` from a ``faithfulness.csv`` table.

    Args:
        table: the table (:func:`~.faithfulness_scores.summarize_seeds`), best first.
        path: the PNG path (the SVG goes beside it).
        n_test: test samples attributed per seed (in the title).
        n_seeds: seeds (in the title).

    Returns:
        The PNG path.

    Raises:
        DataError: the table is empty.
    """
    if len(table) == 0:
        raise DataError("no faithfulness results to draw", str(path), "run the benchmark first")
    plt = pyplot()
    t = table.reset_index(drop=True)
    labels = [("✓ " if bool(r["recovers"]) else "") + method_label(r) for _, r in t.iterrows()]
    y = np.arange(len(t))[::-1]
    colours = [color(LEVEL_COLOURS.get(str(lv), 4)) for lv in t["level"]]
    height = max(3.5, 0.28 * len(t) + 1.5)
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(11, height), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    ax1.barh(
        y,
        t["spearman_realised_mean"].fillna(0),
        xerr=t["spearman_realised_std"].fillna(0),
        color=colours,
        capsize=2,
        height=0.7,
    )
    ax1.scatter(
        t["spearman_loo_mean"],
        y,
        marker="D",
        s=18,
        color="black",
        zorder=3,
        label="ρ with leave-one-out retraining (mean)",
    )
    ax1.axvline(
        RECOVER_RHO,
        color="grey",
        ls="--",
        lw=0.8,
        label=f"ρ = {RECOVER_RHO:.1f} (recovery threshold)",
    )
    ax1.axvline(0, color="black", lw=0.6)
    ax1.set_xlim(-1.05, 1.05)
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.set_xlabel(
        "Spearman ρ with the realised importance\n(unitless; bars: mean ± std over seeds)"
    )
    ax1.grid(axis="x", alpha=0.3)
    ax2.barh(
        y,
        100 * t["decoy_share_mean"].fillna(0),
        xerr=100 * t["decoy_share_std"].fillna(0),
        color=colours,
        capsize=2,
        height=0.7,
    )
    ax2.axvline(
        100 * RECOVER_DECOY, color="grey", ls=":", lw=1.0, label="decoy share 5 % (threshold)"
    )
    ax2.set_xlabel("decoy's share of the influence\n(%, mean ± std over seeds)")
    ax2.set_xlim(left=0)
    ax2.grid(axis="x", alpha=0.3)
    handles = [
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=color(i),
            label=f"{lv} level" if lv != "retraining" else "leave-one-out retraining",
        )
        for lv, i in LEVEL_COLOURS.items()
        if lv in set(t["level"])
    ]
    h1 = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(
        handles=handles + h1,
        fontsize=8,
        loc="lower center",
        ncol=4,
        frameon=False,
        bbox_to_anchor=(0.5, -0.01),
    )
    parts = []
    if n_test:
        parts.append(f"n = {n_test} test scenes per seed")
    if n_seeds:
        parts.append(f"{n_seeds} seed{'s' if n_seeds > 1 else ''}")
    fig.suptitle(
        "Faithfulness on synthetic data with known importances and a pure-noise decoy"
        + (f" ({', '.join(parts)}; ✓ = recovers the truth)" if parts else ""),
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figures(fig, path)
