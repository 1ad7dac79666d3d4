"""The bootstrap of :func:`~.agree.agreement`: resampled test samples and their statistics.

Each draw resamples the test samples once (:func:`resamples`; row 0 is the point estimate);
:func:`aggregate` recomputes a run's metric over every draw from its per-sample rows; per
(deviation, influence block) pair :func:`correlation_row` gives the correlations
(:data:`STATISTICS`) with percentile intervals (:func:`interval`) and :func:`value_rows` the
per-modality values and shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .correlation import kendall, pairs_alike, pearson, shares, spearman

#: the correlations of deviations and influences, by column name
STATISTICS = {"spearman": spearman, "kendall": kendall, "pearson": pearson}


def resamples(n: int, n_boot: int, seed: int) -> tuple[np.ndarray, bool]:
    """``(idx [1 + B, n], boot)``: sample indices, row 0 the point estimate and ``n_boot``
    bootstrap resamples after it (none with ``n_boot`` 0 or fewer than 2 samples: ``boot``
    False)."""
    rng = np.random.default_rng(seed)
    boot = n_boot > 0 and n >= 2
    idx = rng.integers(0, n, size=(n_boot, n)) if boot else np.zeros((0, n), dtype=int)
    return np.concatenate([np.arange(n)[None], idx]), boot


def aggregate(values: np.ndarray, weights: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """A run's metric over resampled test samples.

    Args:
        values: per-sample metric ``[n]``.
        weights: per-sample valid counts ``[n]``.
        idx: sample indices ``[B, n]`` (one resample per row).
        metric: its name (``rmse`` is pooled as a root mean square).

    Returns:
        ``[B]`` metric values (NaN where no sample has weight).
    """
    v = np.asarray(values, dtype=np.float64)[idx]
    w = np.asarray(weights, dtype=np.float64)[idx]
    ok = np.isfinite(v) & (w > 0)
    w = np.where(ok, w, 0.0)
    v = np.where(ok, v, 0.0)
    if metric == "rmse":
        v = v * v
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, (w * v).sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)
    return np.sqrt(out) if metric == "rmse" else out


def interval(draws: np.ndarray, ci: float) -> tuple[float, float]:
    """The percentile interval of coverage ``ci`` of the finite ``draws`` (NaN: none)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def correlation_row(dev: np.ndarray, infl: np.ndarray, ci: float, boot: bool) -> dict[str, Any]:
    """rho, tau, r with intervals and the pairs ordered alike, of ``[1 + B, N]`` draws."""
    row: dict[str, Any] = {}
    for name, fn in STATISTICS.items():
        values = fn(shares(dev), shares(infl))
        lo, hi = interval(values[1:], ci) if boot else (math.nan, math.nan)
        row.update({name: float(values[0]), f"{name}_low": lo, f"{name}_high": hi})
    n = dev.shape[-1]
    row["pairs_alike"] = int(pairs_alike(dev[0], infl[0]))
    row["pairs"] = n * (n - 1) // 2
    return row


def value_rows(
    meta: dict[str, Any],
    modalities: Sequence[str],
    dev: np.ndarray,
    infl: np.ndarray,
    ci: float,
    boot: bool,
) -> list[dict[str, Any]]:
    """Per modality: the signed deviation, the influence, their shares and share intervals."""
    dev_sh, infl_sh = shares(dev), shares(infl)
    rows = []
    for j, m in enumerate(modalities):
        d_lo, d_hi = interval(dev_sh[1:, j], ci) if boot else (math.nan, math.nan)
        i_lo, i_hi = interval(infl_sh[1:, j], ci) if boot else (math.nan, math.nan)
        rows.append(
            {
                **meta,
                "modality": m,
                "deviation_value": float(dev[0, j]),
                "influence": float(infl[0, j]),
                "deviation_share": float(dev_sh[0, j]),
                "deviation_share_low": d_lo,
                "deviation_share_high": d_hi,
                "influence_share": float(infl_sh[0, j]),
                "influence_share_low": i_lo,
                "influence_share_high": i_hi,
            }
        )
    return rows
