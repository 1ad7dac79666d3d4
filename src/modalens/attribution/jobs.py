"""One batch's occlusions as a job: the inputs, fills and masks, and the scores being filled.

:meth:`~.engine.OcclusionEngine.compute` plans an :class:`OcclusionJob` per batch (which
``(row, fill, mask)`` occlusions need a forward, which are answered without one) and hands its
tasks to a :class:`~.forward.Runner` (:meth:`OcclusionJob.run`): the occluded inputs of a
chunk are built in one buffer (:meth:`OcclusionJob.build`), evaluated in one forward and
scored into :attr:`OcclusionJob.result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .batches import Batch, Unoccluded
from .coalitions import Scorer
from .forward import Runner, balanced_chunk
from .strategies import Fill

#: one occlusion: ``(batch row, fill index, mask index)``
Task = tuple[int, int, int]


def broadcast_shape(ndim: int, axis: int, n: int, c: int) -> list[int]:
    """``[n, 1, .., c, .., 1]``: a per-channel tensor of ``n`` inputs of ``ndim`` dimensions
    with ``c`` channels on ``axis``, shaped to broadcast against them."""
    return [n] + [c if d == axis else 1 for d in range(1, ndim)]


@dataclass
class OcclusionJob:
    """The occlusions of one batch (:meth:`~.engine.OcclusionEngine.compute`).

    Attributes:
        batch: the batch.
        x: its inputs on the engine's device.
        axis: the channel axis of ``x``.
        cmask: bool ``[K, C]``: the channels each occlusion mask replaces.
        fills: one fill per ``(strategy, draw)`` key.
        score: ``score(emb, out, rows, full, batch) -> [n, M]``.
        full: the unoccluded evaluation of ``x`` (with the levels' references).
        result: float64 ``[B, F, K, M]`` scores, NaN until scored.
        exact: bool ``[B, F, K]``: scored in the base precision.
        tasks: the occlusions that still need a forward.
    """

    batch: Batch
    x: Tensor
    axis: int
    cmask: Tensor
    fills: list[Fill]
    score: Scorer
    full: Unoccluded
    result: np.ndarray
    exact: np.ndarray
    tasks: list[Task] = field(default_factory=list)

    def shape(self, n: int) -> list[int]:
        """:func:`broadcast_shape` of ``n`` inputs like :attr:`x`."""
        return broadcast_shape(self.x.ndim, self.axis, n, self.cmask.shape[1])

    def score_all_rows(self, fi: int, k: int, emb: Tensor | None, out: Tensor | None) -> None:
        """Score every row's occlusion by fill ``fi`` and mask ``k`` from its evaluation."""
        rows = torch.arange(self.x.shape[0])
        self.result[:, fi, k] = self.score(emb, out, rows, self.full, self.batch)
        self.exact[:, fi, k] = True

    def run(self, runner: Runner, tasks: Sequence[Task], chunk_size: int | None) -> None:
        """Evaluate ``tasks`` with ``runner`` in balanced chunks and write their scores into
        :attr:`result`."""
        step = balanced_chunk(len(tasks), runner.chunk_length(self.x, chunk_size))
        for s in range(0, len(tasks), step):
            chunk = tasks[s : s + step]
            e, o = runner.run(self.build(chunk))
            rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
            sc = self.score(e, o, rows, self.full, self.batch)
            for j, (i, fi, k) in enumerate(chunk):
                self.result[i, fi, k] = sc[j]

    def build(self, chunk: Sequence[Task]) -> Tensor:
        """The occluded inputs of ``chunk``."""
        x = self.x
        buf = torch.empty((len(chunk), *x.shape[1:]), dtype=x.dtype, device=x.device)
        by_fill: dict[int, list[int]] = {}
        for j, (_, fi, _) in enumerate(chunk):
            by_fill.setdefault(fi, []).append(j)
        for fi, pos in by_fill.items():
            rows = torch.as_tensor([chunk[j][0] for j in pos], dtype=torch.long, device=x.device)
            masks = torch.as_tensor([chunk[j][2] for j in pos], dtype=torch.long)
            cm = self.cmask[masks].reshape(self.shape(len(pos))).to(x.device)
            fill = self.fills[fi]
            if fill.kind in ("constant", "per_sample"):
                assert fill.value is not None
                val = fill.value if fill.kind == "constant" else fill.value[rows]
            else:
                assert fill.donor is not None
                val = x[fill.donor.to(x.device)[rows]]
            p = torch.as_tensor(pos, dtype=torch.long, device=x.device)
            buf[p] = torch.where(cm, val, x[rows])
        return buf
