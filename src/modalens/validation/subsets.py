"""``modalens subsets``: every subset of input modalities scored with one model.

The absent modalities of each non-empty subset are filled (an occlusion fill of
:mod:`modalens.attribution.strategies`) and the task's metrics computed as ``modalens test``
does, so the all-modality row equals :func:`modalens.training.evaluate`. From the subset
values of the headline metric follow exact *performance Shapley* values (positive: the modality
improves the model; ``v(empty)`` is the all-filled input) and the metric with each modality or
pair missing. Only meaningful for a model trained with modality dropout.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..attribution.shapley import shapley_from_table
from ..attribution.strategies import Fill, FillContext
from ..display import tables_html
from ..progress import bar
from ..tasks.headline import headline_metric, worse_by


@dataclass
class SubsetsResult:
    """The outcome of :func:`evaluate_subsets`.

    Attributes:
        table: one row per subset (``subset``, ``size``, pooled metrics).
        shapley: performance Shapley per modality of the headline metric.
        missing: the headline metric with each modality or pair absent.
        metric: the headline metric.
        out: the folder written (None: not written).
    """

    table: pd.DataFrame
    shapley: pd.DataFrame
    missing: pd.DataFrame
    metric: str
    out: Path | None = None

    def _repr_html_(self) -> str:
        return tables_html("Modality subsets", {"": self.table, "Shapley": self.shapley})

    def plot(self) -> Any:
        """A bar chart of the performance Shapley values (a matplotlib Figure)."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(self.shapley["modality"], self.shapley["shapley"])
        ax.set_ylabel(f"performance Shapley ({self.metric})")
        return fig


def _name(subset: Sequence[str]) -> str:
    return "+".join(subset)


def all_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities`` (``2^N - 1``), largest first.

    Args:
        modalities: the modality names.

    Returns:
        The subsets as tuples in the modalities' order.
    """
    out = [c for k in range(len(modalities), 0, -1) for c in itertools.combinations(modalities, k)]
    return [tuple(c) for c in out]


def _filled(x: Tensor, fill: Fill, absent: Sequence[slice]) -> Tensor:
    y = x.clone()
    for sl in absent:
        if fill.kind == "constant":
            assert fill.value is not None
            y[:, sl] = fill.value.to(x)[sl].view(1, -1, *([1] * (x.dim() - 2)))
        elif fill.kind == "per_sample":
            assert fill.value is not None
            y[:, sl] = fill.value.to(x)[:, sl]
        elif fill.kind == "donor":
            assert fill.donor is not None
            y[:, sl] = x[fill.donor.to(x.device)][:, sl]
        else:
            y[:, sl] = math.nan
    return y


def score_subsets(
    module: Any,
    task: Any,
    batches: Iterable[Mapping[str, Any]],
    slices: Mapping[str, slice],
    fill_fn: Any,
    subsets: Sequence[Sequence[str]],
    mean: Sequence[float] | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each subset: pooled metrics and per-sample metrics, as ``modalens test`` does.

    Args:
        module: anything with ``predict_all(batch)`` and ``compute(batch, output=...)`` (a
            :class:`~modalens.training.module.TaskModule`).
        task: the task (``metrics()``, ``sample_metrics``, ``metric_dict()``).
        batches: collated batches (``image``, ``target``, ``id``...).
        slices: the channels of each modality in ``image``.
        fill_fn: the fill strategy function (``fn(FillContext) -> Fill``).
        subsets: the subsets of present modalities.
        mean: the ``mean`` option of the fill (normalised, one per channel).
        progress: show a progress bar.

    Returns:
        ``(pooled, samples)``: one row per subset; one row per subset and sample.
    """
    names = [_name(s) for s in subsets]
    pooled = {n: task.metrics() for n in names}
    loss = {n: [0.0, 0.0] for n in names}
    rows: list[dict[str, Any]] = []
    mean_t = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
    with torch.inference_mode():
        for batch in bar(batches, progress, desc="subsets", unit="batch"):
            x = batch["image"]
            ctx = FillContext(x, 1, [str(i) for i in batch["id"]], "subsets", mean=mean_t)
            fill = fill_fn(ctx)
            for sub, name in zip(subsets, names, strict=True):
                absent = [sl for m, sl in slices.items() if m not in sub]
                one_b = dict(batch, image=_filled(x, fill, absent))
                out = module.predict_all(one_b)
                for i, sid in enumerate(batch["id"]):
                    one = {
                        k: (v[i : i + 1] if isinstance(v, Tensor) else v) for k, v in one_b.items()
                    }
                    res = module.compute(one, output={k: v[i : i + 1] for k, v in out.items()})
                    n = float(res["n"])
                    row = {"subset": name, "id": str(sid), "n": int(n), "loss": float(res["loss"])}
                    row.update(task.sample_metrics(res["preds"], res["targets"]))
                    rows.append(row)
                    loss[name][0] += float(res["loss"]) * n
                    loss[name][1] += n
                    if res["preds"].shape[0] > 0:
                        pooled[name].update(res["preds"], res["targets"])
    table = []
    for sub, name in zip(subsets, names, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals = {k: float(v) for k, v in pooled[name].compute().items()}
        tot, n = loss[name]
        row = {"subset": name, "size": len(sub), "n": int(n), "loss": tot / n if n else math.nan}
        row.update({k: vals[k] for k in task.metric_dict() if k in vals})
        table.append(row)
    return pd.DataFrame(table), pd.DataFrame(rows)


def metric_of(task: str | None, columns: Iterable[str]) -> str:
    """The headline metric of a subsets table (one place to follow ``headline_metric``).

    Args:
        task: the task name.
        columns: the table's columns.

    Returns:
        The headline metric, else ``loss``.
    """
    return headline_metric(task, columns) or "loss"


def missing_table(
    values: Mapping[frozenset[str], float], modalities: Sequence[str]
) -> pd.DataFrame:
    """The metric with each modality, and each pair, absent.

    Args:
        values: ``v(S)`` per present subset.
        modalities: all modalities.

    Returns:
        ``missing``, ``value`` rows.
    """
    full = frozenset(modalities)
    rows = []
    for k in (1, 2):
        for c in itertools.combinations(modalities, k):
            if full - set(c):
                rows.append({"missing": _name(c), "value": values[full - set(c)]})
    return pd.DataFrame(rows)


def shapley_values(v: Any, modalities: Sequence[str], metric: str) -> Any:
    """Performance Shapley ``[..., N]`` from a value table ``[..., 2**N]`` (bit ``i``:
    modality ``i`` present; entry 0 the all-filled input), oriented so positive = improves.

    Args:
        v: the metric per coalition (:func:`~modalens.attribution.shapley.coalition_masks`).
        modalities: the players.
        metric: the metric's name (:func:`~modalens.tasks.headline.worse_by`).

    Returns:
        Values summing to the gain of ``v(all)`` over ``v(empty)``.
    """
    v = np.asarray(v, dtype=np.float64)
    gain = worse_by(v[..., :1], v, metric)  # how much better than the all-filled input
    return shapley_from_table(gain)
