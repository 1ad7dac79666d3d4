"""Distances between the full and the occluded evaluation, one registered function each.

Every distance is computed per sample over the flattened tensor in float64: ``euclidean`` (the
paper's, default), ``cosine`` (1 - cosine similarity), ``relative`` (euclidean / norm of the
full input's embedding or prediction), and two extras: ``mae`` (mean absolute difference) and
``delta`` (signed mean of full - occluded: the direction of an output change).

A distance is a function ``fn(full, occluded, count) -> [n]`` registered with
:func:`register_distance`: ``full`` and ``occluded`` are float64 ``[n, d]`` with the invalid
elements already set to 0 in both, ``count`` float64 ``[n]`` the number of valid elements per
row. :func:`distances` computes several at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..tasks.losses import broadcast_mask
from .registry import Registry

#: ``fn(full [n, d], occluded [n, d], count [n]) -> [n]``, all float64
DistanceFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Distance:
    """A registered distance: its function and help line."""

    name: str
    fn: DistanceFn
    help: str


DISTANCES: Registry[Distance] = Registry("distance", "distances", "--distance")


def register_distance(name: str, *, help: str) -> Callable[[DistanceFn], DistanceFn]:
    """Decorator registering ``fn(full, occluded, count) -> [n]`` as distance ``name``.

    Args:
        name: the name given to ``distances=`` / ``--distance``.
        help: one line for ``--help``.

    Returns:
        The decorator (it returns the function unchanged).

    Raises:
        SpecError: the name is taken or malformed.
    """

    def decorate(fn: DistanceFn) -> DistanceFn:
        DISTANCES.add(Distance(name, fn, help))
        return fn

    return decorate


@register_distance("euclidean", help="L2 norm of the difference (paper)")
def euclidean(full: Tensor, occluded: Tensor, count: Tensor) -> Tensor:
    """``||full - occluded||``."""
    return torch.linalg.vector_norm(full - occluded, dim=1)


@register_distance("cosine", help="1 - cosine similarity")
def cosine(full: Tensor, occluded: Tensor, count: Tensor) -> Tensor:
    """``1 - <full, occluded> / (||full|| ||occluded||)``."""
    na = torch.linalg.vector_norm(full, dim=1)
    nb = torch.linalg.vector_norm(occluded, dim=1)
    return 1.0 - (full * occluded).sum(1) / (na * nb)


@register_distance("relative", help="euclidean / norm of the full input's evaluation")
def relative(full: Tensor, occluded: Tensor, count: Tensor) -> Tensor:
    """``||full - occluded|| / ||full||``."""
    return torch.linalg.vector_norm(full - occluded, dim=1) / torch.linalg.vector_norm(full, dim=1)


@register_distance("mae", help="mean absolute difference")
def mae(full: Tensor, occluded: Tensor, count: Tensor) -> Tensor:
    """Mean of ``|full - occluded|`` over the valid elements."""
    return (full - occluded).abs().sum(1) / count


@register_distance("delta", help="signed mean of full - occluded")
def delta(full: Tensor, occluded: Tensor, count: Tensor) -> Tensor:
    """Mean of ``full - occluded`` over the valid elements (the direction of a change)."""
    return (full - occluded).sum(1) / count


def distances(
    full: Tensor, occluded: Tensor, kinds: Sequence[str], valid: Tensor | None = None
) -> np.ndarray:
    """Per-row distances between ``full`` and ``occluded`` ``[n, ...]``.

    Args:
        full: the evaluation of the full inputs.
        occluded: the evaluation of the occluded inputs (same shape).
        kinds: registered distance names.
        valid: optional mask ``[n, *S]`` broadcast over the leading axes of ``full``; only
            the elements where it is True count.

    Returns:
        float64 ``[n, len(kinds)]``; NaN for rows without a valid element.

    Raises:
        SpecError: an unknown distance name.
    """
    fns = [DISTANCES.get(k).fn for k in kinds]
    a = full.detach().to(torch.float64).flatten(1)
    b = occluded.detach().to(torch.float64).flatten(1)
    m = None if valid is None else broadcast_mask(valid, full)
    if m is not None:
        mf = m.expand(full.shape).reshape(full.shape[0], -1).to(torch.float64)
        a = a * mf
        b = b * mf
        count = mf.sum(1)
    else:
        count = torch.full((a.shape[0],), float(a.shape[1]), dtype=torch.float64)
    out = torch.empty((a.shape[0], len(fns)), dtype=torch.float64)
    for k, fn in enumerate(fns):
        out[:, k] = fn(a, b, count)
    res = out.numpy()
    res[(count == 0).numpy()] = np.nan
    return res
