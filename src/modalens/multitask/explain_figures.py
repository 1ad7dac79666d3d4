"""Figures of ``modalens mtl explain``: error scatter, pixel correlations, sensitivity, maps.

- :func:`scatter_figure`: per auxiliary modality, each sample's main error against its
  auxiliary error, the worst decile of main error marked (``mtl_scatter.png``/``.svg``).
- :func:`pixel_figure`: the distribution over samples of the within-sample pixel correlation
  of the main and each auxiliary error map (``mtl_pixel_correlation.png``/``.svg``).
- :func:`sensitivity_figure`: each head's share of its occlusion sensitivity per input group,
  as a heat map (``mtl_sensitivity.png``/``.svg``).
- :func:`preview_figure` / :func:`error_maps_figure`: one sample's error maps side by side on
  map axes (km, degrees or pixels by the CRS; ``maps/<id>.png``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.grid import RasterGrid
from ..plotting import color, draw_map, label, pyplot, save_figure, save_figures

#: how a head is named in figures and sentences
MAIN_LABEL = "main task"


def head_label(head: str) -> str:
    """``main`` -> "main task", an auxiliary modality -> its readable name."""
    return MAIN_LABEL if head == "main" else label(head)


def scatter_figure(
    errors: pd.DataFrame,
    correlation: pd.DataFrame,
    path: str | Path,
    units: Mapping[str, str] | None = None,
) -> Path:
    """Main error against each auxiliary error (``errors``: ``mtl_errors.csv``; ``units``:
    head -> how its error is measured)."""
    units = units or {}
    plt = pyplot()
    aux = [c[4:-6] for c in errors.columns if c.startswith("aux_") and c.endswith("_error")]
    fig, axes = plt.subplots(1, max(1, len(aux)), figsize=(4.2 * max(1, len(aux)), 3.8))
    axes = np.atleast_1d(axes)
    main = errors["main_error"].to_numpy(float)
    k = max(1, int(np.ceil(0.1 * np.isfinite(main).sum())))
    worst = np.zeros(main.size, bool)
    worst[np.argsort(-np.nan_to_num(main, nan=-np.inf), kind="stable")[:k]] = True
    for i, (ax, name) in enumerate(zip(axes, aux, strict=False)):
        x = errors[f"aux_{name}_error"].to_numpy(float)
        ax.scatter(x[~worst], main[~worst], s=16, color=color(i), alpha=0.8, label="samples")
        ax.scatter(
            x[worst],
            main[worst],
            s=36,
            marker="D",
            facecolor="none",
            edgecolor="#000000",
            label="worst 10% of main error",
        )
        row = correlation[correlation["auxiliary"] == name]
        stats = ""
        if len(row):
            r = row.iloc[0]
            stats = f"\nr = {r['pearson']:.2f}, ρ = {r['spearman']:.2f}, n = {int(r['n'])}"
        ax.set_title(f"{label(name)}{stats}", fontsize=10)
        ax.set_xlabel(f"{label(name)} error per sample\n({units.get(name, 'mean')})")
        ax.set_ylabel(
            f"main-task error per sample\n({units.get('main', 'mean')})" if i == 0 else ""
        )
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Does the main task fail where the auxiliary reconstructions fail?")
    fig.tight_layout()
    return save_figures(fig, path)


def pixel_figure(pixels: pd.DataFrame, path: str | Path) -> Path:
    """Box and points of the per-sample pixel correlation per auxiliary modality."""
    plt = pyplot()
    names = list(dict.fromkeys(pixels["auxiliary"]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * max(1, len(names)), 3.8))
    data = [
        pixels.loc[pixels["auxiliary"] == n, "pixel_pearson"].dropna().to_numpy() for n in names
    ]
    ax.axhline(0.0, color="#777777", lw=0.8, ls="--", label="no correlation")
    if names:
        ax.boxplot(data, positions=range(len(names)), widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, vals in enumerate(data):
        ax.scatter(
            i + rng.uniform(-0.15, 0.15, vals.size),
            vals,
            s=12,
            color=color(i),
            alpha=0.8,
            label=f"{label(names[i])} (n = {vals.size})",
        )
    ax.set_xticks(range(len(names)), [label(n) for n in names], rotation=15)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("auxiliary modality")
    ax.set_ylabel("Pearson r of main and auxiliary\nerror maps within a sample")
    ax.set_title("Do the errors fall on the same pixels?", fontsize=11)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figures(fig, path)


def sensitivity_figure(table: pd.DataFrame, path: str | Path, n: int | None = None) -> Path:
    """Heat map of each head's share of sensitivity per input group."""
    plt = pyplot()
    heads = list(dict.fromkeys(table["head"]))
    inputs = list(dict.fromkeys(table["input"]))
    grid = table.pivot(index="head", columns="input", values="share").reindex(heads)[inputs]
    values = grid.to_numpy(float)
    fig, ax = plt.subplots(figsize=(1.5 + 0.75 * len(inputs), 1.2 + 0.55 * len(heads)))
    im = ax.imshow(values, cmap="viridis", vmin=0.0, aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(
                c,
                r,
                f"{100 * v:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < 0.6 * np.nanmax(values) else "black",
            )
    ax.set_xticks(range(len(inputs)), [label(i) for i in inputs], rotation=45, ha="right")
    ax.set_yticks(range(len(heads)), [head_label(h) for h in heads])
    ax.set_xlabel("occluded input (train-mean fill)")
    ax.set_ylabel("head")
    fig.colorbar(
        im, ax=ax, label="share of the head's sensitivity (%)", format=lambda v, _: f"{100 * v:.0f}"
    )
    n_text = f" (n = {n} samples)" if n else ""
    ax.set_title(f"Which inputs does each head rely on?{n_text}", fontsize=10)
    fig.tight_layout()
    return save_figures(fig, path)


def preview_figure(
    sample_id: str,
    maps: Mapping[str, np.ndarray],
    errors: Mapping[str, float],
    grid: RasterGrid | None,
    path: str | Path,
    heads: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
) -> Path:
    """Write :func:`error_maps_figure` as ``path`` (PNG); returns it."""
    fig = error_maps_figure(sample_id, maps, errors, grid, heads, units)
    return save_figure(fig, Path(path).with_suffix(".png"))


def error_maps_figure(
    sample_id: str,
    maps: Mapping[str, np.ndarray],
    errors: Mapping[str, float],
    grid: RasterGrid | None,
    heads: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
) -> Any:
    """One sample's error maps side by side (each with its own colour scale) on map axes
    (:func:`modalens.plotting.map_axes`: km, degrees or pixels by the grid's CRS)."""
    units = units or {}
    plt = pyplot()
    heads = list(heads or maps)
    fig, axes = plt.subplots(1, len(heads), figsize=(3.3 * len(heads), 3.3))
    axes = np.atleast_1d(axes)
    crs, transform = (grid.crs, grid.transform) if grid is not None else (None, None)
    for i, (ax, head) in enumerate(zip(axes, heads, strict=True)):
        arr = np.asarray(maps[head], float)
        hi = np.nanpercentile(arr, 99) if np.isfinite(arr).any() else 1.0
        im = draw_map(ax, arr, crs, transform, cmap="magma", vmin=0.0, vmax=hi)
        ax.set_title(f"{head_label(head)} error\nmean {errors.get(head, np.nan):.3f}", fontsize=9)
        if i:
            ax.set_ylabel("")
        fig.colorbar(
            im, ax=ax, fraction=0.046, label=f"{units.get(head, 'error')} (white: no data)"
        )
        ax.tick_params(labelsize=6)
    fig.suptitle(f"Error maps of sample {sample_id}", fontsize=11)
    fig.tight_layout()
    return fig
