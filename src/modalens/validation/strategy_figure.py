"""The strategy figure, like the paper's Fig. 6: every modality's share per occlusion strategy.

:func:`strategy_figure` draws one panel per level (and distance, when there are several). In
each, every group (modality) gets one bar per strategy: its share of the block's summed
influence, with the bootstrap interval of its mean influence divided by the same sum as error
bar. Kendall's W of the strategies' rankings is in the panel title. Bars of a strategy whose
fill leaves the modality's train range (``flagged`` in the fill sanity) are hatched, with a
legend entry saying so. Colours: the Okabe-Ito palette of :mod:`modalens.plotting`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import color, label, pyplot, save_figures

HATCH = "///"


def _errors(summary: pd.DataFrame, block: pd.DataFrame, groups: list[str]) -> np.ndarray | None:
    key = ["level", "distance", "strategy", "group"]
    s = summary.set_index(key)
    first = block.iloc[0]
    total = float(block["mean"].sum())
    if total <= 0 or not {"ci_low", "ci_high"} <= set(summary.columns):
        return None
    lo, hi, mid = [], [], []
    for g in groups:
        k = (first["level"], first["distance"], first["strategy"], g)
        r = s.loc[k] if k in s.index else None
        match = block.loc[block["group"] == g, "mean"]
        mid.append(float(match.iloc[0]) if len(match) else np.nan)
        lo.append(float(r["ci_low"]) if r is not None else np.nan)
        hi.append(float(r["ci_high"]) if r is not None else np.nan)
    lo_a, hi_a, mid_a = (np.asarray(v, dtype=np.float64) / total for v in (lo, hi, mid))
    if not np.isfinite(lo_a).any():
        return None
    err = np.vstack([np.clip(mid_a - lo_a, 0, None), np.clip(hi_a - mid_a, 0, None)])
    return np.nan_to_num(err)


def strategy_figure(
    table: pd.DataFrame,
    concordance: pd.DataFrame,
    summary: pd.DataFrame,
    path: str | Path,
    *,
    n_samples: int,
    threshold: float = 0.01,
) -> Path:
    """Draw the strategy figure (see the module docstring); writes ``path`` (PNG) and SVG.

    Args:
        table: ``strategies.csv`` rows (level, distance, strategy, group, mean, share, rank,
            outside_share, flagged).
        concordance: ``concordance.csv`` rows (Kendall's W per level and distance).
        summary: the occlusion rows of ``summary.csv`` (for the intervals).
        path: the PNG file (the SVG goes beside it).
        n_samples: samples behind the means (in the title).
        threshold: the outside share that flags a fill (in the legend).

    Returns:
        The PNG path.

    Raises:
        DataError: ``table`` is empty.
    """
    if len(table) == 0:
        raise DataError("no strategy rows to draw", str(path), "compare strategies first")
    plt = pyplot()
    panels = list(dict.fromkeys(zip(table["level"], table["distance"], strict=True)))
    several = len({d for _, d in panels}) > 1
    strategies = list(dict.fromkeys(table["strategy"]))
    groups = list(dict.fromkeys(table["group"]))
    panel_width = max(4.0, 0.16 * len(groups) * len(strategies) + 1.5)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(panel_width * len(panels), 4.2), sharey=True, squeeze=False
    )
    any_flag = False
    for ax, (level, distance) in zip(axes[0], panels, strict=True):
        p = table[(table["level"] == level) & (table["distance"] == distance)]
        any_flag |= _bars(ax, p, strategies, groups, summary)
        w = concordance[(concordance["level"] == level) & (concordance["distance"] == distance)]
        w_val = float(w["kendall_w"].iloc[0]) if len(w) else float("nan")
        where = label(level) + (f", {label(distance)}" if several else "")
        ax.set_title(f"{where[0].upper()}{where[1:]}: Kendall's W = {w_val:.2f}", fontsize=10)
        ax.set_xticks(
            np.arange(len(groups)), [label(g) for g in groups], rotation=15, ha="right", fontsize=8
        )
        ax.set_xlabel("modality")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("share of the summed influence (fraction)")
    _legend(fig, strategies, threshold if any_flag else None)
    distance_text = "" if several else f", {label(panels[0][1])}"
    fig.suptitle(
        "Modality influence per occlusion strategy "
        f"(share of the summed influence{distance_text}); n = {n_samples} samples",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figures(fig, path)


def _bars(
    ax: Any, p: pd.DataFrame, strategies: list[str], groups: list[str], summary: pd.DataFrame
) -> bool:
    """One panel's bars: per group the share of each strategy, with intervals, hatched where
    the fill is flagged; whether any is."""
    width = 0.8 / len(strategies)
    x = np.arange(len(groups))
    any_flag = False
    for i, strategy in enumerate(strategies):
        block = p[p["strategy"] == strategy]
        if block.empty:
            continue
        rows = block.set_index("group").reindex(groups)
        flags = rows["flagged"].fillna(False).astype(bool).to_numpy()
        any_flag |= bool(flags.any())
        bars = ax.bar(
            x - 0.4 + width * (i + 0.5),
            rows["share"].to_numpy(dtype=float),
            width,
            yerr=_errors(summary, block, groups),
            color=color(i),
            edgecolor="black",
            linewidth=0.4,
            capsize=1.5,
            error_kw={"linewidth": 0.7},
        )
        for bar, flag in zip(bars, flags, strict=True):
            if flag:
                bar.set_hatch(HATCH)
    return any_flag


def _legend(fig: Any, strategies: list[str], threshold: float | None) -> None:
    """The strategies' legend, with the hatch of flagged fills when a ``threshold`` is given
    (some fill was flagged)."""
    from matplotlib.patches import Patch  # noqa: PLC0415 - matplotlib loads with pyplot()

    handles = [
        Patch(facecolor=color(i), edgecolor="black", linewidth=0.4) for i in range(len(strategies))
    ]
    labels_ = list(strategies)
    if threshold is not None:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=HATCH))
        labels_.append(f"fill leaves the train range or class list (> {100 * threshold:g} %)")
    fig.legend(
        handles,
        labels_,
        title="occlusion strategy",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        fontsize=8,
        title_fontsize=9,
    )
