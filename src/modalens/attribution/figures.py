"""Publication figures of an attribution (matplotlib, Agg backend), written as PNG + SVG.

- :func:`influence_figure` / :func:`influence_bar_chart`: the paper's Fig. 6 for every
  (method, level, distance) block of a summary -- one panel each, grouped bars per modality and
  strategy with the bootstrap 95 % interval as error bars, one legend of strategies, n shown.
- :func:`strategy_comparison`: share of each group per strategy (heat map, ranks annotated):
  do the strategies agree on the ranking?
- :func:`map_figure` / :func:`occlusion_map_preview`: one sensitivity map on map coordinates
  (:func:`modalens.plotting.map_axes`: km, degrees or pixels, the CRS named) with a labelled
  colour bar.

Names go through :func:`modalens.plotting.label`, colours through
:func:`modalens.plotting.color` (Okabe-Ito), files through :func:`modalens.plotting.save_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import color, draw_map, label, pyplot, save_figures
from .groups import ALL

BLOCK_KEYS = ["method", "level", "distance"]

#: what a distance measures, and its unit
DISTANCE_UNITS = {
    "euclidean": "normalised units",
    "mae": "normalised units",
    "delta": "normalised units",
    "cosine": "1 - cosine similarity",
    "relative": "fraction of the full norm",
}

#: what a level compares
LEVEL_NOUNS = {"embedding": "embedding", "output": "prediction"}


def value_label(method: str, level: str, distance: str) -> str:
    """The y-axis label of a block: what its values are, with units.

    Args:
        method: ``occlusion``, ``shapley`` or ``interaction``.
        level: ``embedding``, ``output``, ``loss`` or a registered level.
        distance: the distance (ignored by the loss level).

    Returns:
        e.g. ``"Euclidean distance of the embedding (normalised units)"``.
    """
    if level == "loss":
        text = "increase of the loss (loss units)"
    else:
        noun = LEVEL_NOUNS.get(level, f"{level} level")
        unit = DISTANCE_UNITS.get(distance, "units of the distance")
        text = f"{label(distance)} of the {noun} ({unit})"
        text = text[0].upper() + text[1:]
    if method == "shapley":
        return f"Shapley value of the {text[0].lower() + text[1:]}"
    if method == "interaction":
        return f"Shapley interaction of the {text[0].lower() + text[1:]}"
    return text


def n_text(n: pd.Series) -> str:
    """``"n = 6 samples"`` (or a range when blocks differ) from a summary's ``n`` column."""
    vals = pd.to_numeric(n, errors="coerce").dropna().astype(int)
    if len(vals) == 0:
        return "n unknown"
    lo, hi = int(vals.min()), int(vals.max())
    if lo == hi:
        return f"n = {lo} sample{'s' if lo != 1 else ''}"
    return f"n = {lo}-{hi} samples"


def _select(
    summary: pd.DataFrame, method: str | None, level: str | None, distance: str | None
) -> pd.DataFrame:
    if len(summary) == 0:
        raise DataError("the summary is empty", "figure", "run the attribution first")
    s = summary
    for key, want in (("method", method), ("level", level), ("distance", distance)):
        if want is not None:
            s = s[s[key] == want]
    if len(s) == 0:
        raise DataError(
            f"no summary rows for method={method}, level={level}, distance={distance}",
            "figure",
            "choose a method/level/distance present in the summary",
        )
    return s


def _blocks(s: pd.DataFrame) -> list[tuple[str, str, str]]:
    keys = s[BLOCK_KEYS].astype(str).itertuples(index=False, name=None)
    return list(dict.fromkeys(keys))


def influence_figure(
    summary: pd.DataFrame,
    *,
    method: str | None = None,
    level: str | None = None,
    distance: str | None = None,
    include_all: bool = False,
    title: str | None = None,
) -> Any:
    """The influence figure (see the module docstring) as a matplotlib Figure.

    Args:
        summary: ``summary.csv`` of an attribution (:func:`~.aggregation.summarize_scores`).
        method: only this method (default: every method present).
        level: only this level (default: every level present).
        distance: only this distance (default: every distance present).
        include_all: also draw the all-modalities reference ``ALL``.
        title: replaces the default title (n is appended).

    Returns:
        The Figure: one axes per block, in the summary's order.

    Raises:
        DataError: the summary is empty or has no rows for the chosen block.
    """
    plt = pyplot()
    s = _select(summary, method, level, distance)
    if not include_all:
        s = s[s["group"] != ALL]
    blocks = _blocks(s)
    strategies = list(dict.fromkeys(s["strategy"].astype(str)))
    n_groups = s["group"].nunique()
    ncols = min(len(blocks), 2 if n_groups > 5 else 3)
    nrows = -(-len(blocks) // ncols)
    panel_w = max(3.6, 0.5 * n_groups * max(1, len(strategies)) ** 0.5 + 1.6)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_w * ncols, 3.4 * nrows + 0.9), squeeze=False
    )
    width = 0.8 / max(len(strategies), 1)
    handles: dict[str, Any] = {}
    for ax, (m, lv, d) in zip(axes.flat, blocks, strict=False):
        b = s[(s["method"] == m) & (s["level"] == lv) & (s["distance"] == d)]
        groups = list(dict.fromkeys(b["group"].astype(str)))
        x = np.arange(len(groups))
        for k, strat in enumerate(strategies):
            sub = b[b["strategy"] == strat].set_index("group").reindex(groups)
            if sub["mean"].isna().all():
                continue
            mean = sub["mean"].to_numpy(dtype=float)
            lo = sub["ci_low"].to_numpy(dtype=float)
            hi = sub["ci_high"].to_numpy(dtype=float)
            spread = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
            err = np.nan_to_num(spread) if np.isfinite(spread).any() else None  # n < 2: none
            handles[strat] = ax.bar(
                x + (k - (len(strategies) - 1) / 2) * width,
                mean,
                width,
                yerr=err,
                capsize=2,
                error_kw={"elinewidth": 0.8},
                color=color(k),
                label=label(strat),
            )
        rotate = len(groups) > 5
        ax.set_xticks(
            x,
            [label(g) for g in groups],
            rotation=30 if rotate else 0,
            ha="right" if rotate else "center",
            fontsize=8,
        )
        ax.set_xlabel("modality")
        ax.set_ylabel(value_label(m, lv, d), fontsize=8)
        ax.set_title(f"{label(m)}, {label(lv)}", fontsize=10)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in list(axes.flat)[len(blocks) :]:
        fig.delaxes(ax)
    fig.legend(
        list(handles.values()),
        [label(k) for k in handles],
        title="occlusion fill (strategy)",
        loc="lower center",
        ncol=min(len(handles), 6),
        fontsize=8,
        title_fontsize=8,
        frameon=False,
    )
    head = title or "Influence of each modality: mean over samples, bootstrap 95 % CI"
    fig.suptitle(f"{head}; {n_text(s['n'])}", fontsize=11)
    fig.tight_layout(rect=(0, 0.12 if nrows == 1 else 0.06, 1, 1))
    return fig


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
    """Write :func:`influence_figure` as ``path`` (PNG) and the SVG beside it.

    Args:
        summary: ``summary.csv`` of an attribution.
        path: the PNG (e.g. ``OUT/influence.png``; ``influence.svg`` is written beside it).
        method: only this method (default: all).
        level: only this level (default: all).
        distance: only this distance (default: all).
        include_all: also draw the ``ALL`` reference.
        title: replaces the default title.

    Returns:
        The PNG path.
    """
    fig = influence_figure(
        summary,
        method=method,
        level=level,
        distance=distance,
        include_all=include_all,
        title=title,
    )
    return save_figures(fig, path)


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
    the paper's claim that strategies agree on the ranking, at a glance. Draws the first
    block unless one is chosen; writes PNG + SVG."""
    plt = pyplot()
    s = _select(summary, method, level, distance)
    method, level, distance = _blocks(s)[0]
    s = s[(s["method"] == method) & (s["level"] == level) & (s["distance"] == distance)]
    s = s[s["group"] != ALL]
    groups = list(dict.fromkeys(s["group"]))
    strategies = list(dict.fromkeys(s["strategy"]))
    share = s.pivot(index="strategy", columns="group", values="share").reindex(
        index=strategies, columns=groups
    )
    rank = s.pivot(index="strategy", columns="group", values="rank").reindex(
        index=strategies, columns=groups
    )
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 2), 0.6 * len(strategies) + 1.8))
    values = share.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="viridis", aspect="auto", vmin=0)
    bright = 0.6 * float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    for i in range(len(strategies)):
        for j in range(len(groups)):
            v, r = share.iat[i, j], rank.iat[i, j]
            if pd.notna(v):
                ax.text(
                    j, i, f"{100 * v:.0f}%\n#{int(r)}", ha="center", va="center",
                    color="black" if v > bright else "white", fontsize=8,
                )  # fmt: skip
    ax.set_xticks(range(len(groups)), [label(g) for g in groups], fontsize=8)
    ax.set_yticks(range(len(strategies)), [label(g) for g in strategies], fontsize=8)
    ax.set_xlabel("modality")
    ax.set_ylabel("occlusion fill (strategy)")
    fig.colorbar(im, ax=ax, label="share of the total influence")
    block = f"{label(method)}, {label(level)}, {label(distance)}"
    head = title or f"Share and rank per strategy ({block})"
    ax.set_title(f"{head}; {n_text(s['n'])}", fontsize=9)
    return save_figures(fig, path)


def map_figure(
    array: np.ndarray,
    *,
    transform: Any = None,
    crs: Any = None,
    title: str | None = None,
    quantity: str = "|prediction - occluded prediction| (normalised units)",
    cmap: str = "magma",
) -> Any:
    """One sensitivity map on map coordinates (NaN = invalid, transparent); the colour scale
    stops at the 99th percentile so a few extreme pixels do not wash it out.

    Args:
        array: ``[H, W]`` values.
        transform: the raster's affine transform (pixel axes without one).
        crs: its CRS (named on the axes).
        title: the title.
        quantity: the colour bar's label (what the values are, with units).
        cmap: the colour map.

    Returns:
        The Figure.
    """
    plt = pyplot()
    a = np.asarray(array, dtype=np.float32)
    finite = a[np.isfinite(a)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(5.6, 5.0 * a.shape[0] / max(a.shape[1], 1) + 0.6))
    im = draw_map(
        ax, np.ma.masked_invalid(a), crs, transform, cmap=cmap, vmin=0, vmax=vmax or 1.0,
        interpolation="nearest",
    )  # fmt: skip
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="x", labelrotation=30)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=quantity)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def occlusion_map_preview(
    array: np.ndarray,
    path: str | Path,
    title: str | None = None,
    cmap: str = "magma",
    *,
    transform: Any = None,
    crs: Any = None,
    quantity: str = "|prediction - occluded prediction| (normalised units)",
) -> Path:
    """Write :func:`map_figure` as ``path`` (PNG) and the SVG beside it; returns the PNG."""
    fig = map_figure(array, transform=transform, crs=crs, title=title, quantity=quantity, cmap=cmap)
    return save_figures(fig, path, dpi=110)
