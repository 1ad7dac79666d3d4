"""The agreement figure, like the paper's Fig. 5: deviation and influence side by side.

:func:`agreement_figure` draws one panel per deviation kind (single-modality runs, leave-one-out
runs). In each, every modality gets a group of bars: its share of the total signed performance
deviation (how much worse the retrained model is than the all-modality one; a bar below zero:
better without the modality, or better on it alone) and its share of the total occlusion
influence for each level of the chosen block (occlusion method, euclidean distance, ``zeros``
strategy -- the paper's -- when present, else the first of each), with the bootstrap intervals
of the shares as error bars and Spearman's rho in the legend. Colours are the Okabe-Ito palette
(distinguishable with the common colour-vision deficiencies); figures go through
:func:`modalens.plotting.pyplot` and :func:`~modalens.plotting.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..plotting import label, new_figure, save_figure
from ..tasks.headline import lower_is_better

#: Okabe-Ito colours: vermillion for the deviation, then orange, blue, bluish green, sky blue,
#: reddish purple for the influence bars
DEVIATION_COLOUR = "#D55E00"
INFLUENCE_COLOURS = ("#E69F00", "#0072B2", "#009E73", "#56B4E9", "#CC79A7")
TITLES = {"single": "single-modality runs", "leave_one_out": "leave-one-out runs"}
#: the retrained run of each deviation kind, in the deviation bars' legend
RUN_WORDS = {"single": "m alone", "leave_one_out": "without m"}


def _deviation_label(kind: str, metric: str) -> str:
    """The legend of the deviation bars: the signed difference, worse = positive."""
    run, name = f"{metric.upper()}({RUN_WORDS[kind]})", f"{metric.upper()}(all)"
    diff = f"{run} − {name}" if lower_is_better(metric) else f"{name} − {run}"
    return f"deviation {diff} (positive: worse than all)"


def _prefer(values: Sequence[str], preferred: str) -> str:
    return preferred if preferred in values else values[0]


def _errors(frame: pd.DataFrame, prefix: str) -> np.ndarray | None:
    lo, hi, mid = (
        frame[f"{prefix}_low"].to_numpy(float),
        frame[f"{prefix}_high"].to_numpy(float),
        frame[prefix].to_numpy(float),
    )
    if not np.isfinite(lo).any():
        return None
    return np.vstack([np.clip(mid - lo, 0, None), np.clip(hi - mid, 0, None)])


def agreement_figure(
    values: pd.DataFrame,
    table: pd.DataFrame,
    path: str | Path,
    *,
    n_samples: int,
    seeds: Sequence[int] = (),
) -> Path:
    """Draw the agreement figure (see the module docstring) and write it to ``path``.

    Args:
        values: per-modality rows of :func:`~.agreement.agreement` (``agreement_values.csv``).
        table: its statistics (``agreement.csv``), for rho in the legend.
        path: output file; the suffix picks the format (``.png``, ``.svg``).
        n_samples: test samples behind the numbers (in the title).
        seeds: seeds behind the numbers (in the title).

    Returns:
        ``path``.

    Raises:
        DataError: ``values`` is empty.
    """
    fig = draw_agreement(values, table, n_samples=n_samples, seeds=seeds, where=str(path))
    return save_figure(fig, path)


def draw_agreement(
    values: pd.DataFrame,
    table: pd.DataFrame,
    *,
    n_samples: int,
    seeds: Sequence[int] = (),
    where: str = "agreement_values.csv",
) -> Any:
    """The figure of :func:`agreement_figure`, not written (a
    :class:`matplotlib.figure.Figure`, made without pyplot).

    Raises:
        DataError: ``values`` is empty (``where`` names it).
    """
    if len(values) == 0:
        raise DataError("no agreement values to draw", where, "compute the agreement first")
    method = _prefer(list(dict.fromkeys(values["method"])), "occlusion")
    v = values[values["method"] == method]
    distance = _prefer(list(dict.fromkeys(v["distance"])), "euclidean")
    v = v[v["distance"] == distance]
    strategy = _prefer(list(dict.fromkeys(v["strategy"])), "zeros")
    v = v[v["strategy"] == strategy]
    kinds = [k for k in TITLES if k in set(v["deviation"])]
    levels = list(dict.fromkeys(v["level"]))
    modalities = list(dict.fromkeys(v["modality"]))
    metric = str(v["metric"].iloc[0])
    fig = new_figure(figsize=(4.8 * len(kinds), 3.8))
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)
    width = 0.8 / (1 + len(levels))
    x = np.arange(len(modalities))
    for ax, kind in zip(axes[0], kinds, strict=True):
        k = v[v["deviation"] == kind]
        dev = k[k["level"] == levels[0]].set_index("modality").loc[modalities]
        ax.bar(
            x - 0.4 + width / 2,
            dev["deviation_share"],
            width,
            yerr=_errors(dev, "deviation_share"),
            color=DEVIATION_COLOUR,
            capsize=2,
            label=_deviation_label(kind, metric),
        )
        for i, level in enumerate(levels):
            rows = k[k["level"] == level].set_index("modality").loc[modalities]
            stat = table[
                (table["deviation"] == kind)
                & (table["method"] == method)
                & (table["level"] == level)
                & (table["distance"] == distance)
                & (table["strategy"] == strategy)
            ]
            rho = float(stat["spearman"].iloc[0]) if len(stat) else float("nan")
            ax.bar(
                x - 0.4 + width * (i + 1.5),
                rows["influence_share"],
                width,
                yerr=_errors(rows, "influence_share"),
                color=INFLUENCE_COLOURS[i % len(INFLUENCE_COLOURS)],
                capsize=2,
                label=f"influence, {label(level)} (Spearman ρ = {rho:+.2f})",
            )
        ax.set_xticks(x, [label(m) for m in modalities], fontsize=8)
        ax.set_xlabel("modality")
        ax.set_title(TITLES[kind], fontsize=10)
        ax.axhline(0.0, color="0.3", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    axes[0][0].set_ylabel("share of the total (magnitudes sum to 1)")
    seed_text = ""
    if seeds:
        seed_text = f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    fig.suptitle(
        "Performance deviation vs occlusion influence "
        f"({label(method)}, {label(distance)}, {label(strategy)} fill); "
        f"n = {n_samples} test samples{seed_text}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
