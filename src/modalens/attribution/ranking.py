"""Which groups the data can tell apart: paired bootstrap probabilities and tiers.

The numpy core behind ``pairwise.csv`` and the ``tier`` column of ``summary.csv``
(:mod:`.aggregation` applies it per (method, level, distance, strategy) block):

- :func:`pairwise_probabilities`: for one block's per-sample scores as a ``samples x groups``
  matrix, the bootstrap probability that group ``a`` has a larger mean influence than group
  ``b``. The *samples* are resampled, and every group of a resample gets the same sample ids
  (each sample has a score for every group, so the comparison is paired). A resample where
  the two means are exactly equal counts one half, so ``P(a > b) + P(b > a) = 1``.
- :func:`tiers`: an order with ties. The groups are sorted by mean, largest first, and a new
  tier starts between two neighbours only where *every* group above the cut beats *every*
  group below it with probability at least ``confidence`` (0.95), each such pair resting on at
  least ``min_samples`` (10) samples. So every ``>`` of the order holds for every pair of
  groups it puts on either side; ``≈`` says that no such cut exists there -- the data cannot
  separate those groups, not that they are equal. (Each pair is tested at ``confidence`` on
  its own; no correction for the number of pairs.)
- :func:`format_order`: the order as text, e.g. ``esa_wc > s1 ≈ viirs > s2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError
from ..evidence import MIN_FINDING

#: the bootstrap probability a ``>`` between two tiers needs
TIER_CONFIDENCE = 0.95
#: bootstrap weights held at once (resamples x samples), to bound memory on large splits
_CHUNK = 4_000_000


class Pairwise(NamedTuple):
    """The paired comparison of every two groups of one block (``g x g`` arrays)."""

    #: ``p[a, b]``: bootstrap probability that group a's mean exceeds group b's (NaN on the
    #: diagonal and for pairs with fewer than two samples scored for both)
    p: np.ndarray
    #: ``n[a, b]``: samples with a score for both a and b
    n: np.ndarray
    #: ``mean_diff[a, b]``: the mean of a's score minus b's over those samples
    mean_diff: np.ndarray


def pairwise_probabilities(values: Any, n_boot: int = 1000, seed: int = 0) -> Pairwise:
    """Paired bootstrap probabilities that one group has more influence than another.

    Each resample draws ``n`` sample rows with replacement (the same rows for every group);
    for each pair the resampled mean difference over the rows scored for both decides which
    group is larger (an exact tie counts one half). Vectorised: one matrix product per chunk
    of resamples.

    Args:
        values: ``[n_samples, n_groups]`` per-sample scores (NaN: not scored).
        n_boot: bootstrap resamples (0: no probabilities, all NaN).
        seed: the resamples' seed (the same seed gives the same probabilities).

    Returns:
        A :class:`Pairwise` of ``[n_groups, n_groups]`` arrays.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(
            f"per-sample scores must be a samples x groups matrix, got shape {x.shape}",
            "pairwise_probabilities",
            "pass one row per sample and one column per group",
        )
    n, g = x.shape
    ia, ib = np.triu_indices(g, k=1)
    both = ~np.isnan(x[:, ia]) & ~np.isnan(x[:, ib])
    diff = np.where(both, x[:, ia] - x[:, ib], 0.0)
    count = both.sum(axis=0)
    p_up = np.full(ia.size, np.nan)
    usable = count >= 2
    if n_boot > 0 and usable.any():
        p_up[usable] = _resampled_wins(diff[:, usable], both[:, usable], n_boot, seed)
    p = np.full((g, g), np.nan)
    p[ia, ib], p[ib, ia] = p_up, 1.0 - p_up
    pairs = np.zeros((g, g), dtype=np.int64)
    pairs[ia, ib] = pairs[ib, ia] = count
    mean_diff = np.full((g, g), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        md = np.where(count > 0, diff.sum(axis=0) / count, np.nan)
    mean_diff[ia, ib], mean_diff[ib, ia] = md, -md
    return Pairwise(p, pairs, mean_diff)


def _resampled_wins(diff: np.ndarray, both: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Share of resamples whose summed paired difference is positive (zero counts one half),
    among the resamples that hold at least one sample scored for the pair."""
    n = diff.shape[0]
    rng = np.random.default_rng(seed)
    wins = np.zeros(diff.shape[1])
    valid = np.zeros(diff.shape[1])
    scored = both.astype(np.float64)
    chunk = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(c, n)) + n * np.arange(c)[:, None]
        weights = np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(np.float64)
        total = weights @ diff  # the sign of the resampled mean difference
        has = (weights @ scored) > 0
        wins += ((total > 0) & has).sum(axis=0) + 0.5 * ((total == 0) & has).sum(axis=0)
        valid += has.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid > 0, wins / valid, np.nan)


def tiers(
    means: Any,
    pairwise: Pairwise,
    confidence: float = TIER_CONFIDENCE,
    min_samples: int = MIN_FINDING,
) -> np.ndarray:
    """Tier of every group (1 = most influential; one tier = not separable), see the module
    docstring for the rule.

    Args:
        means: ``[n_groups]`` mean influence of each group (the order within and across
            tiers; NaN: no tier).
        pairwise: the block's :func:`pairwise_probabilities`.
        confidence: the probability every pair across a cut needs.
        min_samples: the samples every pair across a cut needs (fewer: one tier).

    Returns:
        ``[n_groups]`` tiers as floats (NaN where the mean is NaN).
    """
    m = np.asarray(means, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        separated = (pairwise.p >= confidence) & (pairwise.n >= int(min_samples))
    order = [int(i) for i in np.argsort(-m, kind="stable") if np.isfinite(m[i])]
    out = np.full(m.size, np.nan)
    tier = 1
    for pos, i in enumerate(order):
        if pos and separated[np.ix_(order[:pos], order[pos:])].all():
            tier += 1
        out[i] = tier
    return out


def format_order(names: Sequence[str], tier_of: Sequence[Any]) -> str:
    """The order as text: ``>`` between tiers, ``≈`` within one.

    Args:
        names: the groups, most influential first (the display names).
        tier_of: their tiers, in the same order.

    Returns:
        E.g. ``"esa_wc > s1 ≈ viirs > s2"``.
    """
    parts: list[str] = []
    for k, (name, t) in enumerate(zip(names, tier_of, strict=True)):
        if k:
            parts.append(" ≈ " if t == tier_of[k - 1] else " > ")
        parts.append(str(name))
    return "".join(parts)
