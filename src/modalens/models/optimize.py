"""Inference-time model optimisation: the same function, fewer and faster operations.

- :func:`fold_batchnorm` folds eval-mode BatchNorm into the convolution (or linear layer)
  before it, so BatchNorm costs nothing at inference.
- :func:`fuse_conv_relu` replaces ``Conv2d -> ReLU`` pairs by one oneDNN call on CPU
  (:class:`ConvReLU`; eager fallback elsewhere or when this build lacks the op).
- :func:`prepare_model` makes the inference copy the occlusion framework uses: eval mode, no
  gradients, folded and fused, optionally channels-last and bf16. Results equal the original
  model's up to float rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..precision import parse_precision, torch_dtype


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm into the Conv/Linear right before it in every ``nn.Sequential``
    (in place; the BatchNorm becomes ``nn.Identity``). Returns ``model``."""
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    bns = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        kids = list(module)
        for i in range(len(kids) - 1):
            a, b = kids[i], kids[i + 1]
            if not isinstance(b, bns) or not b.track_running_stats or b.running_mean is None:
                continue
            if isinstance(a, convs) and not isinstance(a, nn.modules.conv._ConvTransposeNd):
                module[i] = fuse_conv_bn_eval(a, b)
            elif isinstance(a, nn.Linear):
                module[i] = fuse_linear_bn_eval(a, b)
            else:
                continue
            module[i + 1] = nn.Identity()
    return model


def _pointwise_op() -> Callable[..., Tensor] | None:
    """oneDNN's fused convolution + ReLU (what inductor uses on CPU), if this build has it."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        conv = nn.Conv2d(2, 3, 3, padding=1).eval()
        x = torch.randn(1, 2, 5, 5)
        with torch.inference_mode():
            ref = F.relu(conv(x))
            out = op(x, conv.weight, conv.bias, [1, 1], [1, 1], [1, 1], 1, "relu", [None], "")
        return op if torch.allclose(out, ref, atol=1e-6) else None
    except Exception:  # noqa: BLE001 - any failure means: no fusion
        return None


_POINTWISE: list[Callable[..., Tensor] | None] = []


class ConvReLU(nn.Module):
    """``relu(conv(x))`` as one oneDNN call on CPU (eager fallback elsewhere)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        c = self.conv
        op = _POINTWISE[0] if _POINTWISE else None
        if op is not None and x.device.type == "cpu" and x.dtype == c.weight.dtype:
            return op(
                x, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation),
                c.groups, "relu", [None], "",
            )  # fmt: skip
        return F.relu(c(x))


def fuse_conv_relu(model: nn.Module, keep: Iterable[str] = ()) -> nn.Module:
    """Replace ``Conv2d, [Identity...], ReLU`` runs inside ``nn.Sequential`` containers by
    :class:`ConvReLU` (in place; the ReLU becomes ``nn.Identity``). Modules named in ``keep``
    (e.g. a hooked embedding layer) and their containers' pairs touching them are left alone."""
    if not _POINTWISE:
        _POINTWISE.append(_pointwise_op())
    if _POINTWISE[0] is None:
        return model
    keep = set(keep)
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Sequential):
            continue
        kids = list(module)
        for i, conv in enumerate(kids):
            if not isinstance(conv, nn.Conv2d) or isinstance(conv.padding, str):
                continue
            if conv.padding_mode != "zeros":
                continue
            j = i + 1
            while j < len(kids) and isinstance(kids[j], nn.Identity):
                j += 1
            if j >= len(kids) or not isinstance(kids[j], nn.ReLU):
                continue
            paths = {f"{name}.{k}" if name else str(k) for k in range(i, j + 1)}
            if paths & keep:
                continue
            module[i] = ConvReLU(conv)
            module[j] = nn.Identity()
    return model


def prepare_model(
    model: nn.Module,
    precision: str = "fp32",
    optimize: bool = True,
    channels_last: bool = False,
    keep: Iterable[str] = (),
) -> nn.Module:
    """An inference copy of ``model``: eval mode, no gradients; with ``optimize`` BatchNorm
    folded into the convolutions before it and Conv+ReLU fused (oneDNN); channels-last (4-D
    inputs) and bf16 weights (``precision="bf16"``). ``keep``: submodule names whose outputs
    must stay observable (a hooked embedding layer)."""
    precision = parse_precision(precision, "--precision", ("fp32", "bf16"))
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    if optimize:
        fold_batchnorm(m)
        fuse_conv_relu(m, keep)
    if channels_last:
        # Module.to's stubs lack memory_format, which it takes (and passes to every tensor)
        m = m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if precision != "fp32":
        m = m.to(torch_dtype(precision))
    return m
