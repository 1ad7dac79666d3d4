"""Which way a metric improves and which metric a task reports first.

- :data:`LOWER_IS_BETTER` and :func:`lower_is_better`: the error metrics (MAE, RMSE, MSE, the
  loss, NLL; also under an auxiliary task's ``aux_<name>_`` prefix); every other metric (IoU,
  F1, accuracy, mAP) is better when larger.
- :func:`worse_by`: how much worse one metric value is than a reference, oriented so that a
  positive number always means *worse*, whichever way the metric improves -- the one
  definition of a retraining deviation.
- :func:`headline_metric`: the task's headline metric among the metrics a table holds (each
  task class lists its candidates in :attr:`~.base.Task.headlines`, the most specific first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .registry import TASKS

#: metrics where smaller is better; every other metric is better when larger
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse", "loss", "nll"})


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better.

    Args:
        metric: a metric name (``mae``, ``iou``, ``aux_s1_rmse``...).

    Returns:
        True for the error metrics of :data:`LOWER_IS_BETTER` (with or without a prefix ending
        in ``_``), False otherwise.
    """
    name = str(metric).lower()
    return name in LOWER_IS_BETTER or any(name.endswith(f"_{m}") for m in LOWER_IS_BETTER)


def worse_by(value: Any, reference: Any, metric: str) -> Any:
    """How much worse ``value`` is than ``reference`` under ``metric`` (negative: better).

    ``value - reference`` for a metric where lower is better (MAE), ``reference - value``
    otherwise (IoU), so the sign means the same for every metric.

    Args:
        value: the metric of the model compared (a float or an array).
        reference: the reference model's metric (broadcastable to ``value``).
        metric: the metric's name (:func:`lower_is_better`).

    Returns:
        A float for float input, an array otherwise.
    """
    diff = np.asarray(value, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    out = diff if lower_is_better(metric) else -diff
    return float(out) if out.ndim == 0 else out


def headline_metric(task: str | None, available: Iterable[str]) -> str | None:
    """The headline metric of ``task`` among the ``available`` metric names.

    Args:
        task: a registered task name (``regression``, ``segmentation``, ``classification``);
            None or an unknown name has no headline.
        available: the metrics a table holds (e.g. the columns of ``metrics_test.csv``).

    Returns:
        The task's headline among them (:meth:`~.base.Task.headline_among`: ``mae``; for a
        binary segmentation the positive class's IoU, e.g. ``iou_water``, else ``iou_macro``;
        ``map``), or None.
    """
    cls = TASKS.get(str(task)) if task is not None else None
    if cls is None:
        return None
    return cls.headline_among([str(m) for m in available])
