"""Pixelwise regression (a ``continuous`` target, e.g. the naturalness index).

Losses ``mse`` (the paper's) or ``mae`` over valid pixels; metrics MAE and RMSE in target units
divided by the target's scale (0-1 for naturalness, as in the paper's Table I). The model has a
dense head with LeakyReLU(0.01) on its output (the paper's), and a prediction is written as a
float32 GeoTIFF of ``output x scale`` with NaN where the scene is invalid.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from ..data.spec import TargetSpec
from ..models.unet import DENSE_HEAD
from .base import PredictionRaster, Task
from .losses import masked_mae, masked_mse, masked_regression_loss


class RegressionTask(Task):
    """Pixelwise regression of a continuous target (see the module docstring)."""

    name = "regression"
    target_kind = "continuous"
    losses = ("mse", "mae")
    head = DENSE_HEAD
    headlines = ("mae",)

    def activation(self) -> nn.Module:
        """LeakyReLU(0.01), as the paper's model."""
        return nn.LeakyReLU(0.01)

    def loss(self, output: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """Per-sample MSE (or MAE) over valid pixels ``-> [B]``."""
        fn = masked_mae if self.loss_name == "mae" else masked_mse
        return fn(output, target, valid)

    def pooled_loss(self, output: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """MSE (or MAE) over every valid pixel of the batch and the valid pixel count."""
        return masked_regression_loss(output, target, valid, self.loss_name)

    def score(self, output: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """Pooled loss; predictions and targets at valid pixels (flattened)."""
        target = target.float()
        loss, n = self.pooled_loss(output, target, valid)
        mask = valid[:, None].expand_as(output)
        return {"loss": loss, "n": n, "preds": output[mask].detach(), "targets": target[mask]}

    def metric_dict(self) -> dict[str, Metric]:
        """MAE and RMSE."""
        return {"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)}

    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """MAE and RMSE of one sample."""
        err = preds.float() - targets.float()
        return {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt())}

    def prediction_raster(
        self, scores: np.ndarray, valid: np.ndarray, target: TargetSpec
    ) -> PredictionRaster:
        """The prediction times the target's scale (in place), NaN where invalid."""
        scores *= np.float32(target.scale)  # in place: no second scene-sized array
        scores[:, ~valid] = np.nan
        return PredictionRaster(scores, float("nan"), ["prediction"], {"scale": target.scale})
