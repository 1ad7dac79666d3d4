"""Batches as the engine sees them: normalised inputs with ids, windows, targets and masks.

:func:`as_batch` reads what users and loaders yield (dicts with ``image``/``target``/``valid``/
``id``/``window``, plain tensors, ``(image, target[, valid])`` tuples) into a :class:`Batch`;
missing ids become running indices, crop windows become ``"row,col,height,width"`` strings.
:class:`LazyBatch` knows its sample ids before its data are read, so a resumed attribution
skips finished samples without reading them (:func:`~.run.lazy_batches` makes them from a
dataset).
:class:`Evaluation` is the model evaluation of some inputs as levels and user value functions
see it; :class:`Unoccluded` is that of a batch's full inputs with the levels' references.
:func:`mask_inputs` prepares inputs as training does: zero at invalid pixels and at
non-finite values (the API and the run-level path share it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError
from ..tasks.losses import broadcast_mask


def _window_str(w: Any) -> str:
    if w is None:
        return ""
    if isinstance(w, str):
        return w
    if isinstance(w, Tensor):
        w = w.tolist()
    return ",".join(str(int(v)) for v in w)


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
        """The rows ``keep`` of this batch."""
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
    if isinstance(image, Mapping):
        raise DataError(
            "the batch's image is a dict of modality tensors",
            "batches",
            "pass dict batches to attribute() or modality_shapley(), which pack them",
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


def mask_inputs(batch: Batch, use_valid: bool = True) -> tuple[Batch, int]:
    """The batch's inputs made safe for the model, and how many unexpected NaN/inf values
    were replaced.

    NaN and inf input values are set to 0 (the normalised train mean) everywhere, so they
    never reach the model; with ``use_valid`` (the training option ``mask_invalid_inputs``)
    the image is also zeroed where ``valid`` is False, as training does.

    Args:
        batch: a normalised batch.
        use_valid: zero the input at invalid pixels (when the image ends in ``valid``'s
            spatial shape).

    Returns:
        ``(batch, n_unexpected)``: the masked batch and the count of non-finite values at
        pixels ``valid`` does not mark invalid (all of them without ``valid``).
    """
    img = batch.image
    zero = torch.zeros((), dtype=img.dtype, device=img.device)
    v = batch.valid
    mask = broadcast_mask(v, img) if v is not None else None
    if mask is not None:
        mask = mask.to(img.device)
    if use_valid and mask is not None:
        img = torch.where(mask, img, zero)
    bad = ~torch.isfinite(img)
    if not bool(bad.any()):
        if img is batch.image:
            return batch, 0
        return Batch(img, batch.target, batch.valid, batch.ids, batch.windows), 0
    n_bad = int((bad & mask).sum()) if mask is not None else int(bad.sum())
    img = torch.where(bad, zero, img)
    return Batch(img, batch.target, batch.valid, batch.ids, batch.windows), n_bad


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


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class Unoccluded:
    """The evaluation of a batch's unoccluded inputs (``sample`` = every row; ``target`` and
    ``valid`` set, on the output's device, when a level has a reference) and each level's
    reference ``[B]`` by level name (None for levels without one)."""

    evaluation: Evaluation
    references: Mapping[str, Tensor | None]
