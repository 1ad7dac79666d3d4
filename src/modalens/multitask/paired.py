"""Paired tests of per-sample errors: does the multitask model differ from a baseline?

:func:`wilcoxon_signed_rank` is the two-sided Wilcoxon signed-rank test in numpy (scipy is not
a dependency): zero differences are dropped (Wilcoxon's rule), the statistic is the smaller of
the positive and negative rank sums, and the p-value is exact (the null distribution of the
rank sum counted over all sign patterns) for up to :data:`EXACT_MAX` pairs without ties, else
the normal approximation with the tie correction of the variance (no continuity correction) --
the same choices as ``scipy.stats.wilcoxon``'s defaults. :func:`paired_test` adds the mean and
median difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..validation.correlation import average_ranks

#: largest number of (non-zero, untied) pairs whose p-value is computed exactly
EXACT_MAX = 50


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison ``a - b``.

    Attributes:
        n_pairs: the pairs compared (zero differences included).
        mean_diff: mean of ``a - b``.
        median_diff: median of ``a - b``.
        statistic: Wilcoxon's statistic (smaller signed-rank sum).
        p_value: two-sided p-value (1 when every difference is zero).
        method: ``exact`` or ``normal``.
    """

    n_pairs: int
    mean_diff: float
    median_diff: float
    statistic: float
    p_value: float
    method: str


def _exact_cdf(n: int, w: int) -> float:
    """P(W+ <= w) for ``n`` untied non-zero differences under the null hypothesis."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return float(counts[: w + 1].sum() / counts.sum())


def wilcoxon_signed_rank(d: Sequence[float] | np.ndarray) -> tuple[float, float, str]:
    """Two-sided Wilcoxon signed-rank test of differences ``d`` (see the module docstring).

    Args:
        d: paired differences (NaN entries are dropped).

    Returns:
        ``(statistic, p_value, method)``; ``(0, 1, "none")`` when no non-zero difference is left.
    """
    x = np.asarray(d, np.float64)
    x = x[np.isfinite(x) & (x != 0)]
    n = int(x.size)
    if n == 0:
        return 0.0, 1.0, "none"
    ranks = average_ranks(np.abs(x))
    r_plus = float(ranks[x > 0].sum())
    r_minus = float(ranks[x < 0].sum())
    stat = min(r_plus, r_minus)
    _, tie_counts = np.unique(np.abs(x), return_counts=True)
    ties = bool((tie_counts > 1).any())
    if n <= EXACT_MAX and not ties:
        p = min(1.0, 2.0 * _exact_cdf(n, int(round(stat))))
        return stat, p, "exact"
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float((tie_counts**3 - tie_counts).sum()) / 48.0
    if var <= 0:
        return stat, 1.0, "normal"
    z = (stat - mean) / math.sqrt(var)
    return stat, min(1.0, math.erfc(abs(z) / math.sqrt(2.0))), "normal"


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> PairedTest:
    """Wilcoxon signed-rank test of the pairs ``(a_i, b_i)`` with their mean and median
    difference ``a - b``.

    Args:
        a: one value per pair (e.g. the multitask model's per-sample error).
        b: the other (the baseline's), same length.

    Returns:
        The :class:`PairedTest`.

    Raises:
        ValueError: ``a`` and ``b`` differ in length.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} vs {b.shape}")
    d = a - b
    d = d[np.isfinite(d)]
    stat, p, method = wilcoxon_signed_rank(d)
    mean = float(d.mean()) if d.size else math.nan
    median = float(np.median(d)) if d.size else math.nan
    return PairedTest(int(d.size), mean, median, stat, p, method)
