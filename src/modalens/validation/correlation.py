"""Rank and linear correlation in numpy: average ranks, Spearman's rho, Kendall's tau-b, Pearson.

scipy is not a dependency, and the agreement of a few modalities needs only small vectors, so
these are written out directly and vectorised over leading axes (one bootstrap draw per row):
every function takes ``x`` and ``y`` of the same shape ``[..., n]`` and correlates along the last
axis, returning an array of shape ``[...]`` (a float for 1-D input).

- :func:`average_ranks`: ranks 1..n, ties get the mean of the ranks they span (as
  ``scipy.stats.rankdata(method="average")``).
- :func:`pearson`: the sample correlation coefficient, clipped to [-1, 1].
- :func:`spearman`: Pearson's r of the average ranks (so ties are handled).
- :func:`kendall`: tau-b, ``(concordant - discordant) / sqrt((n0 - tx) (n0 - ty))`` with ``n0``
  the number of pairs and ``tx``, ``ty`` the pairs tied in ``x`` or in ``y``.
- :func:`pairs_alike`: the pairs ``i < j`` that both vectors order the same strict way (the
  plain count behind a rank correlation of a handful of values).
- :func:`shares`: values divided by the sum of their magnitudes (non-negative values sum to 1).
- :func:`kendall_w`: Kendall's coefficient of concordance W of ``m`` rankings of ``n`` objects
  (rows = raters), with the tie correction.

A correlation that is undefined (fewer than two values, a constant vector, a NaN in either
vector) is NaN; every defined value lies in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 0:
        raise ValueError("x and y must have at least one axis")
    return a, b


def _result(values: np.ndarray) -> Any:
    return float(values) if values.ndim == 0 else values


def average_ranks(values: Any) -> np.ndarray:
    """Ranks along the last axis, 1 for the smallest; tied values share their mean rank.

    Args:
        values: array ``[..., n]``.

    Returns:
        Float array of the same shape (NaN where the row holds a NaN).
    """
    v = np.asarray(values, dtype=np.float64)
    # rank_i = #(v_j < v_i) + (#(v_j == v_i) + 1) / 2: exact average ranks, O(n^2), fine for
    # the handful of modalities (or bands) compared here
    less = (v[..., None, :] < v[..., :, None]).sum(axis=-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(axis=-1)
    ranks = less + (equal + 1) / 2.0
    bad = np.isnan(v).any(axis=-1, keepdims=True)
    return np.where(bad, np.nan, ranks)


def pearson(x: Any, y: Any) -> Any:
    """Pearson's correlation coefficient along the last axis.

    Args:
        x: array ``[..., n]``.
        y: array of the same shape.

    Returns:
        A float (1-D input) or an array ``[...]``; NaN where undefined.
    """
    a, b = _pair(x, y)
    da = a - a.mean(axis=-1, keepdims=True)
    db = b - b.mean(axis=-1, keepdims=True)
    num = (da * db).sum(axis=-1)
    den = np.sqrt((da * da).sum(axis=-1) * (db * db).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    r = np.where(np.isnan(num), np.nan, r)
    return _result(np.clip(r, -1.0, 1.0))


def spearman(x: Any, y: Any) -> Any:
    """Spearman's rank correlation (Pearson's r of average ranks) along the last axis.

    Args:
        x: array ``[..., n]``.
        y: array of the same shape.

    Returns:
        A float (1-D input) or an array ``[...]``; NaN where undefined.
    """
    a, b = _pair(x, y)
    return pearson(average_ranks(a), average_ranks(b))


def kendall(x: Any, y: Any) -> Any:
    """Kendall's tau-b along the last axis (ties in either vector are accounted for).

    Args:
        x: array ``[..., n]``.
        y: array of the same shape.

    Returns:
        A float (1-D input) or an array ``[...]``; NaN where undefined.
    """
    a, b = _pair(x, y)
    n = a.shape[-1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)  # each pair i < j once
    sa = np.sign(a[..., None, :] - a[..., :, None])[..., upper]
    sb = np.sign(b[..., None, :] - b[..., :, None])[..., upper]
    num = (sa * sb).sum(axis=-1)  # concordant - discordant
    den = np.sqrt((sa * sa).sum(axis=-1) * (sb * sb).sum(axis=-1))  # (n0 - tx)(n0 - ty)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    tau = np.where(np.isnan(num), np.nan, tau)
    return _result(np.clip(tau, -1.0, 1.0))


def pairs_alike(x: Any, y: Any) -> Any:
    """How many pairs ``i < j`` both vectors order the same strict way, along the last axis.

    A pair tied in either vector does not count; of ``n`` values there are ``n (n - 1) / 2``
    pairs.

    Args:
        x: array ``[..., n]``.
        y: array of the same shape.

    Returns:
        An int (1-D input) or an int array ``[...]``; a row holding a NaN counts no pair.
    """
    a, b = _pair(x, y)
    n = a.shape[-1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    with np.errstate(invalid="ignore"):
        sa = np.sign(a[..., None, :] - a[..., :, None])[..., upper]
        sb = np.sign(b[..., None, :] - b[..., :, None])[..., upper]
    count = ((sa * sb) > 0).sum(axis=-1)
    bad = np.isnan(a).any(axis=-1) | np.isnan(b).any(axis=-1)
    count = np.where(bad, 0, count)
    return int(count) if count.ndim == 0 else count


def shares(values: Any) -> np.ndarray:
    """``values`` divided by the sum of their magnitudes along the last axis.

    Non-negative values (occlusion distances) then sum to 1; a negative value (a signed
    deviation: better without the modality) keeps its sign, and the magnitudes sum to 1; an
    all-zero row stays zero.

    Args:
        values: array ``[..., n]``.

    Returns:
        Float array of the same shape.
    """
    v = np.asarray(values, dtype=np.float64)
    total = np.abs(v).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / np.where(total > 0, total, 1.0), 0.0)


def kendall_w(ratings: Any) -> float:
    """Kendall's coefficient of concordance W of ``m`` raters over ``n`` objects, tie-corrected.

    Each row is ranked by :func:`average_ranks` (the direction does not matter as long as it is
    the same for every row). With ``R_i`` the rank sum of object ``i`` and ``S`` the sum of
    squared deviations of the ``R_i`` from their mean,
    ``W = 12 S / (m^2 (n^3 - n) - m * sum_j T_j)``, where ``T_j = sum (t^3 - t)`` over the
    groups of ``t`` tied values of rater ``j``. W is 1 when every rater gives the same ranking
    and 0 when the rank sums are all equal (no agreement); it lies in [0, 1].

    Args:
        ratings: array ``[m, n]`` (one row per rater, e.g. strategy; one column per object,
            e.g. modality). Rows holding a NaN are left out.

    Returns:
        W, or NaN with fewer than two raters or objects or when every rater ties everything.
    """
    r = np.asarray(ratings, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"ratings must be a 2-D array [raters, objects], got shape {r.shape}")
    r = r[~np.isnan(r).any(axis=1)]
    m, n = r.shape
    if m < 2 or n < 2:
        return float("nan")
    ranks = average_ranks(r)
    sums = ranks.sum(axis=0)
    s = float(np.square(sums - sums.mean()).sum())
    ties = 0.0
    for row in r:
        _, counts = np.unique(row, return_counts=True)
        ties += float((counts**3 - counts).sum())
    den = m * m * (n**3 - n) - m * ties
    if den <= 0:
        return float("nan")
    return float(np.clip(12.0 * s / den, 0.0, 1.0))
