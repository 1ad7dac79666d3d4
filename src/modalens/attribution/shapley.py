"""Shapley values of players (channel groups) from a value function: the pure maths.

Exact values from a table of all ``2**n`` coalition values (:func:`shapley_from_table`, with
the pairwise Shapley interaction index of Grabisch & Roubens, :func:`interactions_from_table`)
and permutation-sampling estimates with standard errors (:func:`shapley_from_permutations`;
antithetic orders by default, exactly efficient per permutation). :func:`exact_shapley` and
:func:`sampled_shapley` run them on any user value function over bool coalition masks; the
engine's side (which coalitions a batch's occlusions visit) is :mod:`~.coalitions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..display import tables_html
from ..errors import ModalensError

MAX_EXACT_PLAYERS = 16


#: maps bool coalition masks ``[M, n]`` (True = player present) to values ``[*batch, M]``
ValueFn = Callable[[np.ndarray], Any]


@dataclass
class ShapleyResult:
    """Shapley values ``[*batch, n]`` and (exact only) interactions ``[*batch, n, n]``.

    ``values_table`` is the full value table ``[*batch, 2**n]`` for exact results.
    ``stderr`` is the Monte-Carlo standard error for sampled results (zeros when exact).
    """

    players: list[str]
    values: np.ndarray
    interactions: np.ndarray | None = None
    values_table: np.ndarray | None = None
    stderr: np.ndarray | None = None
    method: str = "exact"
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The values as a table: one row per sample (the batch axes flattened), one column
        per player."""
        return pd.DataFrame(self.values.reshape(-1, len(self.players)), columns=self.players)

    def _repr_html_(self) -> str:
        return tables_html(f"Shapley values ({self.method})", {"": self.table()})


def popcount(masks: np.ndarray) -> np.ndarray:
    """Number of set bits of each int64 coalition index."""
    m = np.asarray(masks, dtype=np.int64)
    count = np.zeros(m.shape, dtype=np.int64)
    while np.any(m):
        count += m & 1
        m = m >> 1
    return count


def coalition_masks(n: int) -> np.ndarray:
    """Bool ``[2**n, n]``: row ``s`` is coalition ``s`` (bit ``i`` = player ``i`` present)."""
    s = np.arange(2**n, dtype=np.int64)[:, None]
    return ((s >> np.arange(n, dtype=np.int64)[None, :]) & 1).astype(bool)


def masks_to_index(masks: np.ndarray) -> np.ndarray:
    """Inverse of :func:`coalition_masks` for ``n <= 62``: bool ``[M, n]`` -> int64 ``[M]``."""
    masks = np.asarray(masks, dtype=bool)
    n = masks.shape[-1]
    return (masks.astype(np.int64) << np.arange(n, dtype=np.int64)).sum(axis=-1)


def check_exact_players(n: int, max_players: int) -> None:
    """Refuse exact values for no players or more than ``max_players``.

    Raises:
        ModalensError: ``n < 1`` or ``n > max_players`` (the fix names sampling).
    """
    if n < 1:
        raise ModalensError("Shapley values need at least one player (group)")
    if n > max_players:
        raise ModalensError(
            f"exact Shapley values over {n} groups need 2^{n} = {2**n:,} coalitions per sample "
            f"(limit {max_players} groups)",
            "shapley",
            "use permutation sampling (shapley='sampled', e.g. 64 permutations) or fewer groups",
        )


def _shapley_weights(n: int) -> np.ndarray:
    """w[k] = k! (n-k-1)! / n! for coalitions of size k not containing the player."""
    return np.array(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    )


def shapley_from_table(v: np.ndarray) -> np.ndarray:
    """Exact Shapley values from a value table ``[*batch, 2**n]`` -> ``[*batch, n]``."""
    v = np.asarray(v, dtype=np.float64)
    size = v.shape[-1]
    n = int(round(math.log2(size)))
    if 2**n != size:
        raise ValueError(f"value table length {size} is not a power of two")
    w = _shapley_weights(n)
    s = np.arange(size, dtype=np.int64)
    sizes = popcount(s)
    out = np.empty((*v.shape[:-1], n), dtype=np.float64)
    for i in range(n):
        bit = 1 << i
        without = s[(s & bit) == 0]
        marg = v[..., without | bit] - v[..., without]
        out[..., i] = marg @ w[sizes[without]]
    return out


def interactions_from_table(v: np.ndarray) -> np.ndarray:
    """Shapley interaction index ``[*batch, n, n]`` from a value table ``[*batch, 2**n]``.

    ``I_ij = sum_{S ⊆ N\\{i,j}} |S|! (n-|S|-2)! / (n-1)! * [v(S+ij) - v(S+i) - v(S+j) + v(S)]``
    (Grabisch & Roubens 1999). The diagonal holds the Shapley values.
    """
    v = np.asarray(v, dtype=np.float64)
    size = v.shape[-1]
    n = int(round(math.log2(size)))
    out = np.zeros((*v.shape[:-1], n, n), dtype=np.float64)
    if n >= 2:
        w = np.array(
            [
                math.factorial(k) * math.factorial(n - k - 2) / math.factorial(n - 1)
                for k in range(n - 1)
            ]
        )
        s = np.arange(size, dtype=np.int64)
        sizes = popcount(s)
        for i in range(n):
            for j in range(i + 1, n):
                bi, bj = 1 << i, 1 << j
                base = s[(s & (bi | bj)) == 0]
                d = v[..., base | bi | bj] - v[..., base | bi] - v[..., base | bj] + v[..., base]
                val = d @ w[sizes[base]]
                out[..., i, j] = val
                out[..., j, i] = val
    phi = shapley_from_table(v)
    idx = np.arange(n)
    out[..., idx, idx] = phi
    return out


def _players(n_or_names: int | Sequence[str]) -> list[str]:
    if isinstance(n_or_names, int):
        return [str(i) for i in range(n_or_names)]
    return [str(p) for p in n_or_names]


def exact_shapley(
    value_fn: ValueFn,
    players: int | Sequence[str],
    interactions: bool = True,
    max_players: int = MAX_EXACT_PLAYERS,
) -> ShapleyResult:
    """Exact Shapley values of a user value function over all ``2**n`` coalitions.

    ``value_fn(masks)`` gets bool ``[2**n, n]`` (all coalitions at once, row ``s`` = bit mask
    ``s``) and returns values ``[*batch, 2**n]`` (or ``[2**n]``).
    """
    names = _players(players)
    n = len(names)
    check_exact_players(n, max_players)
    table = np.asarray(value_fn(coalition_masks(n)), dtype=np.float64)
    phi = shapley_from_table(table)
    inter = interactions_from_table(table) if interactions else None
    return ShapleyResult(names, phi, inter, table, np.zeros_like(phi), "exact")


def permutation_masks(
    n: int, permutations: int, seed: int = 0, antithetic: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Orders ``[P, n]`` and the prefix coalitions they visit ``[P, n + 1, n]`` (bool).

    With ``antithetic`` the second half of the orders are the first half reversed.
    """
    rng = np.random.default_rng(seed)
    p = max(1, int(permutations))
    if antithetic:
        half = (p + 1) // 2
        base = np.stack([rng.permutation(n) for _ in range(half)])
        orders = np.concatenate([base, base[:, ::-1]])[:p]
    else:
        orders = np.stack([rng.permutation(n) for _ in range(p)])
    prefixes = np.zeros((p, n + 1, n), dtype=bool)
    for k in range(1, n + 1):
        prefixes[:, k] = prefixes[:, k - 1]
        prefixes[np.arange(p), k, orders[:, k - 1]] = True
    return orders, prefixes


def unique_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicate bool masks ``[M, n]`` -> (unique ``[U, n]``, inverse ``[M]``)."""
    packed = np.packbits(np.asarray(masks, dtype=bool), axis=-1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return np.asarray(masks, dtype=bool)[first], inverse.reshape(-1)


def shapley_from_permutations(
    orders: np.ndarray, prefix_values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley estimates and standard errors from values along permutations.

    ``orders`` ``[P, n]``; ``prefix_values`` ``[*batch, P, n + 1]`` (value of the first ``k``
    players of each order). Returns ``([*batch, n], [*batch, n])``.
    """
    pv = np.asarray(prefix_values, dtype=np.float64)
    p, n = orders.shape
    marg = np.diff(pv, axis=-1)  # [*batch, P, n]: contribution of orders[:, k]
    contrib = np.zeros_like(marg)
    rows = np.arange(p)[:, None]
    # scatter: player orders[r, k] gets marg[..., r, k]
    contrib[..., rows, orders] = marg
    mean = contrib.mean(axis=-2)
    if p > 1:
        stderr = contrib.std(axis=-2, ddof=1) / math.sqrt(p)
    else:
        stderr = np.full_like(mean, np.nan)
    return mean, stderr


def sampled_shapley(
    value_fn: ValueFn,
    players: int | Sequence[str],
    permutations: int = 64,
    seed: int = 0,
    antithetic: bool = True,
) -> ShapleyResult:
    """Permutation-sampling Shapley estimates for many players (e.g. single bands).

    ``value_fn`` gets the unique coalitions visited (bool ``[U, n]``) and returns
    ``[*batch, U]``. Per permutation the marginal contributions sum to ``v(N) - v(∅)``, so the
    estimates are exactly efficient; ``stderr`` is the Monte-Carlo standard error.
    """
    names = _players(players)
    n = len(names)
    if n < 1:
        raise ModalensError("Shapley values need at least one player (group)")
    orders, prefixes = permutation_masks(n, permutations, seed, antithetic)
    flat = prefixes.reshape(-1, n)
    uniq, inverse = unique_masks(flat)
    vals = np.asarray(value_fn(uniq), dtype=np.float64)
    pv = vals[..., inverse].reshape(*vals.shape[:-1], orders.shape[0], n + 1)
    phi, se = shapley_from_permutations(orders, pv)
    return ShapleyResult(names, phi, None, None, se, "sampled", {"permutations": len(orders)})
