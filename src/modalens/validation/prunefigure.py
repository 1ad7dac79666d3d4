"""The pruning figure: the main metric and the measured times against k modalities dropped.

:func:`pruning_figure` draws two panels from a pruning table (:mod:`.pruning`): (a) the main
metric per k with the standard deviation over seeds as error bars, the all-modality value as a
line and the tolerance band around it shaded; (b) training seconds per epoch (left axis) and
inference milliseconds per sample (right axis) per k. The x ticks name the modality dropped at
each step. Okabe-Ito colours; written as PNG + SVG through :func:`modalens.plotting.save_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import color, label, new_figure, save_figures

#: metrics where smaller is better (the band is drawn above the reference for them)
SMALLER_IS_BETTER = frozenset({"mae", "rmse", "mse", "loss"})


def pruning_figure(table: pd.DataFrame, path: str | Path) -> Path:
    """Draw the pruning figure (see the module docstring).

    Args:
        table: the pruning table (``pruning.csv``), k = 0 included.
        path: the PNG path (an SVG is written beside it).

    Returns:
        The PNG path.

    Raises:
        DataError: the table has no k = 0 row.
    """
    return save_figures(draw_pruning(table, where=str(path)), path)


def draw_pruning(table: pd.DataFrame, where: str = "pruning.csv") -> Any:
    """The figure of :func:`pruning_figure`, not written (a :class:`matplotlib.figure.Figure`,
    made without pyplot).

    Raises:
        DataError: the table has no k = 0 row (``where`` names it).
    """
    table = table.sort_values("k")
    if not (table["k"] == 0).any():
        raise DataError("no all-modality row (k = 0)", where, "run prune to the end")
    main = str(table["main_metric"].iloc[0])
    tol = float(table["tolerance"].iloc[0])
    ks = table["k"].to_numpy(int)
    vals = table[main].to_numpy(float)
    std = pd.to_numeric(table.get(f"{main}_std"), errors="coerce").to_numpy(float)
    base = float(vals[ks == 0][0])
    fig = new_figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    lo, hi = (
        (base, base * (1 + tol)) if main.lower() in SMALLER_IS_BETTER else (base * (1 - tol), base)
    )
    ax.axhspan(lo, hi, color=color(2), alpha=0.18, label=f"tolerance ({100 * tol:g} %)")
    ax.axhline(base, color="grey", ls="--", lw=1, label="all modalities")
    ax.errorbar(
        ks,
        vals,
        yerr=np.where(np.isfinite(std), std, 0),
        color=color(0),
        marker="o",
        capsize=3,
        label=f"test {main.upper()}",
    )
    within = table["within_tolerance"].astype(bool).to_numpy()
    ax.scatter(
        ks[~within],
        vals[~within],
        color=color(5),
        zorder=3,
        marker="x",
        s=60,
        label="beyond tolerance",
    )
    ticks = []
    for _, r in table.iterrows():
        step = [d for d in str(r["dropped"]).split("+") if d and d != "nan"]
        ticks.append("0\n(all)" if r["k"] == 0 else f"{int(r['k'])}\n−{label(step[-1])}")
    for a in (ax, bx):
        a.set_xticks(ks, ticks, fontsize=8)
        a.set_xlabel("k least influential modalities dropped (cumulative)")
    ax.set_ylabel(f"test {main.upper()} (mean over seeds)")
    ax.set_title("(a) metric after pruning", fontsize=10)
    ax.legend(fontsize=8)
    train = table["train_s_per_epoch"].to_numpy(float)
    infer = 1000 * table["infer_s_per_sample"].to_numpy(float)
    bx.plot(ks, train, marker="o", color=color(1), label="training (s/epoch)")
    bx.set_ylabel("training time (s per epoch)")
    bx.set_ylim(0, max(train) * 1.2)
    cx = bx.twinx()
    cx.plot(ks, infer, marker="s", color=color(3), label="inference (ms/sample)")
    cx.set_ylabel("inference time (ms per sample)")
    cx.set_ylim(0, max(infer) * 1.2)
    handles = bx.get_legend_handles_labels()[0] + cx.get_legend_handles_labels()[0]
    bx.legend(handles, [str(h.get_label()) for h in handles], fontsize=8, loc="lower left")
    bx.set_title("(b) measured cost", fontsize=10)
    n_test, seeds = int(table["n_test"].max()), int(table["n_seeds"].max())
    method, level, distance, strategy = (str(table["ranked_by"].iloc[0]).split("/") + [""] * 4)[:4]
    fig.suptitle(
        f"Pruning the least influential modalities ({method}, {label(level)}, "
        f"{label(distance)}, {strategy} fill; n = {n_test} test samples, "
        f"{seeds} seed{'s' if seeds > 1 else ''})",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
