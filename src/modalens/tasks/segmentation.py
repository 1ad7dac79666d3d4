"""Pixelwise segmentation (a ``classes`` target: a raster of class codes).

Loss ``ce`` (pixelwise cross-entropy; invalid pixels and index -1 ignored); metrics macro IoU,
macro F1 and micro accuracy, and for a binary task (two classes) also the positive class's IoU
and F1 (``iou_positive``, ``f1_positive``; the positive class is the one of index 1, the
second of the target's classes, e.g. water for 0 = dry, 1 = water), which is then the headline
metric. Per sample (:meth:`SegmentationTask.sample_metric_values`) the same names are defined
from the sample's own pixels. Dense head without activation (logits); outputs are reported as
class probabilities (softmax) and a prediction is written as a GeoTIFF of class *codes* (uint8,
or uint16 when a code needs it) with 255 (65535) where the scene is invalid.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import (
    BinaryF1Score,
    BinaryJaccardIndex,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from ..data.spec import TargetSpec
from ..models.unet import DENSE_HEAD
from .base import PredictionRaster, Task
from .losses import masked_cross_entropy, pooled_cross_entropy


class SegmentationTask(Task):
    """Pixelwise classification into the target's classes (see the module docstring)."""

    name = "segmentation"
    target_kind = "classes"
    losses = ("ce",)
    head = DENSE_HEAD
    headlines = ("iou_positive", "iou")

    def loss(self, output: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """Per-sample cross-entropy over valid pixels ``-> [B]``."""
        return masked_cross_entropy(output, target, valid)

    def pooled_loss(self, output: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy over every valid pixel of the batch and the valid pixel count."""
        return pooled_cross_entropy(output, target, valid)

    def score(self, output: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """Pooled loss; predicted and true class indices at valid pixels (flattened)."""
        loss, n = self.pooled_loss(output, target, valid)
        mask = valid & (target >= 0)
        preds = output.detach().argmax(1)[mask]
        return {"loss": loss, "n": n, "preds": preds, "targets": target.long()[mask]}

    def metric_dict(self) -> dict[str, Metric]:
        """Macro IoU, macro F1, micro accuracy (class index -1 ignored); a binary task also
        the positive class's IoU and F1."""
        k = self.n_outputs
        metrics: dict[str, Metric] = {
            "iou": MulticlassJaccardIndex(k, average="macro", ignore_index=-1),
            "f1": MulticlassF1Score(k, average="macro", ignore_index=-1),
            "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
        }
        if k == 2:
            metrics["iou_positive"] = BinaryJaccardIndex(ignore_index=-1)
            metrics["f1_positive"] = BinaryF1Score(ignore_index=-1)
        return metrics

    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """One sample's metrics from its pixels' predicted and true class indices.

        ``accuracy``: the share of pixels predicted right. ``iou`` and ``f1``: the mean over
        the classes *present in the sample* (in its truth or its prediction) of the class's
        IoU ``|pred ∩ true| / |pred ∪ true|`` and F1 ``2 |pred ∩ true| / (|pred| + |true|)``;
        a class absent from both has no defined score and is left out, so every sample has
        a value. A binary task adds ``iou_positive`` and ``f1_positive``, the same scores of
        the positive class (index 1) alone; a sample where that class is neither true nor
        predicted scores 1 (nothing to find, nothing found).
        """
        k = self.n_outputs
        p, t = preds.long().flatten(), targets.long().flatten()
        true_n = torch.bincount(t, minlength=k)[:k].double()
        pred_n = torch.bincount(p, minlength=k)[:k].double()
        hit = torch.bincount(t[p == t], minlength=k)[:k].double()
        union = true_n + pred_n - hit
        present = union > 0
        out = {
            "iou": float((hit[present] / union[present]).mean()),
            "f1": float((2 * hit[present] / (true_n + pred_n)[present]).mean()),
            "accuracy": float((p == t).double().mean()),
        }
        if k == 2:
            out["iou_positive"] = float(hit[1] / union[1]) if present[1] else 1.0
            out["f1_positive"] = float(2 * hit[1] / (true_n[1] + pred_n[1])) if present[1] else 1.0
        return out

    def postprocess(self, output: Tensor) -> Tensor:
        """Class probabilities (softmax over the channel axis)."""
        return torch.softmax(output, 1)

    def prediction_raster(
        self, scores: np.ndarray, valid: np.ndarray, target: TargetSpec
    ) -> PredictionRaster:
        """The most probable class's code per pixel; 255 (65535) where invalid."""
        codes = np.asarray(target.classes, dtype=np.int64)
        dtype = np.uint8 if codes.max() < 255 and codes.min() >= 0 else np.uint16
        nodata = 255 if dtype == np.uint8 else 65535
        labels = codes[scores.argmax(0)].astype(dtype)
        labels[~valid] = nodata
        tags = {"classes": ",".join(map(str, codes.tolist()))}
        return PredictionRaster(labels, nodata, ["class"], tags)
