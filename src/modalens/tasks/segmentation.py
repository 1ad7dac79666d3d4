"""Pixelwise segmentation (a ``classes`` target: a raster of class codes).

Loss ``ce`` (pixelwise cross-entropy; invalid pixels and index -1 ignored); metrics as the
field reports them: each class's IoU and F1 named after the class (``iou_water``, ``f1_dry``:
the target's ``class_names``, else the class index), their means over the classes
(``iou_macro``, ``f1_macro``) and micro accuracy. The headline is the positive class's IoU for
a binary task (the class of index 1, e.g. water for 0 = dry, 1 = water: Sen1Floods11 reports
the water IoU), else ``iou_macro``. Per sample (:meth:`SegmentationTask.sample_metric_values`)
the same names are defined from the sample's own pixels, never NaN. Files of earlier versions
named them ``iou``, ``f1`` (macro) and ``iou_positive``, ``f1_positive``. Dense head without
activation (logits); outputs are reported as class probabilities (softmax) and a prediction
is written as a GeoTIFF of class *codes* (uint8, or uint16 when a code needs it) with 255
(65535) where the scene is invalid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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
    headlines = ("iou_macro", "iou_positive", "iou")

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

    @property
    def labels(self) -> list[str]:
        """Each class's name in metric names: its label slugged (``iou_water``), else its
        index."""
        raw = self.class_labels or tuple(str(c) for c in range(self.n_outputs))
        return [metric_slug(x) for x in raw]

    @classmethod
    def headline_among(cls, names: Sequence[str]) -> str | None:
        """The headline among a table's metric columns: ``iou_positive`` (earlier files), else
        the first IoU column (our tables list the headline first: :meth:`metric_dict`), else an
        earlier file's ``iou``."""
        if "iou_positive" in names:
            return "iou_positive"
        return next((n for n in names if n.startswith("iou_")), "iou" if "iou" in names else None)

    @property
    def headline(self) -> str:
        """The positive class's IoU for a binary task (``iou_water``), else ``iou_macro``."""
        return f"iou_{self.labels[1]}" if self.n_outputs == 2 else "iou_macro"

    def metric_dict(self) -> dict[str, Metric]:
        """The headline first (:attr:`headline`), then macro IoU and F1, micro accuracy and each
        class's IoU and F1 (``iou_<class>``, ``f1_<class>``); class index -1 ignored."""
        k = self.n_outputs
        metrics: dict[str, Metric] = {
            "iou_macro": MulticlassJaccardIndex(k, average="macro", ignore_index=-1),
            "f1_macro": MulticlassF1Score(k, average="macro", ignore_index=-1),
            "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
        }
        for kind in ("iou", "f1"):
            for c, label in enumerate(self.labels):
                metrics[f"{kind}_{label}"] = ClassScore(c, kind)
        first = [self.headline, self.headline.replace("iou_", "f1_", 1)]
        return {n: metrics[n] for n in dict.fromkeys([*first, *metrics])}

    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """One sample's metrics from its pixels' predicted and true class indices.

        ``accuracy``: the share of pixels predicted right. ``iou_<class>`` and ``f1_<class>``:
        the class's IoU ``|pred ∩ true| / |pred ∪ true|`` and F1 ``2 |pred ∩ true| / (|pred| +
        |true|)``; a class neither true nor predicted in the sample scores 1 (nothing to find,
        nothing found). ``iou_macro`` and ``f1_macro``: the mean over the classes *present in
        the sample* (in its truth or its prediction), so every sample has a value.
        """
        k = self.n_outputs
        p, t = preds.long().flatten(), targets.long().flatten()
        true_n = torch.bincount(t, minlength=k)[:k].double()
        pred_n = torch.bincount(p, minlength=k)[:k].double()
        hit = torch.bincount(t[p == t], minlength=k)[:k].double()
        union = true_n + pred_n - hit
        present = union > 0
        iou = torch.where(present, hit / union.clamp(min=1), torch.ones_like(hit))
        f1 = torch.where(present, 2 * hit / (true_n + pred_n).clamp(min=1), torch.ones_like(hit))
        out = {
            "iou_macro": float(iou[present].mean()) if present.any() else 1.0,
            "f1_macro": float(f1[present].mean()) if present.any() else 1.0,
            "accuracy": float((p == t).double().mean()),
        }
        for kind, values in (("iou", iou), ("f1", f1)):
            out.update({f"{kind}_{x}": float(values[c]) for c, x in enumerate(self.labels)})
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


def metric_slug(label: str) -> str:
    """A class label as part of a metric name: lower case, runs of other characters than
    letters and digits as one ``_`` (``"Not water"`` -> ``not_water``)."""
    return re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_") or "class"


class ClassScore(Metric):
    """One class's IoU or F1 over every pixel seen (pooled; class index -1 ignored).

    Args:
        index: the class index.
        kind: ``iou`` or ``f1``.
    """

    full_state_update = False

    def __init__(self, index: int, kind: str) -> None:
        super().__init__()
        self.index, self.kind = int(index), kind
        for name in ("hit", "true", "pred"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of predicted and true class indices."""
        keep = target >= 0
        p, t = preds[keep] == self.index, target[keep] == self.index
        for name, count in (("hit", (p & t).sum()), ("true", t.sum()), ("pred", p.sum())):
            setattr(self, name, getattr(self, name) + count)

    def compute(self) -> Tensor:
        """The score; 1 when the class was neither true nor predicted."""
        hit, true, pred = (torch.as_tensor(getattr(self, n)) for n in ("hit", "true", "pred"))
        denom = true + pred - hit if self.kind == "iou" else (true + pred) / 2
        return torch.where(denom > 0, hit / denom.clamp(min=1e-12), torch.ones_like(hit)).float()
