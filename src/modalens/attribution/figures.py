"""Figures (matplotlib, Agg backend), written atomically as PNG.

- :func:`influence_bar_chart`: the paper's Fig. 6 -- grouped bars per group (modality) and
  strategy with the bootstrap 95 % interval as error bars.
- :func:`strategy_comparison`: share of each group per strategy (heat map, ranks annotated):
  do the strategies agree on the ranking?
- :func:`occlusion_map_preview`: a PNG preview of one occlusion sensitivity map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import pyplot, save_figure
from .groups import ALL


def _select(
    summary: pd.DataFrame, method: str | None, level: str | None, distance: str | None
) -> tuple[pd.DataFrame, str, str, str]:
    if len(summary) == 0:
        raise DataError("the summary is empty", "figure", "run the attribution first")
    s = summary
    method = method or ("occlusion" if (s["method"] == "occlusion").any() else s["method"].iloc[0])
    s = s[s["method"] == method]
    level = level or s["level"].iloc[0]
    s = s[s["level"] == level]
    distance = distance or s["distance"].iloc[0]
    s = s[s["distance"] == distance]
    if len(s) == 0:
        raise DataError(
            f"no summary rows for method={method}, level={level}, distance={distance}",
            "figure",
            "choose a level/distance present in the summary",
        )
    return s, method, level, distance


def influence_bar_chart(
    summary: pd.DataFrame,
    path: str | Path,
    *,
    method: str | None = None,
    level: str | None = None,
    distance: str | None = None,
    include_all: bool = False,
    title: str | None = None,
) -> Path:
    """Grouped bars: one cluster per group (modality), one bar per strategy, mean with the
    bootstrap interval as error bars. Picks the first method/level/distance unless given."""
    plt = pyplot()
    s, method, level, distance = _select(summary, method, level, distance)
    if not include_all:
        s = s[s["group"] != ALL]
    groups = list(dict.fromkeys(s["group"]))
    strategies = list(dict.fromkeys(s["strategy"]))
    n_s = len(strategies)
    width = 0.8 / max(n_s, 1)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) + 2), 3.8))
    cmap = plt.get_cmap("tab10")
    for k, strat in enumerate(strategies):
        sub = s[s["strategy"] == strat].set_index("group").reindex(groups)
        mean = sub["mean"].to_numpy(dtype=float)
        lo = sub["ci_low"].to_numpy(dtype=float)
        hi = sub["ci_high"].to_numpy(dtype=float)
        err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
        err = np.nan_to_num(err)
        ax.bar(
            x + (k - (n_s - 1) / 2) * width,
            mean,
            width,
            yerr=err,
            capsize=2,
            label=strat,
            color=cmap(k % 10),
        )
    ax.set_xticks(x)
    ax.set_xticklabels(
        groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center"
    )
    ylabel = {
        "embedding": f"embedding {distance} distance",
        "output": f"output {distance} distance",
        "loss": "loss increase",
    }.get(str(level), str(level))
    if method == "shapley":
        ylabel = f"Shapley value ({ylabel})"
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"Influence per group ({method}, {level}); 95% bootstrap CI")
    ax.legend(title="strategy", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return save_figure(fig, path)


def strategy_comparison(
    summary: pd.DataFrame,
    path: str | Path,
    *,
    method: str | None = None,
    level: str | None = None,
    distance: str | None = None,
    title: str | None = None,
) -> Path:
    """Heat map of each group's share (of the summed influence) per strategy, with its rank:
    the paper's claim that strategies agree on the ranking, at a glance."""
    plt = pyplot()
    s, method, level, distance = _select(summary, method, level, distance)
    s = s[s["group"] != ALL]
    groups = list(dict.fromkeys(s["group"]))
    strategies = list(dict.fromkeys(s["strategy"]))
    share = s.pivot(index="strategy", columns="group", values="share").reindex(
        index=strategies, columns=groups
    )
    rank = s.pivot(index="strategy", columns="group", values="rank").reindex(
        index=strategies, columns=groups
    )
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 2), 0.6 * len(strategies) + 1.6))
    im = ax.imshow(share.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    for i in range(len(strategies)):
        for j in range(len(groups)):
            v, r = share.iat[i, j], rank.iat[i, j]
            if pd.notna(v):
                ax.text(
                    j,
                    i,
                    f"{100 * v:.0f}%\n#{int(r)}",
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=8,
                )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_yticks(range(len(strategies)))
    ax.set_yticklabels(strategies)
    fig.colorbar(im, ax=ax, label="share of total influence")
    ax.set_title(title or f"Share and rank per strategy ({method}, {level}, {distance})")
    return save_figure(fig, path)


def occlusion_map_preview(
    array: np.ndarray, path: str | Path, title: str | None = None, cmap: str = "magma"
) -> Path:
    """PNG preview of one sensitivity map (NaN = invalid, shown transparent); the colour scale
    stops at the 99th percentile so a few extreme pixels do not wash it out."""
    plt = pyplot()
    a = np.asarray(array, dtype=np.float32)
    finite = a[np.isfinite(a)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(5, 5 * a.shape[0] / max(a.shape[1], 1) + 0.4))
    im = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, vmin=0, vmax=vmax or 1.0)
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|pred - occluded pred|")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=100)
