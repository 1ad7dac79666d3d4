"""Pixelwise segmentation (a ``classes`` target: a raster of class codes).

Loss ``ce`` (pixelwise cross-entropy; invalid pixels and index -1 ignored); metrics macro IoU,
macro F1 and micro accuracy. Dense head without activation (logits); outputs are reported as
class probabilities (softmax) and a prediction is written as a GeoTIFF of class *codes* (uint8,
or uint16 when a code needs it) with 255 (65535) where the scene is invalid.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import (
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
        """Macro IoU, macro F1, micro accuracy (class index -1 ignored)."""
        k = self.n_outputs
        return {
            "iou": MulticlassJaccardIndex(k, average="macro", ignore_index=-1),
            "f1": MulticlassF1Score(k, average="macro", ignore_index=-1),
            "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
        }

    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """Pixel accuracy of one sample."""
        return {"accuracy": float((preds == targets).float().mean())}

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
