"""TODO docstring: tasks/metrics.py"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor


def _make_metrics(task: str, n_out: int, multilabel: bool, prefix: str | None = None) -> Any:
    coll = _metric_dict(task, n_out, multilabel)
    from torchmetrics import MetricCollection

    return MetricCollection(coll, prefix=prefix)


def _metric_dict(task: str, n_out: int, multilabel: bool) -> dict[str, Any]:
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassAveragePrecision,
        MulticlassF1Score,
        MulticlassJaccardIndex,
        MultilabelAveragePrecision,
        MultilabelF1Score,
    )
    from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

    if task == "regression":
        return {"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)}
    if task == "segmentation":
        return {
            "iou": MulticlassJaccardIndex(n_out, average="macro", ignore_index=-1),
            "f1": MulticlassF1Score(n_out, average="macro", ignore_index=-1),
            "accuracy": MulticlassAccuracy(n_out, average="micro", ignore_index=-1),
        }
    if multilabel:
        return {
            "map": MultilabelAveragePrecision(n_out, average="macro"),
            "map_micro": MultilabelAveragePrecision(n_out, average="micro"),
            "f1": MultilabelF1Score(n_out, average="macro"),
        }
    return {
        "map": MulticlassAveragePrecision(n_out, average="macro"),
        "f1": MulticlassF1Score(n_out, average="macro"),
        "accuracy": MulticlassAccuracy(n_out, average="micro"),
    }


def _sample_metrics(task: str, res: Mapping[str, Tensor], multilabel: bool) -> dict[str, float]:
    p, t = res["preds"], res["targets"]
    if p.shape[0] == 0:
        return {}
    if task == "regression":
        err = p.float() - t.float()
        return {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt())}
    if task == "segmentation":
        return {"accuracy": float((p == t).float().mean())}
    if multilabel:
        hits = ((p >= 0.5).long() == t).float().mean()
        return {"label_accuracy": float(hits)}
    return {"accuracy": float((p.argmax(1) == t).float().mean())}
