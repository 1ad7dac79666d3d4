"""The long-form score table: one row per sample, method, level, distance, strategy, group, draw.

Columns (:data:`COLUMNS`): ``sample_id, window, method, level, distance, strategy, group, draw,
value``. ``method`` is ``occlusion``, ``shapley`` or ``interaction`` (pairs ``a&b``); the
``ALL`` group is the all-groups reference of occlusion. This is what batches stream to the
parts store, what ``scores.parquet`` holds and what :func:`~.aggregation.summarize_scores` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .batches import Batch

COLUMNS = [
    "sample_id",
    "window",
    "method",
    "level",
    "distance",
    "strategy",
    "group",
    "draw",
    "value",
]


def empty_rows() -> pd.DataFrame:
    """A score table without rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


def long_rows(
    batch: Batch,
    keys: Sequence[tuple[str, int]],
    metrics: Sequence[tuple[str, str]],
    groups: Sequence[str],
    values: np.ndarray,
    method: str,
) -> pd.DataFrame:
    """Long rows from scores ``values[B, F, G, M]``.

    Args:
        batch: the batch (ids and windows of the ``B`` rows).
        keys: ``(strategy, draw)`` of the ``F`` fills.
        metrics: ``(level, distance)`` of the ``M`` score columns.
        groups: labels of the ``G`` groups.
        values: the scores.
        method: the ``method`` column.

    Returns:
        ``B * F * G * M`` rows with :data:`COLUMNS`, in that nesting order.
    """
    b, f, g, m = values.shape
    grid = np.indices((b, f, g, m)).reshape(4, -1)
    bi, fi, gi, mi = grid
    levels = np.array([lv for lv, _ in metrics], dtype=object)
    dists = np.array([d for _, d in metrics], dtype=object)
    strat = np.array([s for s, _ in keys], dtype=object)
    draw = np.array([d for _, d in keys], dtype=np.int64)
    return pd.DataFrame(
        {
            "sample_id": np.array(batch.ids, dtype=object)[bi],
            "window": np.array(batch.windows, dtype=object)[bi],
            "method": method,
            "level": levels[mi],
            "distance": dists[mi],
            "strategy": strat[fi],
            "group": np.array(list(groups), dtype=object)[gi],
            "draw": draw[fi],
            "value": values.reshape(-1).astype(np.float64),
        },
        columns=COLUMNS,
    )
