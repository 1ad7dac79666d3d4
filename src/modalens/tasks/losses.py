"""TODO docstring: tasks/losses.py"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ..errors import ModelError


def masked_mse(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample mean squared error over valid pixels (``valid`` ``[B, H, W]``)."""
    return _masked_pointwise((pred.float() - target.float()) ** 2, valid)


def masked_mae(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample mean absolute error over valid pixels."""
    return _masked_pointwise((pred.float() - target.float()).abs(), valid)


def _masked_pointwise(err: Tensor, valid: Tensor | None) -> Tensor:
    err = torch.nan_to_num(err, nan=0.0, posinf=0.0, neginf=0.0)
    if valid is None:
        return err.flatten(1).mean(1)
    m = _broadcast_mask(valid, err)
    if m is None:
        return err.flatten(1).mean(1)
    m = m.expand_as(err).to(err.dtype)
    return (err * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)


def masked_cross_entropy(logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample pixelwise cross-entropy (``target`` class indices, -1 ignored)."""
    t = target.long()
    if valid is not None:
        t = torch.where(valid.bool(), t, torch.full_like(t, -1))
    ce = F.cross_entropy(logits.float(), t.clamp_min(0), reduction="none")
    keep = (t >= 0).to(ce.dtype)
    return (ce * keep).flatten(1).sum(1) / keep.flatten(1).sum(1).clamp_min(1)


def bce_per_sample(logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample mean binary cross-entropy with logits (multi-label scene classification)."""
    per = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return per.flatten(1).mean(1)


def task_loss(task: str, loss: str | None = None) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The per-sample loss of a modalens task (``regression``: mse/mae; ``segmentation``:
    cross-entropy; ``classification``: bce, or ce for single-label)."""
    if task == "regression":
        return masked_mae if loss in ("mae", "l1") else masked_mse
    if task == "segmentation":
        return masked_cross_entropy
    if task == "classification":
        if loss == "ce":
            return lambda p, t, v: F.cross_entropy(p.float(), t.float().argmax(1), reduction="none")
        return bce_per_sample
    raise ModelError(f"unknown task {task!r}", None, "use regression, segmentation, classification")


def _broadcast_mask(valid: Tensor, ref: Tensor) -> Tensor | None:
    """``valid`` ``[n, *S]`` as a mask broadcastable to ``ref`` ``[n, ..., *S]`` (or None)."""
    s = tuple(valid.shape[1:])
    if ref.ndim <= valid.ndim - 1 or tuple(ref.shape[ref.ndim - len(s) :]) != s:
        return None
    return valid.reshape(valid.shape[0], *([1] * (ref.ndim - valid.ndim)), *s).bool()


def _valid_pixels(valid: Tensor | None, like: Tensor) -> Tensor:
    if valid is None:
        return torch.ones(like.shape[0], *like.shape[-2:], dtype=torch.bool, device=like.device)
    return valid.to(torch.bool)


def masked_regression_loss(
    pred: Tensor, target: Tensor, valid: Tensor, kind: str = "mse"
) -> tuple[Tensor, Tensor]:
    """Mean squared (or absolute) error over valid pixels and the valid pixel count.

    ``pred``/``target`` ``[B,K,H,W]``, ``valid`` ``[B,H,W]``. Values at invalid pixels (even
    NaN) contribute neither to the loss nor to its gradient; no valid pixel gives 0.
    """
    mask = valid[:, None].expand_as(pred)
    t = torch.where(
        mask, target.to(pred.dtype), torch.zeros((), dtype=pred.dtype, device=pred.device)
    )
    err = pred - t
    per = err * err if kind == "mse" else err.abs()
    per = torch.where(mask, per, torch.zeros((), dtype=per.dtype, device=per.device))
    n = mask.sum()
    return per.sum() / n.clamp_min(1), n


def pooled_cross_entropy(logits: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Pixelwise cross-entropy over valid pixels (``ignore_index=-1``) and the pixel count."""
    t = torch.where(valid, target.long(), torch.full_like(target.long(), -1))
    n = (t >= 0).sum()
    loss = F.cross_entropy(logits, t, ignore_index=-1, reduction="sum")
    return loss / n.clamp_min(1), n
