"""Scene classification (a ``scene_labels`` target: one label set per sample).

Losses ``bce`` (binary cross-entropy with logits, multi-label) or ``ce`` (single-label
cross-entropy); the default follows the target's ``multilabel``. A sample counts when it has at
least one valid input pixel. Metrics: macro (and micro) mean average precision and macro F1
(multi-label); macro mAP, macro F1 and micro accuracy (single-label); per sample the same names
over that sample's labels (:meth:`ClassificationTask.sample_metric_values`). The model pools its
bottleneck into scene logits; outputs are reported as probabilities (sigmoid, or softmax for
single-label) and a prediction is a JSON of label probabilities and predicted labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAveragePrecision,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)

from ..data.spec import TargetSpec
from ..models.unet import SCENE_HEAD
from .base import Task
from .losses import pooled_scene_loss, scene_losses


def _average_precision(scores: Tensor, truth: Tensor) -> float:
    """Average precision of ranking labels by ``scores`` against the bool ``truth`` (NaN
    without a true label); tied scores rank pessimistically."""
    n_true = int(truth.sum())
    if n_true == 0:
        return math.nan
    precisions = []
    for k in torch.nonzero(truth).flatten().tolist():
        above = scores >= scores[k]  # labels ranked at or above this true one
        precisions.append(int((above & truth).sum()) / int(above.sum()))
    return float(sum(precisions) / n_true)


def _nanmean(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return sum(ok) / len(ok) if ok else math.nan


class ClassificationTask(Task):
    """Multi-label (``bce``) or single-label (``ce``) scene classification."""

    name = "classification"
    target_kind = "scene_labels"
    losses = ("bce", "ce")
    head = SCENE_HEAD
    headlines = ("map",)

    @classmethod
    def default_loss(cls, target: TargetSpec | None = None) -> str:
        """``bce`` for a multi-label target (or none given), ``ce`` for a single-label one."""
        return "bce" if target is None or target.multilabel else "ce"

    @property
    def multilabel(self) -> bool:
        """True with the ``bce`` loss."""
        return self.loss_name == "bce"

    def loss(self, output: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """Per-sample BCE (mean over labels) or CE ``-> [B]``."""
        return scene_losses(output, target, self.multilabel)

    def pooled_loss(self, output: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss over the samples with a valid input pixel and their number."""
        keep = valid.flatten(1).any(1)
        return pooled_scene_loss(self.loss(output, target, valid), keep)

    def score(self, output: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """Pooled loss; probabilities and labels (multi-hot, or the class index) of the kept
        samples."""
        keep = valid.flatten(1).any(1)  # samples with at least one valid input pixel
        loss, n = pooled_scene_loss(self.loss(output, target, valid), keep)
        preds = self.postprocess(output).detach()[keep]
        targets = target[keep].long() if self.multilabel else target[keep].argmax(1)
        return {"loss": loss, "n": n, "preds": preds, "targets": targets}

    def metric_dict(self) -> dict[str, Metric]:
        """mAP (macro, micro) and macro F1; single-label: macro mAP, F1, micro accuracy."""
        k = self.n_outputs
        if self.multilabel:
            return {
                "map": MultilabelAveragePrecision(k, average="macro"),
                "map_micro": MultilabelAveragePrecision(k, average="micro"),
                "f1": MultilabelF1Score(k, average="macro"),
            }
        return {
            "map": MulticlassAveragePrecision(k, average="macro"),
            "f1": MulticlassF1Score(k, average="macro"),
            "accuracy": MulticlassAccuracy(k, average="micro"),
        }

    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """One sample's metrics over its labels (example-based), under the pooled metrics'
        names: ``f1`` (predicted labels -- >= 0.5, or the top class -- against the true ones;
        single-label: whether the top class is right), ``map`` (and ``map_micro``): the
        average precision of the sample's label ranking (single-label: 1 / rank of the true
        class); multi-label also ``label_accuracy`` at 0.5. A multi-label sample without true
        labels has NaN ``map`` (no ranking to score) and, predicting none either, NaN ``f1``.
        """
        rows = [self._one_sample(p.float(), t) for p, t in zip(preds, targets, strict=True)]
        return {k: _nanmean([r[k] for r in rows]) for k in rows[0]}

    def _one_sample(self, p: Tensor, target: Tensor) -> dict[str, float]:
        if self.multilabel:
            t = target.bool()
            hit = p >= 0.5
            denom = int(hit.sum()) + int(t.sum())
            f1 = 2 * int((hit & t).sum()) / denom if denom else math.nan
            ap = _average_precision(p, t)
            return {
                "f1": f1,
                "map": ap,
                "map_micro": ap,
                "label_accuracy": float((hit == t).float().mean()),
            }
        rank = 1 + int((p > p[int(target)]).sum())
        return {"f1": float(rank == 1), "map": 1.0 / rank, "accuracy": float(rank == 1)}

    def postprocess(self, output: Tensor) -> Tensor:
        """Label probabilities ``[B, K]``: sigmoid (multi-label) or softmax."""
        return torch.sigmoid(output) if self.multilabel else torch.softmax(output, 1)

    def scene_prediction(
        self, probabilities: Tensor, classes: Sequence[Any] | None
    ) -> dict[str, Any]:
        """``probabilities`` (rounded to 6 digits) by label, the ``predicted`` labels (those
        >= 0.5, or the most probable one) and ``multilabel``.

        Args:
            probabilities: one scene's :meth:`postprocess` output ``[K]``.
            classes: the label names (default: their indices).
        """
        names = list(classes or range(len(probabilities)))
        p = {str(c): round(float(v), 6) for c, v in zip(names, probabilities.tolist(), strict=True)}
        if self.multilabel:
            predicted = [c for c, v in p.items() if v >= 0.5]
        else:
            predicted = [max(p, key=p.__getitem__)]
        return {"probabilities": p, "predicted": predicted, "multilabel": self.multilabel}
