"""The masked losses of every task, each written once with its two reductions.

A loss is computed only where the sample is *valid* (``valid`` ``[B, H, W]``: target valid and
at least one input channel valid; an invalid channel alone is filled by the reader, see
:mod:`modalens.data.reader`): values at invalid pixels, even NaN, change neither the loss nor its
gradient. Each loss comes in two reductions of the same per-pixel (or per-sample) terms:

- *per sample* ``-> [B]`` (mean over a sample's valid pixels): what the ``loss`` level of the
  occlusion framework compares (:func:`masked_mse`, :func:`masked_mae`,
  :func:`masked_cross_entropy`, :func:`scene_losses`);
- *pooled* ``-> (loss, n)`` (mean over every valid pixel of the batch, and that count): the
  training loss, whose epoch mean is weighted by ``n`` (:func:`masked_regression_loss`,
  :func:`pooled_cross_entropy`, :func:`pooled_scene_loss`).

A sample or batch without a valid pixel gives a loss of 0 (the count is clamped to 1).
The :mod:`modalens.tasks` classes pick the right pair for their task and loss name.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def valid_pixels(valid: Tensor | None, like: Tensor) -> Tensor:
    """``valid`` as a bool mask ``[B, H, W]``; all True (shaped after ``like`` ``[B, ..., H,
    W]``) when it is None."""
    if valid is None:
        return torch.ones(like.shape[0], *like.shape[-2:], dtype=torch.bool, device=like.device)
    return valid.to(torch.bool)


def broadcast_mask(valid: Tensor, ref: Tensor) -> Tensor | None:
    """``valid`` ``[n, *S]`` as a bool mask broadcastable to ``ref`` ``[n, ..., *S]``, or None
    when ``ref`` does not end in the mask's spatial shape ``S`` (then nothing can be masked)."""
    s = tuple(valid.shape[1:])
    if ref.ndim <= valid.ndim - 1 or tuple(ref.shape[ref.ndim - len(s) :]) != s:
        return None
    return valid.reshape(valid.shape[0], *([1] * (ref.ndim - valid.ndim)), *s).bool()


def masked_errors(
    pred: Tensor, target: Tensor, mask: Tensor, absolute: bool = False
) -> tuple[Tensor, Tensor]:
    """Elementwise squared (or absolute) errors, 0 where ``mask`` is False.

    Args:
        pred: predictions, e.g. ``[B, K, H, W]``.
        target: targets of the same shape (anything, even NaN, where masked).
        mask: bool, the shape of ``pred``: the valid elements.
        absolute: absolute instead of squared errors.

    Returns:
        ``(errors, mask)``; masked target values never enter the arithmetic, so they reach
        neither the loss nor its gradient.
    """
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    err = pred - torch.where(mask, target.to(pred.dtype), zero)
    per = err.abs() if absolute else err * err
    return torch.where(mask, per, zero), mask


def sample_mean(per: Tensor, mask: Tensor | None) -> Tensor:
    """Per-sample mean ``[B]`` of masked terms over their valid entries (non-finite terms count
    as 0; no valid entry gives 0)."""
    per = torch.nan_to_num(per, nan=0.0, posinf=0.0, neginf=0.0)
    if mask is None:
        return per.flatten(1).mean(1)
    return per.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)


def pooled_mean(per: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of masked terms over every valid entry of the batch, and the number of entries."""
    n = mask.sum()
    return per.sum() / n.clamp_min(1), n


def masked_regression_loss(
    pred: Tensor, target: Tensor, valid: Tensor, kind: str = "mse"
) -> tuple[Tensor, Tensor]:
    """Mean squared (``kind="mse"``) or absolute (``"mae"``) error over valid pixels and the
    valid pixel count (the pooled training loss of regression).

    ``pred``/``target`` ``[B,K,H,W]``, ``valid`` ``[B,H,W]``. Values at invalid pixels (even
    NaN) contribute neither to the loss nor to its gradient; no valid pixel gives 0.
    """
    mask = valid[:, None].expand_as(pred)
    return pooled_mean(*masked_errors(pred, target, mask, absolute=kind != "mse"))


def masked_mse(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample mean squared error over valid pixels (``valid`` ``[B, H, W]``) ``-> [B]``."""
    return _per_sample_error(pred, target, valid, absolute=False)


def masked_mae(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample mean absolute error over valid pixels ``-> [B]``."""
    return _per_sample_error(pred, target, valid, absolute=True)


def _per_sample_error(pred: Tensor, target: Tensor, valid: Tensor | None, absolute: bool) -> Tensor:
    pred, target = pred.float(), target.float()
    mask = None if valid is None else broadcast_mask(valid, pred)
    if mask is None:  # nothing to mask: the mean over every element
        err = pred - target
        return sample_mean(err.abs() if absolute else err * err, None)
    return sample_mean(*masked_errors(pred, target, mask.expand_as(pred), absolute))


def masked_cross_entropy(logits: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample pixelwise cross-entropy ``-> [B]`` (``target`` class indices ``[B, H, W]``,
    -1 and invalid pixels ignored)."""
    t = target.long()
    if valid is not None:
        t = torch.where(valid.bool(), t, torch.full_like(t, -1))
    ce = F.cross_entropy(logits.float(), t.clamp_min(0), reduction="none")
    keep = (t >= 0).to(ce.dtype)
    return (ce * keep).flatten(1).sum(1) / keep.flatten(1).sum(1).clamp_min(1)


def pooled_cross_entropy(logits: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Pixelwise cross-entropy over valid pixels (``ignore_index=-1``) and the pixel count
    (the pooled training loss of segmentation)."""
    t = torch.where(valid, target.long(), torch.full_like(target.long(), -1))
    n = (t >= 0).sum()
    loss = F.cross_entropy(logits, t, ignore_index=-1, reduction="sum")
    return loss / n.clamp_min(1), n


def scene_losses(logits: Tensor, target: Tensor, multilabel: bool) -> Tensor:
    """Per-sample scene classification loss ``-> [B]``: mean binary cross-entropy with logits
    over the labels (``multilabel``) or the cross-entropy of the multi-hot target's first label.

    Args:
        logits: ``[B, K]``.
        target: multi-hot ``[B, K]``.
        multilabel: BCE (True) or single-label CE (False).
    """
    if multilabel:
        per = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
        return per.flatten(1).mean(1)
    return F.cross_entropy(logits.float(), target.float().argmax(1), reduction="none")


def pooled_scene_loss(per_sample: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of per-sample losses over the kept samples (those with a valid input pixel) and
    their number (the pooled training loss of classification)."""
    n = keep.sum()
    zero = torch.zeros((), dtype=per_sample.dtype, device=per_sample.device)
    return torch.where(keep, per_sample, zero).sum() / n.clamp_min(1), n
