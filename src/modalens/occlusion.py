"""The deep occlusion framework (Ekim & Schmitt, IEEE GRSL 2024), generalised.

For every sample and every channel group (a modality by default; any named groups of channels
on any channel axis), the input is occluded -- the group's channels are replaced in the
model's *normalised* input space -- and compared with the unoccluded input:

- ``level="embedding"`` (the paper): distance between the embeddings of the full and the
  occluded input. The embedding is our U-Net's ``encode()`` bottleneck (only the encoder
  runs), ``embed()``, the output of any named submodule (a forward hook; the forward is cut
  short after it when the output is not needed) or a callable ``fn(model, x)``.
- ``level="output"``: distance between the predictions, over valid pixels when a ``valid``
  mask ``[B, H, W]`` is given.
- ``level="loss"``: ``loss(occluded) - loss(full)`` against the target with a per-sample
  ``loss_fn(pred, target, valid) -> [B]`` (default: masked MSE), distance label ``"loss"``.

An ``ALL`` row occludes every grouped channel at once (the reference).

Strategies (fill of the occluded channels, in normalised space): ``zeros``, ``ones``,
``uniform`` (U[0,1)), ``gaussian`` (N(0,1)) -- the paper's four -- ``mean`` (a per-channel
train-set mean in normalised space, ``mean=``; 0 where not given) and ``permute`` (the group
taken from another sample of the batch, a seeded derangement; NaN for a batch of one sample).
Noise and permutations are seeded per ``(seed, strategy, draw, sample id)`` (per batch ids
for ``permute``), so results do not depend on batch composition or on resuming; ``draws=k``
repeats them k times (``draw`` column; aggregation averages draws first). The same noise
tensor serves every group, the ``ALL`` row and every Shapley coalition of a sample and draw.

Distances (per sample, over the flattened tensor, float64): ``euclidean`` (the paper's,
default), ``cosine`` (1 - cosine similarity), ``relative`` (euclidean / norm of the full
input's embedding or prediction), and two extras: ``mae`` (mean absolute difference) and
``delta`` (signed mean of full - occluded: the direction of an output change).

Efficiency: the model is copied in eval mode with BatchNorm folded into the preceding
convolutions and Conv+ReLU fused into one oneDNN call (``optimize=True``; results equal up to
float rounding), channels-last for 4-D inputs, optionally bf16 (``precision="bf16"``);
everything runs under :func:`torch.inference_mode`. The unoccluded embedding is computed once
per sample and shared by all strategies and draws; all occlusions of a batch (every strategy,
draw, group, Shapley coalition, deduplicated) go through batched forwards of ``chunk_size``
inputs; for deterministic fills (zeros/ones/mean) covering every channel the ``ALL`` input is
the same for every sample, so it runs once per input shape; for ``permute`` it is another
sample's full input, whose evaluation is reused. bf16 keeps about 3 significant digits per
activation, so it resolves influences only when they are well above ~1 % of the embedding
norm (the ``relative`` distance); check with :func:`precision_agreement` before using it.

Shapley values (``shapley=True``, see :mod:`modalens.shapley`) use ``v(S) = -score`` of
occluding the groups outside ``S`` and come from the same batched forwards.

Run level: :func:`attribute_run` (a trained run folder -> ``scores.parquet``,
``summary.csv``), :func:`occlusion_maps` (whole-scene sensitivity GeoTIFFs and PNGs through
:func:`modalens.inference.sliding_window` with :func:`occlusion_map_fn`).

Long form result (:func:`attribute`): one row per sample, method (``occlusion``, ``shapley``,
``interaction``), level, distance, strategy, group and draw with columns
``sample_id, window, method, level, distance, strategy, group, draw, value``. Results stream
to ``OUT/parts/part-NNNNNN.parquet`` (one atomic file per batch); a rerun skips the samples
already there and ``OUT/scores.parquet`` is assembled at the end.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import DataError, ModalensError, ModelError, SpecError
from .io import atomic_path, atomic_write_json, atomic_write_text
from .shapley import (
    MAX_EXACT_PLAYERS,
    ShapleyResult,
    _check_exact,
    coalition_masks,
    interactions_from_table,
    permutation_masks,
    shapley_from_permutations,
    shapley_from_table,
    unique_masks,
)

STRATEGIES = ("zeros", "ones", "uniform", "gaussian", "mean", "permute")
PAPER_STRATEGIES = ("zeros", "ones", "uniform", "gaussian")
NOISE_STRATEGIES = ("uniform", "gaussian")
RANDOM_STRATEGIES = ("uniform", "gaussian", "permute")
DISTANCES = ("euclidean", "cosine", "relative", "mae", "delta")
LEVELS = ("embedding", "output", "loss")
PRECISIONS = ("fp32", "bf16")
ALL = "ALL"
COLUMNS = [
    "sample_id",
    "window",
    "method",
    "level",
    "distance",
    "strategy",
    "group",
    "draw",
    "value",
]
AUTO_SHAPLEY_EXACT_MAX = 10

Groups = Mapping[str, Sequence[int] | slice] | Sequence[Sequence[int]]


# ============================================================================ small helpers
def _as_list(value: str | Iterable[str] | None, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _check_choice(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
    for v in values:
        if v not in allowed:
            raise SpecError(
                f"unknown {what} {v!r}", f"--{what}", f"choose from {', '.join(allowed)}"
            )
    if not values:
        raise SpecError(f"no {what} given", f"--{what}", f"choose from {', '.join(allowed)}")


def normalize_groups(groups: Groups, n_channels: int | None = None) -> dict[str, list[int]]:
    """Validate channel groups -> ``{name: [channel indices]}`` (a list of lists gets names
    ``g0, g1, ...``; slices are expanded; negative indices need ``n_channels``)."""
    if isinstance(groups, Mapping):
        items = list(groups.items())
    else:
        items = [(f"g{i}", g) for i, g in enumerate(groups)]
    out: dict[str, list[int]] = {}
    for name, idx in items:
        name = str(name)
        if name == ALL:
            raise SpecError("'ALL' is reserved for the all-groups reference", "groups", "rename it")
        if isinstance(idx, slice):
            if n_channels is None:
                raise SpecError(
                    f"group {name!r} is a slice; the channel count is unknown", "groups"
                )
            chans = list(range(n_channels))[idx]
        elif isinstance(idx, int | np.integer):
            chans = [int(idx)]
        else:
            chans = [int(i) for i in idx]
        if n_channels is not None:
            chans = [c + n_channels if c < 0 else c for c in chans]
            bad = [c for c in chans if not 0 <= c < n_channels]
            if bad:
                raise SpecError(
                    f"group {name!r} has channels {bad} outside 0..{n_channels - 1}",
                    "groups",
                    "check the grouping against the model's input channels",
                )
        if not chans:
            raise SpecError(f"group {name!r} has no channels", "groups", "give at least one")
        out[name] = sorted(set(chans))
    if not out:
        raise SpecError("no channel groups given", "groups", "give e.g. {'s2': [0, 1, 2]}")
    return out


def _stable_seed(*parts: Any) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def _window_str(w: Any) -> str:
    if w is None:
        return ""
    if isinstance(w, str):
        return w
    if isinstance(w, Tensor):
        w = w.tolist()
    return ",".join(str(int(v)) for v in w)


# ============================================================================ losses
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


# ============================================================================ distances
def _broadcast_mask(valid: Tensor, ref: Tensor) -> Tensor | None:
    """``valid`` ``[n, *S]`` as a mask broadcastable to ``ref`` ``[n, ..., *S]`` (or None)."""
    s = tuple(valid.shape[1:])
    if ref.ndim <= valid.ndim - 1 or tuple(ref.shape[ref.ndim - len(s) :]) != s:
        return None
    return valid.reshape(valid.shape[0], *([1] * (ref.ndim - valid.ndim)), *s).bool()


def distances(
    full: Tensor, occluded: Tensor, kinds: Sequence[str], valid: Tensor | None = None
) -> np.ndarray:
    """Per-row distances ``[n, len(kinds)]`` (float64) between ``full`` and ``occluded``
    ``[n, ...]``, over the elements where ``valid`` (broadcast over leading axes) is True."""
    a = full.detach().to(torch.float64).flatten(1)
    b = occluded.detach().to(torch.float64).flatten(1)
    if valid is not None:
        m = _broadcast_mask(valid, full)
        if m is not None:
            mf = m.expand(full.shape).reshape(full.shape[0], -1).to(torch.float64)
            a = a * mf
            b = b * mf
            count = mf.sum(1)
        else:
            count = torch.full((a.shape[0],), float(a.shape[1]), dtype=torch.float64)
    else:
        count = torch.full((a.shape[0],), float(a.shape[1]), dtype=torch.float64)
    diff = a - b
    out = torch.empty((a.shape[0], len(kinds)), dtype=torch.float64)
    eucl = None
    for k, kind in enumerate(kinds):
        if kind in ("euclidean", "relative"):
            if eucl is None:
                eucl = torch.linalg.vector_norm(diff, dim=1)
            if kind == "euclidean":
                out[:, k] = eucl
            else:
                out[:, k] = eucl / torch.linalg.vector_norm(a, dim=1)
        elif kind == "cosine":
            na = torch.linalg.vector_norm(a, dim=1)
            nb = torch.linalg.vector_norm(b, dim=1)
            out[:, k] = 1.0 - (a * b).sum(1) / (na * nb)
        elif kind == "mae":
            out[:, k] = diff.abs().sum(1) / count
        elif kind == "delta":
            out[:, k] = diff.sum(1) / count
        else:
            raise SpecError(f"unknown distance {kind!r}", "--distance", f"use {DISTANCES}")
    res = out.numpy()
    res[(count == 0).numpy()] = np.nan
    return res


# ============================================================================ model preparation
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm into the Conv/Linear right before it in every ``nn.Sequential``
    (in place; the BatchNorm becomes ``nn.Identity``). Returns ``model``."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

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
    if precision not in PRECISIONS:
        raise SpecError(f"unknown precision {precision!r}", "--precision", "use fp32 or bf16")
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    if optimize:
        fold_batchnorm(m)
        fuse_conv_relu(m, keep)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    if precision == "bf16":
        m = m.to(torch.bfloat16)
    return m


class _Stop(Exception):
    """Raised by the embedding hook to cut a forward short."""


def _first_tensor(obj: Any) -> Tensor:
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, list | tuple) and obj:
        return _first_tensor(obj[-1] if isinstance(obj, list) else obj[0])
    if isinstance(obj, Mapping) and obj:
        return _first_tensor(next(iter(obj.values())))
    raise ModelError(f"expected a tensor, the model returned {type(obj).__name__}")


class _Forward:
    """Evaluates a prepared model: ``(embedding or None, output or None)`` for a batch."""

    def __init__(
        self, model: nn.Module, embedding: Any, need_embedding: bool, need_output: bool
    ) -> None:
        self.model = model
        self.need_embedding = need_embedding
        self.need_output = need_output
        self.hook_store: dict[str, Tensor] = {}
        self.mode = "none"
        if not need_embedding:
            return
        if callable(embedding) and not isinstance(embedding, str):
            self.mode, self.fn = "callable", embedding
            return
        if embedding in (None, "auto"):
            if callable(getattr(model, "encode", None)):
                embedding = "encode"
            elif callable(getattr(model, "embed", None)):
                embedding = "embed"
            else:
                names = [n for n, _ in model.named_children()]
                raise ModelError(
                    f"the model ({type(model).__name__}) has no encode()/embed()",
                    "embedding",
                    "name the submodule whose output is the embedding, e.g. embedding="
                    + (repr(names[0]) if names else "'encoder'"),
                )
        if embedding == "encode":
            self.mode = "encode"
            self.can_decode = callable(getattr(model, "decode", None))
        elif embedding == "embed":
            self.mode = "embed"
        else:
            try:
                sub = model.get_submodule(str(embedding))
            except AttributeError:
                names = [n for n, _ in model.named_modules() if n][:8]
                raise ModelError(
                    f"the model has no submodule {embedding!r}",
                    "embedding",
                    f"use one of {', '.join(names)}" if names else "use encode",
                ) from None
            self.mode = "hook"
            sub.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.hook_store["emb"] = _first_tensor(output)
        if not self.need_output:
            raise _Stop

    def __call__(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        m = self.model
        emb = out = None
        if self.mode == "none":
            return None, _first_tensor(m(x))
        if self.mode == "encode":
            feats = m.encode(x)
            # a list/tuple of features (e.g. skips then bottleneck): the last is the embedding
            emb = _first_tensor(feats[-1] if isinstance(feats, list | tuple) and feats else feats)
            if self.need_output:
                out = _first_tensor(m.decode(feats) if self.can_decode else m(x))
        elif self.mode == "embed":
            emb = _first_tensor(m.embed(x))
            if self.need_output:
                out = _first_tensor(m(x))
        elif self.mode == "callable":
            emb = _first_tensor(self.fn(m, x))
            if self.need_output:
                out = _first_tensor(m(x))
        else:
            self.hook_store.clear()
            try:
                out = _first_tensor(m(x))
            except _Stop:
                out = None
            emb = self.hook_store.pop("emb", None)
            if emb is None:
                raise ModelError("the embedding submodule did not run in the forward pass")
        return emb, out


# ============================================================================ batches
@dataclass
class Batch:
    """A normalised batch: ``image`` (float tensor), optional ``target``/``valid``, ids and
    crop windows (``"row,col,height,width"`` strings, ``""`` when unknown)."""

    image: Tensor
    target: Tensor | None
    valid: Tensor | None
    ids: list[str]
    windows: list[str]

    def subset(self, keep: Sequence[int]) -> Batch:
        idx = torch.as_tensor(list(keep), dtype=torch.long)
        return Batch(
            self.image[idx],
            None if self.target is None else self.target[idx],
            None if self.valid is None else self.valid[idx],
            [self.ids[i] for i in keep],
            [self.windows[i] for i in keep],
        )


class LazyBatch:
    """A batch whose sample ids are known before its data are read (``load() -> batch``):
    :func:`attribute` skips finished samples without reading them."""

    def __init__(self, ids: Sequence[str], load: Callable[[], Any]) -> None:
        self.ids = [str(i) for i in ids]
        self.load = load


def _windows_of(raw: Any, n: int) -> list[str]:
    if raw is None:
        return [""] * n
    if isinstance(raw, Tensor):
        if raw.ndim == 2 and raw.shape[0] == n:
            return [_window_str(r) for r in raw]
        if raw.ndim == 2 and raw.shape[1] == n:
            return [_window_str(r) for r in raw.T]
    if isinstance(raw, list | tuple):
        if len(raw) == n and all(isinstance(w, list | tuple | Tensor | str) for w in raw):
            if not (len(raw) == 4 and all(isinstance(w, Tensor) and w.ndim == 1 for w in raw)):
                return [_window_str(w) for w in raw]
        if len(raw) == 4 and all(isinstance(w, Tensor) and w.ndim == 1 for w in raw):
            # default_collate of tuples: 4 tensors of [B]
            return [_window_str([int(c[i]) for c in raw]) for i in range(n)]
    return [""] * n


def as_batch(obj: Any, start: int = 0) -> Batch:
    """A :class:`Batch` from a dict (``image``/``target``/``valid``/``id``/``window``), a
    tensor or a tuple ``(image, target[, valid])``. Missing ids become running indices."""
    target = valid = ids = windows = None
    if isinstance(obj, Batch):
        return obj
    if isinstance(obj, Mapping):
        if "image" not in obj:
            raise DataError("a batch dict has no 'image' entry", "batches", "name the input image")
        image = obj["image"]
        target, valid = obj.get("target"), obj.get("valid")
        ids, windows = obj.get("id"), obj.get("window")
    elif isinstance(obj, Tensor):
        image = obj
    elif isinstance(obj, list | tuple) and obj and isinstance(obj[0], Tensor):
        image = obj[0]
        target = obj[1] if len(obj) > 1 else None
        valid = obj[2] if len(obj) > 2 else None
    else:
        raise DataError(
            f"cannot read a batch of type {type(obj).__name__}",
            "batches",
            "yield dicts with 'image', tensors or (image, target) tuples",
        )
    image = torch.as_tensor(image)
    if not image.is_floating_point():
        image = image.float()
    n = int(image.shape[0])
    if ids is None:
        ids = [str(start + i) for i in range(n)]
    elif isinstance(ids, str):
        ids = [ids]
    ids = [str(i.item() if isinstance(i, Tensor) else i) for i in ids]
    if len(ids) != n:
        raise DataError(f"batch has {n} images but {len(ids)} ids", "batches")
    if valid is not None:
        valid = torch.as_tensor(valid).bool()
    if target is not None:
        target = torch.as_tensor(target)
    return Batch(image, target, valid, ids, _windows_of(windows, n))


# ============================================================================ engine
@dataclass
class Evaluation:
    """Model evaluation of some (occluded) inputs, handed to user value functions:
    ``embedding``/``output`` ``[n, ...]`` (float32), the batch row ``sample`` of each input,
    and that sample's ``target``/``valid`` (or None)."""

    embedding: Tensor | None
    output: Tensor | None
    sample: Tensor
    target: Tensor | None
    valid: Tensor | None


@dataclass
class _Fill:
    kind: str  # "const" | "tensor" | "donor" | "nan"
    value: Tensor | None = None  # const: [1, ..C.., 1]; tensor: [B, *sample]
    donor: Tensor | None = None  # permute: donor row per sample [B]


class OcclusionEngine:
    """Occlusion scores of one model for batches of inputs (see the module docstring).

    Args:
        model: any ``nn.Module`` taking the stacked input.
        groups: ``{name: [channel indices]}`` (or a list of index lists) on ``channel_axis``.
        strategies, distances, levels: see :data:`STRATEGIES`, :data:`DISTANCES`,
            :data:`LEVELS` (lists or comma-separated strings).
        embedding: ``"auto"`` (``encode()`` bottleneck, else ``embed()``), ``"encode"``,
            ``"embed"``, a submodule name (forward hook) or ``fn(model, x) -> Tensor``.
        channel_axis: axis of the channels in a batch (1 for images; -1 for tabular/time series).
        draws: draws of the random strategies (uniform, gaussian, permute).
        seed: seed of noise and permutations.
        mean: per-channel fill of the ``mean`` strategy in normalised space (default 0).
        loss_fn: ``loss_fn(pred, target, valid) -> [B]`` for ``level="loss"`` (default MSE).
        precision: ``fp32`` (default) or ``bf16`` (bf16 weights and inputs after folding).
        optimize: fold BatchNorm and use channels-last (results equal up to float rounding).
        chunk_size: inputs per forward; default: cache-sized on CPU (``2**20`` input elements
            in fp32, ``2**21`` in bf16: 1 or 2 at 14x256x256), ``2**24`` on GPUs.
        include_all: add the ``ALL`` reference row.
        device: where the model runs (default: where its parameters are).
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Groups,
        *,
        strategies: str | Sequence[str] = ("zeros",),
        distances: str | Sequence[str] = ("euclidean",),
        levels: str | Sequence[str] = ("embedding",),
        embedding: Any = "auto",
        channel_axis: int = 1,
        draws: int = 1,
        seed: int = 0,
        mean: Sequence[float] | Tensor | None = None,
        loss_fn: Callable[..., Tensor] | None = None,
        precision: str = "fp32",
        optimize: bool = True,
        chunk_size: int | None = None,
        include_all: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        self.strategies = _as_list(strategies, ("zeros",))
        self.distance_kinds = _as_list(distances, ("euclidean",))
        self.levels = _as_list(levels, ("embedding",))
        _check_choice(self.strategies, STRATEGIES, "strategy")
        _check_choice(self.distance_kinds, DISTANCES, "distance")
        _check_choice(self.levels, LEVELS, "level")
        if precision not in PRECISIONS:
            raise SpecError(f"unknown precision {precision!r}", "--precision", "use fp32 or bf16")
        n_ch = getattr(model, "in_channels", None)
        self.groups = normalize_groups(groups, n_ch if isinstance(n_ch, int) else None)
        self.group_names = list(self.groups)
        self.source_model = model
        self.embedding = embedding
        self.channel_axis = int(channel_axis)
        self.draws = max(1, int(draws))
        self.seed = int(seed)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.loss_fn = loss_fn or masked_mse
        self.precision = precision
        self.optimize = bool(optimize)
        self.chunk_size = chunk_size
        self.include_all = bool(include_all)
        if device is None:
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = torch.device(device)
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.metrics: list[tuple[str, str]] = []
        for lv in self.levels:
            if lv == "loss":
                self.metrics.append(("loss", "loss"))
            else:
                self.metrics.extend((lv, d) for d in self.distance_kinds)
        self.need_embedding = "embedding" in self.levels
        self.need_output = "output" in self.levels or "loss" in self.levels
        self._model: nn.Module | None = None
        self._forward: _Forward | None = None
        self._channels_last = False
        self._all_cache: dict[Any, tuple[Tensor | None, Tensor | None]] = {}
        self._gmat: Tensor | None = None
        self.forwards = 0  # inputs evaluated (for tests and benchmarks)

    # ------------------------------------------------------------------ set-up
    def fill_keys(self) -> list[tuple[str, int]]:
        """``(strategy, draw)`` pairs evaluated per sample."""
        keys = []
        for s in self.strategies:
            for d in range(self.draws if s in RANDOM_STRATEGIES else 1):
                keys.append((s, d))
        return keys

    def config(self) -> dict[str, Any]:
        """What determines the scores (written beside streamed results)."""
        emb = (
            self.embedding
            if isinstance(self.embedding, str)
            else getattr(self.embedding, "__name__", "callable")
        )
        return {
            "groups": self.groups,
            "strategies": self.strategies,
            "distances": self.distance_kinds,
            "levels": self.levels,
            "embedding": emb,
            "channel_axis": self.channel_axis,
            "draws": self.draws,
            "seed": self.seed,
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "precision": self.precision,
            "include_all": self.include_all,
        }

    def _setup(self, x: Tensor) -> None:
        if self._model is not None:
            return
        ax = self.channel_axis % x.ndim
        self._channels_last = self.optimize and x.ndim == 4 and ax == 1
        keep = [self.embedding] if isinstance(self.embedding, str) else []
        self._model = prepare_model(
            self.source_model, self.precision, self.optimize, self._channels_last, keep
        ).to(self.device)
        self._forward = _Forward(self._model, self.embedding, self.need_embedding, self.need_output)

    @property
    def model(self) -> nn.Module:
        """The prepared inference copy (after the first batch)."""
        if self._model is None:
            raise RuntimeError("the engine has not seen a batch yet")
        return self._model

    def _axis(self, x: Tensor) -> int:
        ax = self.channel_axis % x.ndim
        if ax == 0:
            raise SpecError("the channel axis cannot be the batch axis (0)", "channel_axis")
        return ax

    def _group_matrix(self, n_channels: int) -> Tensor:
        if self._gmat is None or self._gmat.shape[1] != n_channels:
            gm = torch.zeros((len(self.group_names), n_channels), dtype=torch.bool)
            for g, name in enumerate(self.group_names):
                chans = self.groups[name]
                if max(chans) >= n_channels:
                    raise SpecError(
                        f"group {name!r} uses channel {max(chans)} but the input has "
                        f"{n_channels} channels on axis {self.channel_axis}",
                        "groups",
                        "check the grouping and channel_axis",
                    )
                gm[g, chans] = True
            self._gmat = gm
        return self._gmat

    def _covers_all(self, n_channels: int) -> bool:
        return bool(self._group_matrix(n_channels).any(0).all())

    def _chunk(self, x: Tensor) -> int:
        if self.chunk_size:
            return max(1, int(self.chunk_size))
        # cache-sized: on CPU the high-resolution layers run fastest when one input's
        # activations stay in the last-level cache (UNet(14) at 256x256: 197 GFLOP/s at 1
        # input per forward vs 173 at 8 in fp32; bf16 best at 2), bigger chunks elsewhere
        per = max(1, x[0].numel())
        budget = 2**20 if self.dtype == torch.float32 else 2**21
        if self.device.type != "cpu":
            budget = 2**24
        return int(max(1, min(64, budget // per)))

    def _bshape(self, x: Tensor, n: int, c: int) -> list[int]:
        ax = self._axis(x)
        return [n] + [c if d == ax else 1 for d in range(1, x.ndim)]

    # ------------------------------------------------------------------ fills
    def _make_fill(self, strategy: str, draw: int, batch: Batch, x: Tensor) -> _Fill:
        ax = self._axis(x)
        c = x.shape[ax]
        if strategy in ("zeros", "ones", "mean"):
            if strategy == "mean":
                vals = torch.zeros(c)
                if self.mean is not None:
                    if self.mean.numel() != c:
                        raise SpecError(
                            f"mean has {self.mean.numel()} values for {c} channels",
                            "mean",
                            "give one normalised mean per input channel",
                        )
                    vals = self.mean.clone()
            else:
                vals = torch.full((c,), 0.0 if strategy == "zeros" else 1.0)
            return _Fill("const", vals.reshape(self._bshape(x, 1, c)).to(x.device, x.dtype))
        if strategy in NOISE_STRATEGIES:
            shape = tuple(x.shape[1:])
            noise = torch.empty((x.shape[0], *shape), dtype=torch.float32)
            for i, sid in enumerate(batch.ids):
                noise[i] = self.noise(strategy, sid, shape, draw)
            return _Fill("tensor", noise.to(x.device, x.dtype))
        # permute: a seeded derangement of the batch
        n = x.shape[0]
        if n < 2:
            return _Fill("nan")
        rng = np.random.default_rng(_stable_seed(self.seed, strategy, draw, *batch.ids))
        order = rng.permutation(n)
        donor = np.empty(n, dtype=np.int64)
        donor[order] = order[(np.arange(n) + 1) % n]
        return _Fill("donor", donor=torch.as_tensor(donor))

    def noise(self, strategy: str, sample_id: str, shape: Sequence[int], draw: int = 0) -> Tensor:
        """The noise fill the engine uses for one sample (to reproduce it, e.g. for Captum)."""
        g = torch.Generator().manual_seed(_stable_seed(self.seed, strategy, draw, sample_id))
        if strategy == "uniform":
            return torch.rand(tuple(shape), generator=g)
        return torch.randn(tuple(shape), generator=g)

    # ------------------------------------------------------------------ evaluation
    def _run(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        assert self._forward is not None
        xin = x.to(self.dtype)
        if self._channels_last:
            xin = xin.contiguous(memory_format=torch.channels_last)
        emb, out = self._forward(xin)
        self.forwards += int(x.shape[0])
        emb = None if emb is None else emb.float()
        out = None if out is None else out.float()
        return emb, out

    def _evaluate(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Chunked evaluation of full inputs."""
        step = _balanced(x.shape[0], self._chunk(x))
        embs, outs = [], []
        for s in range(0, x.shape[0], step):
            e, o = self._run(x[s : s + step])
            embs.append(e)
            outs.append(o)
        emb = torch.cat(embs) if embs[0] is not None else None
        out = torch.cat(outs) if outs[0] is not None else None
        return emb, out

    def _scores(
        self,
        emb: Tensor | None,
        out: Tensor | None,
        rows: Tensor,
        full: tuple[Tensor | None, Tensor | None, Tensor | None],
        batch: Batch,
    ) -> np.ndarray:
        """Scores ``[n, len(metrics)]`` of evaluated inputs of batch rows ``rows``."""
        f_emb, f_out, f_loss = full
        res = np.full((rows.shape[0], len(self.metrics)), np.nan)
        valid = (
            None
            if batch.valid is None
            else batch.valid.to(out.device if out is not None else "cpu")[rows]
        )
        col = 0
        for lv in self.levels:
            if lv == "embedding":
                assert emb is not None and f_emb is not None
                k = len(self.distance_kinds)
                res[:, col : col + k] = distances(f_emb[rows], emb, self.distance_kinds)
                col += k
            elif lv == "output":
                assert out is not None and f_out is not None
                k = len(self.distance_kinds)
                res[:, col : col + k] = distances(f_out[rows], out, self.distance_kinds, valid)
                col += k
            else:
                assert out is not None and f_loss is not None
                tgt = batch.target
                if tgt is None:
                    raise DataError(
                        "level 'loss' needs targets but the batch has none",
                        "levels",
                        "give batches with a 'target' or drop the loss level",
                    )
                occ = self.loss_fn(out, tgt.to(out.device)[rows], valid)
                res[:, col] = (occ.double().cpu() - f_loss[rows].double().cpu()).numpy()
                col += 1
        return res

    def _full(self, batch: Batch, x: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        emb, out = self._evaluate(x)
        loss = None
        if "loss" in self.levels:
            if batch.target is None:
                raise DataError(
                    "level 'loss' needs targets but the batch has none",
                    "levels",
                    "give batches with a 'target' or drop the loss level",
                )
            assert out is not None
            valid = None if batch.valid is None else batch.valid.to(out.device)
            loss = self.loss_fn(out, batch.target.to(out.device), valid).detach()
        return emb, out, loss

    def compute(
        self,
        batch: Batch,
        occluded: np.ndarray,
        scorer: Callable[..., np.ndarray] | None = None,
        n_metrics: int | None = None,
    ) -> np.ndarray:
        """Scores ``[B, F, K, M]`` of batch rows x fills (:meth:`fill_keys`) x occlusion masks.

        ``occluded`` is bool ``[K, G]`` (True = group occluded). ``scorer(emb, out, rows, full,
        batch) -> [n, M]`` replaces the distance scores (``full`` = the unoccluded evaluation).
        """
        x = batch.image.to(self.device)
        self._setup(x)
        ax = self._axis(x)
        c = x.shape[ax]
        gm = self._group_matrix(c)
        occluded = np.asarray(occluded, dtype=bool)
        k_masks = occluded.shape[0]
        cmask = (torch.as_tensor(occluded, dtype=torch.float32) @ gm.float()) > 0  # [K, C]
        all_row = occluded.all(1)
        covers = self._covers_all(c)
        b = x.shape[0]
        keys = self.fill_keys()
        user = scorer is not None
        scorer = scorer or self._scores
        m = n_metrics if n_metrics is not None else len(self.metrics)
        result = np.full((b, len(keys), k_masks, m), np.nan)

        with torch.inference_mode():
            full = self._full_user(batch, x) if user else self._full(batch, x)
            # tasks: (row, fill index, mask index)
            tasks: list[tuple[int, int, int]] = []
            fills: list[_Fill] = []
            for fi, (strategy, draw) in enumerate(keys):
                fill = self._make_fill(strategy, draw, batch, x)
                fills.append(fill)
                if fill.kind == "nan":
                    if strategy == "permute":
                        warnings.warn(
                            "permute needs at least 2 samples in a batch; a batch of one "
                            f"(sample {batch.ids[0]!r}) gets NaN",
                            stacklevel=2,
                        )
                    continue
                for k in range(k_masks):
                    if all_row[k] and covers and fill.kind == "const":
                        key = (strategy, tuple(x.shape[1:]), str(x.dtype))
                        if self.mean is not None and strategy == "mean":
                            key = (*key, tuple(self.mean.tolist()))
                        cached = self._all_cache.get(key)
                        if cached is None:
                            single = torch.where(
                                cmask[k].reshape(self._bshape(x, 1, c)), fill.value, x[:1]
                            )
                            cached = self._run(single)
                            self._all_cache[key] = cached
                        rows = torch.arange(b)
                        e = None if cached[0] is None else cached[0].expand(b, *cached[0].shape[1:])
                        o = None if cached[1] is None else cached[1].expand(b, *cached[1].shape[1:])
                        result[:, fi, k] = scorer(e, o, rows, full, batch)
                        continue
                    if all_row[k] and covers and fill.kind == "donor":
                        assert fill.donor is not None
                        rows = torch.arange(b)
                        d = fill.donor
                        e = None if full[0] is None else full[0][d]
                        o = None if full[1] is None else full[1][d]
                        result[:, fi, k] = scorer(e, o, rows, full, batch)
                        continue
                    tasks.extend((i, fi, k) for i in range(b))

            step = _balanced(len(tasks), self._chunk(x))
            for s in range(0, len(tasks), step):
                chunk = tasks[s : s + step]
                xc = self._build(x, chunk, fills, cmask, ax, c)
                e, o = self._run(xc)
                rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
                sc = scorer(e, o, rows, full, batch)
                for j, (i, fi, k) in enumerate(chunk):
                    result[i, fi, k] = sc[j]
        return result

    def _full_user(self, batch: Batch, x: Tensor) -> tuple[Tensor | None, Tensor | None, Any]:
        emb, out = self._evaluate(x)
        return emb, out, None

    def _build(
        self,
        x: Tensor,
        chunk: Sequence[tuple[int, int, int]],
        fills: Sequence[_Fill],
        cmask: Tensor,
        ax: int,
        c: int,
    ) -> Tensor:
        n = len(chunk)
        buf = torch.empty((n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        by_fill: dict[int, list[int]] = {}
        for j, (_, fi, _) in enumerate(chunk):
            by_fill.setdefault(fi, []).append(j)
        for fi, pos in by_fill.items():
            rows = torch.as_tensor([chunk[j][0] for j in pos], dtype=torch.long, device=x.device)
            masks = torch.as_tensor([chunk[j][2] for j in pos], dtype=torch.long)
            cm = cmask[masks].reshape(self._bshape(x, len(pos), c)).to(x.device)
            fill = fills[fi]
            if fill.kind == "const":
                val = fill.value
            elif fill.kind == "tensor":
                assert fill.value is not None
                val = fill.value[rows]
            else:
                assert fill.donor is not None
                val = x[fill.donor.to(x.device)[rows]]
            p = torch.as_tensor(pos, dtype=torch.long, device=x.device)
            buf[p] = torch.where(cm, val, x[rows])
        return buf

    # ------------------------------------------------------------------ occlusion rows
    def _occlusion_masks(self) -> tuple[np.ndarray, list[str]]:
        g = len(self.group_names)
        masks = list(np.eye(g, dtype=bool))
        names = list(self.group_names)
        if self.include_all:
            masks.append(np.ones(g, dtype=bool))
            names.append(ALL)
        return np.stack(masks), names

    def score_batch(
        self,
        batch: Any,
        shapley: bool | str = False,
        permutations: int = 64,
        interactions: bool = True,
        max_players: int = MAX_EXACT_PLAYERS,
    ) -> pd.DataFrame:
        """Long-form scores of one batch (see the module docstring); with ``shapley``
        (``True``/``"auto"``: exact up to 10 groups, else sampled; ``"exact"``; ``"sampled"``)
        Shapley values (and exact pairwise interactions) are added from the same forwards."""
        batch = as_batch(batch)
        occ, names = self._occlusion_masks()
        g = len(self.group_names)
        sh_method = _shapley_method(shapley, g, max_players)
        extra: np.ndarray | None = None
        orders = prefixes = None
        if sh_method == "exact":
            present = coalition_masks(g)[:-1]  # all but the full coalition
            extra = ~present
        elif sh_method == "sampled":
            orders, prefixes = permutation_masks(g, permutations, self.seed)
            flat = prefixes.reshape(-1, g)
            extra = ~flat[~flat.all(1)]
        all_masks = occ if extra is None else np.concatenate([occ, extra])
        uniq_masks, inverse = unique_masks(all_masks)
        scores = self.compute(batch, uniq_masks)  # [B, F, U, M]
        keys = self.fill_keys()
        frames = [self._rows(batch, keys, names, scores[:, :, inverse[: len(names)]], "occlusion")]
        if sh_method is not None:
            lookup = {m.tobytes(): i for i, m in enumerate(uniq_masks)}
            frames.extend(
                self._shapley_rows(
                    batch, keys, scores, lookup, sh_method, orders, prefixes, interactions
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _rows(
        self,
        batch: Batch,
        keys: Sequence[tuple[str, int]],
        groups: Sequence[str],
        values: np.ndarray,
        method: str,
    ) -> pd.DataFrame:
        """Long rows from ``values[B, F, G, M]``."""
        b, f, g, m = values.shape
        grid = np.indices((b, f, g, m)).reshape(4, -1)
        bi, fi, gi, mi = grid
        levels = np.array([lv for lv, _ in self.metrics], dtype=object)
        dists = np.array([d for _, d in self.metrics], dtype=object)
        strat = np.array([s for s, _ in keys], dtype=object)
        draw = np.array([d for _, d in keys], dtype=np.int64)
        return pd.DataFrame(
            {
                "sample_id": np.array(batch.ids, dtype=object)[bi],
                "window": np.array(batch.windows, dtype=object)[bi],
                "method": method,
                "level": levels[mi],
                "distance": dists[mi],
                "strategy": strat[fi],
                "group": np.array(list(groups), dtype=object)[gi],
                "draw": draw[fi],
                "value": values.reshape(-1).astype(np.float64),
            },
            columns=COLUMNS,
        )

    def _shapley_rows(
        self,
        batch: Batch,
        keys: Sequence[tuple[str, int]],
        scores: np.ndarray,
        lookup: Mapping[bytes, int],
        method: str,
        orders: np.ndarray | None,
        prefixes: np.ndarray | None,
        interactions: bool,
    ) -> list[pd.DataFrame]:
        g = len(self.group_names)

        def v_of(present: np.ndarray) -> np.ndarray:  # -> [B, F, M]
            occ = ~present
            if not occ.any():
                return np.zeros((scores.shape[0], scores.shape[1], scores.shape[3]))
            return -scores[:, :, lookup[occ.tobytes()]]

        if method == "exact":
            table = np.stack([v_of(p) for p in coalition_masks(g)], axis=-1)  # [B,F,M,2^g]
            phi = shapley_from_table(table)  # [B,F,M,g]
            out = [self._rows(batch, keys, self.group_names, phi.transpose(0, 1, 3, 2), "shapley")]
            if interactions and g >= 2:
                inter = interactions_from_table(table)  # [B,F,M,g,g]
                iu, ju = np.triu_indices(g, 1)
                vals = inter[..., iu, ju]  # [B,F,M,P]
                gn = self.group_names
                names = [f"{gn[i]}&{gn[j]}" for i, j in zip(iu, ju, strict=True)]
                out.append(
                    self._rows(batch, keys, names, vals.transpose(0, 1, 3, 2), "interaction")
                )
            return out
        assert orders is not None and prefixes is not None
        p = orders.shape[0]
        pv = np.stack(
            [np.stack([v_of(prefixes[r, k]) for k in range(g + 1)], -1) for r in range(p)], -2
        )  # [B,F,M,P,g+1]
        phi, _ = shapley_from_permutations(orders, pv)
        return [self._rows(batch, keys, self.group_names, phi.transpose(0, 1, 3, 2), "shapley")]

    # ------------------------------------------------------------------ Shapley API
    def shapley(
        self,
        x: Any,
        method: str = "exact",
        permutations: int = 64,
        interactions: bool = True,
        max_players: int = MAX_EXACT_PLAYERS,
        value_fn: Callable[[Evaluation, Evaluation], Tensor] | None = None,
    ) -> ShapleyResult:
        """Shapley values ``[B, G]`` of one batch for the first strategy/metric (draws
        averaged); ``value_fn(occluded, full) -> [n]`` replaces ``v(S) = -score``."""
        batch = as_batch(x)
        g = len(self.group_names)
        method = _shapley_method(method, g, max_players) or "exact"
        if method == "exact":
            present = coalition_masks(g)
        else:
            orders, prefixes = permutation_masks(g, permutations, self.seed)
            present = np.unique(prefixes.reshape(-1, g), axis=0)
        occluded = ~present
        need = occluded.any(1)
        scorer = None
        if value_fn is not None:
            scorer = self._user_scorer(value_fn)
        vals = self.compute(batch, occluded[need], scorer=scorer, n_metrics=1 if scorer else None)
        first = [i for i, (s, _) in enumerate(self.fill_keys()) if s == self.strategies[0]]
        vals = np.nanmean(vals[..., 0][:, first], axis=1)
        table = np.zeros((vals.shape[0], present.shape[0]))
        if value_fn is None:
            table[:, need] = -vals
        else:
            table[:, need] = vals
            table[:, ~need] = self._user_full_value(batch, value_fn)[:, None]
        if method == "exact":
            phi = shapley_from_table(table)
            inter = interactions_from_table(table) if interactions else None
            return ShapleyResult(self.group_names, phi, inter, table, np.zeros_like(phi))
        lookup = {m.tobytes(): i for i, m in enumerate(present)}
        idx = np.array(
            [
                [lookup[prefixes[r, k].tobytes()] for k in range(g + 1)]
                for r in range(orders.shape[0])
            ]
        )
        phi, se = shapley_from_permutations(orders, table[:, idx])
        return ShapleyResult(
            self.group_names, phi, None, None, se, "sampled", {"permutations": int(orders.shape[0])}
        )

    def _user_scorer(self, value_fn: Callable[[Evaluation, Evaluation], Tensor]) -> Callable:
        def scorer(emb, out, rows, full, batch):  # noqa: ANN001, ANN202
            occ = Evaluation(
                emb,
                out,
                rows,
                None if batch.target is None else batch.target[rows],
                None if batch.valid is None else batch.valid[rows],
            )
            ref = Evaluation(
                None if full[0] is None else full[0][rows],
                None if full[1] is None else full[1][rows],
                rows,
                occ.target,
                occ.valid,
            )
            v = torch.as_tensor(value_fn(occ, ref)).double().reshape(-1).cpu().numpy()
            return v[:, None]

        return scorer

    def _user_full_value(self, batch: Batch, value_fn: Callable) -> np.ndarray:
        x = batch.image.to(self.device)
        self._setup(x)
        with torch.inference_mode():
            emb, out = self._evaluate(x)
            rows = torch.arange(x.shape[0])
            ev = Evaluation(emb, out, rows, batch.target, batch.valid)
            return torch.as_tensor(value_fn(ev, ev)).double().reshape(-1).cpu().numpy()

    # ------------------------------------------------------------------ maps
    def map_fn(
        self, strategy: str | None = None, reduce: str = "mean"
    ) -> Callable[[Tensor], Tensor]:
        """``fn(x [B,C,h,w]) -> [B,G,h,w]``: per pixel ``|prediction - occluded prediction|``
        per group (``reduce`` over output channels: ``mean`` or ``max``), for
        :func:`modalens.inference.sliding_window`. All occlusions of a call go through
        chunked batched forwards. Noise comes from a generator seeded once, so a fixed tiling
        is reproducible."""
        strategy = strategy or self.strategies[0]
        _check_choice([strategy], STRATEGIES, "strategy")
        if strategy == "permute":
            raise SpecError(
                "permute has no meaning for single scenes",
                "--strategy",
                "use zeros, ones, uniform, gaussian or mean",
            )
        gen = torch.Generator().manual_seed(_stable_seed(self.seed, "map", strategy))

        def fn(x: Tensor) -> Tensor:
            x = x.to(self.device).float()
            self._setup(x)
            assert self._forward is not None
            saved = self._forward.need_output
            self._forward.need_output = True  # a hook must not cut the forward short
            try:
                with torch.inference_mode():
                    return self._map(x, strategy, gen, reduce)
            finally:
                self._forward.need_output = saved

        return fn

    def _map(self, x: Tensor, strategy: str, gen: torch.Generator, reduce: str) -> Tensor:
        ax = self._axis(x)
        c = x.shape[ax]
        gm = self._group_matrix(c)
        b, g = x.shape[0], len(self.group_names)
        if strategy in NOISE_STRATEGIES:
            draw = torch.rand if strategy == "uniform" else torch.randn
            fill = draw(tuple(x.shape), generator=gen).to(x.device)
        else:
            batch = Batch(x, None, None, [""] * b, [""] * b)
            f = self._make_fill(strategy, 0, batch, x)
            assert f.value is not None
            fill = f.value.expand_as(x)
        step = self._chunk(x)
        pred = torch.cat([self._predict(x[s : s + step]) for s in range(0, b, step)])
        tasks = [(i, gi) for gi in range(g) for i in range(b)]
        out = torch.empty((b, g, *pred.shape[2:]), dtype=torch.float32)
        for s in range(0, len(tasks), step):
            chunk = tasks[s : s + step]
            rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
            gis = torch.as_tensor([t[1] for t in chunk], dtype=torch.long)
            cm = gm[gis].reshape(self._bshape(x, len(chunk), c)).to(x.device)
            occ = torch.where(cm, fill[rows], x[rows])
            d = (pred[rows] - self._predict(occ)).abs()
            d = d.mean(1) if reduce == "mean" else d.amax(1)
            out[rows, gis] = d.cpu()
        return out

    def _predict(self, x: Tensor) -> Tensor:
        assert self._forward is not None
        _, out = self._forward(self._cast(x))
        assert out is not None
        self.forwards += int(x.shape[0])
        return out.float()

    def _cast(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _balanced(n: int, budget: int) -> int:
    """Chunk length <= ``budget`` splitting ``n`` items into equal-sized chunks."""
    if n <= 0:
        return max(1, budget)
    chunks = -(-n // max(1, budget))
    return -(-n // chunks)


def _shapley_method(shapley: bool | str | None, g: int, max_players: int) -> str | None:
    if shapley in (False, None, "", "none", "off"):
        return None
    if shapley in (True, "auto"):
        return "exact" if g <= min(AUTO_SHAPLEY_EXACT_MAX, max_players) else "sampled"
    if shapley == "exact":
        _check_exact(g, max_players)
        return "exact"
    if shapley == "sampled":
        return "sampled"
    raise SpecError(
        f"unknown Shapley method {shapley!r}", "--shapley", "use exact, sampled or auto"
    )


def occlusion_map_fn(
    model: nn.Module,
    groups: Groups,
    strategy: str = "zeros",
    *,
    channel_axis: int = 1,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    precision: str = "fp32",
    optimize: bool = True,
    input_fn: Callable[[Tensor], Tensor] | None = None,
) -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.inference.sliding_window` with one output channel
    per group: per pixel ``|prediction - prediction with the group occluded|`` (averaged
    over output channels). ``input_fn`` prepares raw tiles (e.g. masking) first."""
    engine = OcclusionEngine(
        model,
        groups,
        strategies=(strategy,),
        levels=("output",),
        channel_axis=channel_axis,
        seed=seed,
        mean=mean,
        precision=precision,
        optimize=optimize,
    )
    fn = engine.map_fn(strategy)
    if input_fn is None:
        return fn
    return lambda x: fn(input_fn(x))


# ============================================================================ streaming
class _PartStore:
    """One parquet part per batch in ``out/parts``; resumable; assembled at the end."""

    def __init__(self, out: Path, config: Mapping[str, Any], resume: bool = True) -> None:
        self.out = Path(out)
        self.parts = self.out / "parts"
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ModalensError(
                "the output folder is a file (or lies below one)",
                str(self.out),
                "pass a folder path to --out/out, or move that file away",
            ) from None
        cfg_path = self.parts / "config.json"
        cfg = json.loads(json.dumps(config, default=str))
        existing = sorted(self.parts.glob("part-*.parquet"))
        if cfg_path.exists() and existing:
            old = json.loads(cfg_path.read_text())
            if old != cfg and resume:
                diff = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
                raise ModalensError(
                    f"{self.parts} holds scores of another configuration (differs in "
                    f"{', '.join(diff)})",
                    str(cfg_path),
                    "use another --out folder or delete its parts/ to start over",
                )
        if not resume:
            for p in existing:
                p.unlink()
            existing = []
        atomic_write_json(cfg_path, cfg)
        self.done: set[str] = set()
        for p in existing:
            ids = pd.read_parquet(p, columns=["sample_id"])["sample_id"]
            self.done.update(ids.astype(str).unique().tolist())

    def write(self, index: int, df: pd.DataFrame) -> Path:
        path = self.parts / f"part-{index:06d}.parquet"
        k = 1
        while path.exists():
            path = self.parts / f"part-{index:06d}-{k}.parquet"
            k += 1
        write_parquet(df, path)
        self.done.update(df["sample_id"].astype(str).unique().tolist())
        return path

    def assemble(self, ids: Iterable[str] | None = None) -> pd.DataFrame:
        """All parts (only the rows of ``ids`` when given) -> ``out/scores.parquet``."""
        files = sorted(self.parts.glob("part-*.parquet"))
        if files:
            df = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
            if ids is not None:
                keep = df["sample_id"].astype(str).isin(set(ids))
                df = df[keep].reset_index(drop=True)
        else:
            df = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        write_parquet(df, self.out / "scores.parquet")
        return df


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as parquet atomically."""
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def attribute(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups,
    *,
    strategies: str | Sequence[str] = ("zeros",),
    distances: str | Sequence[str] = ("euclidean",),
    levels: str | Sequence[str] = ("embedding",),
    embedding: Any = "auto",
    channel_axis: int = 1,
    draws: int = 1,
    seed: int = 0,
    mean: Sequence[float] | Tensor | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    shapley: bool | str = False,
    permutations: int = 64,
    interactions: bool = True,
    precision: str = "fp32",
    optimize: bool = True,
    chunk_size: int | None = None,
    include_all: bool = True,
    input_fn: Callable[[Batch], Batch] | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    on_batch: Callable[[int, pd.DataFrame], None] | None = None,
    progress: bool = False,
    engine: OcclusionEngine | None = None,
    resume_config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Occlusion scores (and Shapley values) of ``model`` over an iterable of batches.

    ``batches`` yields dicts (``image``, optional ``target``, ``valid``, ``id``, ``window``),
    tensors, ``(image, target)`` tuples or :class:`LazyBatch`. ``input_fn(batch) -> batch``
    prepares each batch (e.g. masks invalid input pixels). With ``out`` every batch's rows are
    written to ``out/parts`` atomically and ``on_batch(index, rows)`` is called; a rerun
    (``resume=True``) skips samples already written (a config change is refused;
    ``resume=False`` deletes the parts and starts over) and ``out/scores.parquet`` holds
    the rows of the samples of ``batches`` at the end (``resume_config`` adds entries, e.g. the
    split, to the configuration a rerun must match). Returns the long-form DataFrame.
    See :class:`OcclusionEngine` for the other arguments.
    """
    eng = engine or OcclusionEngine(
        model,
        groups,
        strategies=strategies,
        distances=distances,
        levels=levels,
        embedding=embedding,
        channel_axis=channel_axis,
        draws=draws,
        seed=seed,
        mean=mean,
        loss_fn=loss_fn,
        precision=precision,
        optimize=optimize,
        chunk_size=chunk_size,
        include_all=include_all,
    )
    store = None
    if out is not None:
        cfg = eng.config()
        cfg["shapley"] = str(shapley)
        cfg["permutations"] = int(permutations) if shapley else None
        cfg.update(resume_config or {})
        store = _PartStore(Path(out), cfg, resume)
    done = store.done if store is not None else set()
    frames: list[pd.DataFrame] = []
    it: Iterable[Any] = batches
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        bar = tqdm(total=total, desc="attribute", unit="batch")
    seen = 0
    seen_ids: list[str] = []
    try:
        for index, raw in enumerate(it):
            lazy = isinstance(raw, LazyBatch)
            if lazy:
                seen_ids.extend(str(i) for i in raw.ids)
                if all(i in done for i in raw.ids):
                    seen += len(raw.ids)
                    if bar is not None:
                        bar.update(1)
                    continue
                raw = raw.load()
            batch = as_batch(raw, start=seen)
            if not lazy:
                seen_ids.extend(str(i) for i in batch.ids)
            seen += len(batch.ids)
            keep = [i for i, sid in enumerate(batch.ids) if sid not in done]
            if not keep:
                if bar is not None:
                    bar.update(1)
                continue
            if len(keep) < len(batch.ids):
                batch = batch.subset(keep)
            if input_fn is not None:
                batch = input_fn(batch)
            rows = eng.score_batch(
                batch, shapley=shapley, permutations=permutations, interactions=interactions
            )
            if store is not None:
                store.write(index, rows)
            else:
                frames.append(rows)
            if on_batch is not None:
                on_batch(index, rows)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if store is not None:
        return store.assemble(seen_ids)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)


# ============================================================================ run level
def _run_mean(run: Any) -> list[float] | None:
    """Per-channel train means in normalised space from a run's statistics (best effort)."""
    try:
        from .data import normalize

        raw = run.stats.get("modalities", run.stats) if isinstance(run.stats, Mapping) else {}
        vals: list[float] = []
        for m in run.spec.modalities:
            entry = raw.get(m.name) if isinstance(raw, Mapping) else None
            if m.normalization.type == "onehot":
                freq = (entry or {}).get("class_frequencies") or (entry or {}).get("frequencies")
                if freq is None:
                    return None
                if isinstance(freq, Mapping):
                    freq = [freq.get(str(c), freq.get(c, 0.0)) for c in m.classes or ()]
                vals.extend(float(f) for f in freq)
                continue
            mean = (entry or {}).get("mean")
            if mean is None:
                return None
            arr = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
            vals.extend(np.asarray(normalize(m, arr)).reshape(-1).astype(float).tolist())
        return vals if len(vals) == run.spec.n_channels else None
    except Exception:  # noqa: BLE001 - statistics are optional for this strategy
        return None


def _lazy_batches(dataset: Any, batch_size: int) -> list[LazyBatch]:
    """Batches of ``dataset`` in order whose items are read only when needed."""
    from .training import collate

    ids = [str(i) for i in getattr(dataset, "ids", range(len(dataset)))]

    def load(idx: list[int]) -> dict[str, Any]:
        return collate([dataset[i] for i in idx])

    batches = []
    for s in range(0, len(dataset), max(1, batch_size)):
        idx = list(range(s, min(s + batch_size, len(dataset))))
        batches.append(LazyBatch([ids[i] for i in idx], lambda idx=idx: load(idx)))
    return batches


def _groups_for(spec: Any, groups: Any) -> dict[str, list[int]]:
    from .modalities import groups_from_spec

    if isinstance(groups, str):
        return groups_from_spec(spec, groups)
    return normalize_groups(groups, spec.n_channels)


def attribute_run(
    run_dir: str | Path,
    split: str = "test",
    strategies: str | Sequence[str] = PAPER_STRATEGIES,
    distances: str | Sequence[str] = ("euclidean",),
    levels: str | Sequence[str] = ("embedding",),
    shapley: bool | str = False,
    groups: str | Groups = "modalities",
    out: str | Path | None = None,
    batch_size: int = 8,
    progress: bool = True,
    *,
    draws: int = 1,
    seed: int = 0,
    precision: str = "fp32",
    permutations: int = 64,
    ids: Sequence[str] | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    chunk_size: int | None = None,
    resume: bool = True,
    figure: bool = True,
    on_batch: Callable[[int, pd.DataFrame], None] | None = None,
    data_root: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attribute a trained run on a split: writes ``OUT/scores.parquet`` (long form),
    ``OUT/summary.csv`` (dataset level, :func:`modalens.aggregation.summarize`) and, with
    ``figure``, ``OUT/influence.png``; returns ``(scores, summary)``.

    ``out`` defaults to ``RUN/attribution/<split>``. The crops are the run's deterministic
    evaluation crops; inputs are masked as in training. Reruns resume (see :func:`attribute`).
    ``data_root`` points the run's spec at another copy of the data.
    """
    from .aggregation import format_summary, summarize
    from .training import load_run

    if int(batch_size) < 1:
        raise SpecError(
            f"batch size must be at least 1, got {batch_size}",
            "batch_size",
            "pass a positive batch size, e.g. --batch-size 8",
        )
    run = load_run(run_dir, data_root=data_root)
    out = Path(out) if out is not None else Path(run_dir) / "attribution" / split
    grp = _groups_for(run.spec, groups)
    strategies_l = _as_list(strategies, PAPER_STRATEGIES)
    levels_l = _as_list(levels, ("embedding",))
    mean = None
    if "mean" in strategies_l:
        mean = _run_mean(run)
        if mean is None:
            warnings.warn("no train statistics for the mean strategy; filling with 0", stacklevel=2)
    if loss_fn is None and "loss" in levels_l:
        loss_fn = task_loss(run.task, getattr(run.module, "loss_name", None))
    dataset = run.dataset(split, ids=ids)
    requested = [str(i) for i in getattr(dataset, "ids", range(len(dataset)))]
    ids_hash = hashlib.sha256("\n".join(requested).encode()).hexdigest()[:16]
    mask_inputs = bool(getattr(getattr(run.module, "hparams", {}), "mask_invalid_inputs", True))

    def prepare(batch: Batch) -> Batch:
        if mask_inputs and batch.valid is not None and batch.image.ndim == 4:
            img = torch.where(
                batch.valid[:, None], batch.image, torch.zeros((), dtype=batch.image.dtype)
            )
            return Batch(img, batch.target, batch.valid, batch.ids, batch.windows)
        return batch

    scores = attribute(
        run.model,
        _lazy_batches(dataset, batch_size),
        grp,
        strategies=strategies_l,
        distances=distances,
        levels=levels_l,
        draws=draws,
        seed=seed,
        mean=mean,
        loss_fn=loss_fn,
        shapley=shapley,
        permutations=permutations,
        precision=precision,
        chunk_size=chunk_size,
        input_fn=prepare,
        out=out,
        resume=resume,
        on_batch=on_batch,
        progress=progress,
        resume_config={"split": split, "ids": ids_hash},
    )
    summary = summarize(scores, seed=seed)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    atomic_write_text(out / "summary.txt", format_summary(summary) + "\n")
    if figure and len(summary):
        from .figures import influence_bar_chart

        try:
            influence_bar_chart(summary, out / "influence.png")
        except ModalensError:
            pass
    return scores, summary


def occlusion_maps(
    run_dir: str | Path,
    ids: Sequence[str] | None = None,
    out: str | Path | None = None,
    *,
    split: str = "test",
    strategy: str = "zeros",
    groups: str | Groups = "modalities",
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    seed: int = 0,
    precision: str = "fp32",
    preview: bool = True,
    progress: bool = False,
    data_root: str | Path | None = None,
) -> list[Path]:
    """Spatial occlusion sensitivity maps of whole scenes: per group and pixel
    ``|prediction - prediction with the group occluded|``, by sliding window (memory bounded by
    the tile), written as one georeferenced float32 GeoTIFF per scene (one band per group,
    NaN where the scene is invalid) plus a PNG preview per group. Returns the files written.

    ``ids`` default to the ``split``'s ids; ``out`` to ``RUN/occlusion_maps``; ``data_root``
    points the run's spec at another copy of the data.
    """
    from .figures import occlusion_map_preview
    from .inference import sliding_window
    from .rasters import write_geotiff
    from .training import load_run

    run = load_run(run_dir, data_root=data_root)
    out = Path(out) if out is not None else Path(run_dir) / "occlusion_maps"
    grp = _groups_for(run.spec, groups)
    mean = _run_mean(run) if strategy == "mean" else None
    fn = occlusion_map_fn(run.model, grp, strategy, seed=seed, mean=mean, precision=precision)
    reader = run.reader()
    if ids is None:
        from .data import sample_ids

        ids = sample_ids(run.spec)[split]
    written: list[Path] = []
    names = list(grp)
    for sid in ids:
        arr, valid = sliding_window(
            fn,
            reader,
            str(sid),
            tile=tile,
            overlap=overlap,
            out_channels=len(names),
            batch_size=batch_size,
            progress=progress,
            multiple=run.model.downsampling,
            return_valid=True,
            fill=float("nan"),
        )
        grid = reader.grid(str(sid))
        path = out / f"{sid}_occlusion_{strategy}.tif"
        write_geotiff(
            path,
            arr.astype(np.float32),
            grid.crs,
            grid.transform,
            nodata=float("nan"),
            band_names=names,
            tags={"strategy": strategy, "groups": ",".join(names)},
        )
        written.append(path)
        if preview:
            for gi, name in enumerate(names):
                png = out / f"{sid}_occlusion_{strategy}_{name}.png"
                occlusion_map_preview(arr[gi], png, title=f"{sid}: {name} ({strategy})")
                written.append(png)
    return written


# ============================================================================ bf16 agreement
def precision_agreement(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups,
    **options: Any,
) -> dict[str, Any]:
    """How far bf16 scores are from fp32 on the same data: runs :func:`attribute` in both
    precisions and returns ``max_rel_error`` / ``median_rel_error`` of the occlusion scores,
    ``dataset_rank_agreement`` (share of (level, distance, strategy) blocks whose
    dataset-level group ranking is identical), ``sample_top1_agreement`` (share of samples x
    blocks with the same most influential group) and the two score tables."""
    from .aggregation import summarize

    batches = list(batches)
    options = {k: v for k, v in options.items() if k not in ("precision", "out")}
    a = attribute(model, batches, groups, precision="fp32", **options)
    b = attribute(model, batches, groups, precision="bf16", **options)
    keys = ["sample_id", "method", "level", "distance", "strategy", "group", "draw"]
    m = a.merge(b, on=keys, suffixes=("_fp32", "_bf16"))
    m = m[m["method"] == "occlusion"]
    rel = (m["value_bf16"] - m["value_fp32"]).abs() / m["value_fp32"].abs().clip(lower=1e-12)
    block = ["method", "level", "distance", "strategy"]
    sa, sb = summarize(a, n_boot=0), summarize(b, n_boot=0)
    sm = sa.merge(sb, on=[*block, "group"], suffixes=("_fp32", "_bf16"))
    sm = sm[(sm["group"] != ALL) & (sm["method"] == "occlusion")]
    agree = [
        bool(np.array_equal(g["rank_fp32"].to_numpy(), g["rank_bf16"].to_numpy()))
        for _, g in sm.groupby(block)
    ]
    ms = m[m["group"] != ALL]
    per = [*block, "sample_id", "draw"]
    top_a = ms.loc[ms.groupby(per)["value_fp32"].idxmax(), "group"].to_numpy()
    top_b = ms.loc[ms.groupby(per)["value_bf16"].idxmax(), "group"].to_numpy()
    top1 = float(np.mean(top_a == top_b)) if len(top_a) else math.nan
    return {
        "max_rel_error": float(rel.max()) if len(rel) else math.nan,
        "median_rel_error": float(rel.median()) if len(rel) else math.nan,
        "dataset_rank_agreement": float(np.mean(agree)) if agree else math.nan,
        "sample_top1_agreement": top1,
        "fp32": a,
        "bf16": b,
    }
