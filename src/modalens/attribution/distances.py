"""TODO docstring: attribution/distances.py"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import SpecError
from ..tasks.losses import _broadcast_mask
from .options import DISTANCES


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
