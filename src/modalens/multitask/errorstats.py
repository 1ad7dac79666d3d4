"""Statistics of the multitask explanations: do auxiliary errors explain the main task's?

Written in numpy on per-sample errors and per-pixel error maps (no model needed, so they are
checked on constructed arrays):

- :func:`correlation_table`: per auxiliary modality, Pearson and Spearman correlation across
  samples of the main error with that modality's error, with percentile bootstrap intervals
  (samples resampled with replacement; :mod:`modalens.validation.correlation` does the maths).
- :func:`pixel_correlation`: within one sample, Pearson's r of the main and an auxiliary error
  map over the pixels valid in both.
- :func:`auroc`: the area under the ROC curve of a score for binary labels, by the rank-sum
  (Mann-Whitney) identity with average ranks, so tied scores count one half.
- :func:`worst_flags`: the worst decile of main-task error (the ``ceil(n / 10)`` largest).
- :func:`auroc_table`: per auxiliary modality, how well a high auxiliary error flags the worst
  decile, against a random flag: 0.5 in expectation, with the interval of the AUROC when the
  worst samples are drawn at random (``random_low``, ``random_high``; permutations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..validation.correlation import average_ranks, pearson, spearman

#: columns of ``mtl_correlation.csv``
CORRELATION_COLUMNS = [
    "auxiliary",
    "pearson",
    "pearson_low",
    "pearson_high",
    "spearman",
    "spearman_low",
    "spearman_high",
    "n",
]
#: columns of ``mtl_auroc.csv``
AUROC_COLUMNS = ["auxiliary", "auroc", "random_low", "random_high", "n_worst"]
#: share of samples counted as the worst of the main task
WORST_SHARE = 0.1


def auroc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (ties count one half).

    ``(R+ - n+ (n+ + 1) / 2) / (n+ n-)`` with ``R+`` the sum of the positives' average ranks:
    the probability that a random positive scores above a random negative.

    Args:
        scores: ``[n]`` values (higher = more likely positive); NaN pairs are dropped.
        labels: ``[n]`` booleans.

    Returns:
        The AUROC in [0, 1]; NaN without a positive and a negative.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of one length, got {s.shape}, {y.shape}")
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def worst_flags(errors: Any, share: float = WORST_SHARE) -> np.ndarray:
    """True for the ``ceil(share * n)`` largest errors (the worst decile by default; ties
    broken by order)."""
    e = np.asarray(errors, dtype=np.float64)
    k = max(1, math.ceil(share * e.size))
    flags = np.zeros(e.size, dtype=bool)
    flags[np.argsort(-e, kind="stable")[:k]] = True
    return flags


def _interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def correlation_table(
    main: Any, auxiliary: Mapping[str, Any], n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Pearson and Spearman of the main error with each auxiliary error, across samples.

    Args:
        main: per-sample main-task errors ``[n]``.
        auxiliary: modality -> per-sample errors ``[n]`` (same sample order).
        n_boot: bootstrap resamples of the samples (0: no intervals).
        ci: interval coverage.
        seed: the bootstrap's seed.

    Returns:
        One row per modality (:data:`CORRELATION_COLUMNS`); samples with a NaN are left out.
    """
    rows = []
    m_all = np.asarray(main, dtype=np.float64)
    for name, values in auxiliary.items():
        a = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(m_all) & np.isfinite(a)
        x, y = m_all[ok], a[ok]
        n = int(x.size)
        row: dict[str, Any] = {"auxiliary": name, "n": n}
        row["pearson"] = pearson(x, y) if n >= 2 else math.nan
        row["spearman"] = spearman(x, y) if n >= 2 else math.nan
        lo_p = hi_p = lo_s = hi_s = math.nan
        if n_boot > 0 and n >= 3:
            idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
            lo_p, hi_p = _interval(np.asarray(pearson(x[idx], y[idx])), ci)
            lo_s, hi_s = _interval(np.asarray(spearman(x[idx], y[idx])), ci)
        row.update(pearson_low=lo_p, pearson_high=hi_p, spearman_low=lo_s, spearman_high=hi_s)
        rows.append(row)
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def pixel_correlation(main_map: Any, aux_map: Any) -> float:
    """Pearson's r of two error maps ``[H, W]`` over the pixels finite in both (NaN with
    fewer than three such pixels or a constant map)."""
    a = np.asarray(main_map, dtype=np.float64).ravel()
    b = np.asarray(aux_map, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    return float(pearson(a[ok], b[ok]))


def auroc_table(
    main: Any,
    auxiliary: Mapping[str, Any],
    share: float = WORST_SHARE,
    n_perm: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each auxiliary error flags the worst ``share`` of main-task errors.

    Args:
        main: per-sample main-task errors ``[n]``.
        auxiliary: modality -> per-sample errors ``[n]``.
        share: the share of samples that are the worst (:func:`worst_flags`).
        n_perm: random flags drawn for the random interval (0: none).
        ci: interval coverage.
        seed: the permutations' seed.

    Returns:
        One row per modality (:data:`AUROC_COLUMNS`): the AUROC of the auxiliary error for
        the worst samples, the ``ci`` interval of the AUROC of random worst samples (what
        chance gives with these ties and counts) and the number of worst samples.
    """
    rows = []
    m_all = np.asarray(main, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for name, values in auxiliary.items():
        a = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(m_all) & np.isfinite(a)
        x, y = m_all[ok], a[ok]
        row: dict[str, Any] = {"auxiliary": name, "auroc": math.nan, "n_worst": 0}
        row.update(random_low=math.nan, random_high=math.nan)
        if x.size >= 2:
            flags = worst_flags(x, share)
            k, n = int(flags.sum()), int(x.size)
            row.update(auroc=auroc(y, flags), n_worst=k)
            if n_perm > 0 and k < n:
                ranks = average_ranks(y)
                picks = np.argsort(rng.random((n_perm, n)), axis=1)[:, :k]
                draws = (ranks[picks].sum(axis=1) - k * (k + 1) / 2.0) / (k * (n - k))
                row["random_low"], row["random_high"] = _interval(draws, ci)
        rows.append(row)
    return pd.DataFrame(rows, columns=AUROC_COLUMNS)
