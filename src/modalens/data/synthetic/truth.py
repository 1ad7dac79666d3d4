"""The realised importance of each modality: how much the target moves with its term.

The target is ``NI = clip(100 * sum_m w_m z_m + noise, 0, 100)``. A planted weight ``w_m`` is not
what a model can learn from modality ``m``: a modality whose signal hardly varies (a sparse one,
e.g. night lights that are dark almost everywhere) moves the target far less than its weight.
The *realised* importance of ``m`` is the mean absolute change of the target, in naturalness
points over valid pixels, when the modality's term is replaced by its dataset mean -- removing
what the modality tells about the target, not a constant offset that no input explains::

    realised_m = mean over valid pixels |100 w_m (z_m - mean(z_m))|

(before noise and clipping; the mix stays in [0, 100], so clipping touches only the noise). It
is 0 for a modality planted at 0 and for the decoy; ``share`` normalises it to sum 1.
:class:`RealisedImportance` accumulates it per sample in one pass with a histogram of each
signal (256 bins with their sums; exact up to the one bin holding the mean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BINS = 256


class RealisedImportance:
    """Per-sample and dataset realised importances, accumulated sample by sample.

    Args:
        names: the modalities (the decoy included), in output order.
        weights: planted weight per modality (missing -> 0).
    """

    def __init__(self, names: Sequence[str], weights: Mapping[str, float]) -> None:
        self.names = list(names)
        self.weights = np.array([float(weights.get(m, 0.0)) for m in self.names], np.float64)
        self.ids: list[str] = []
        self.counts: list[np.ndarray] = []  # [M, BINS] per sample
        self.sums: list[np.ndarray] = []

    def add(self, sample_id: str, signals: Mapping[str, np.ndarray], valid: np.ndarray) -> None:
        """Add one sample's signals ``z_m`` (values in [0, 1]; absent names count as constant).

        Args:
            sample_id: the sample id.
            signals: ``z_m`` per modality ([H, W]).
            valid: [H, W] bool, the pixels the target is defined on.
        """
        counts = np.zeros((len(self.names), BINS), np.int64)
        sums = np.zeros((len(self.names), BINS), np.float64)
        for k, m in enumerate(self.names):
            z = signals.get(m)
            z = np.zeros(int(valid.sum())) if z is None else np.asarray(z)[valid].astype(np.float64)
            z = np.clip(np.nan_to_num(z, nan=0.0), 0.0, 1.0)
            b = np.minimum((z * BINS).astype(np.int64), BINS - 1)
            counts[k] = np.bincount(b, minlength=BINS)
            sums[k] = np.bincount(b, weights=z, minlength=BINS)
        self.ids.append(str(sample_id))
        self.counts.append(counts)
        self.sums.append(sums)

    def _abs_dev(self, counts: np.ndarray, sums: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """Sum of |z - centre| per modality from histograms [.., M, BINS]."""
        cb = (centre * BINS).astype(np.int64).clip(0, BINS - 1)[..., None]
        idx = np.arange(BINS)
        c = centre[..., None]
        above = np.where(idx > cb, sums - c * counts, 0.0)
        below = np.where(idx < cb, c * counts - sums, 0.0)
        inside = np.where(idx == cb, np.abs(sums - c * counts), 0.0)
        return (above + below + inside).sum(axis=-1)

    def result(self) -> dict[str, Any]:
        """The realised importances (see the module docstring).

        Returns:
            ``{"points": {m: dataset value}, "share": {m: share}, "per_sample": {id: {m:
            value}}, "per_sample_share": ...}``, values in naturalness points.
        """
        counts = np.stack(self.counts) if self.counts else np.zeros((0, len(self.names), BINS))
        sums = np.stack(self.sums) if self.sums else np.zeros((0, len(self.names), BINS))
        n_total = counts.sum(axis=(0, 2)).astype(np.float64)  # [M]
        mean = np.where(n_total > 0, sums.sum(axis=(0, 2)) / np.maximum(n_total, 1), 0.0)
        dev = self._abs_dev(counts, sums, np.broadcast_to(mean, counts.shape[:2]))  # [S, M]
        n_sample = np.maximum(counts.sum(axis=2), 1)
        scale = 100.0 * self.weights
        per_sample = scale * dev / n_sample
        dataset = scale * dev.sum(axis=0) / np.maximum(n_total, 1)

        def share(v: np.ndarray) -> np.ndarray:
            total = v.sum(axis=-1, keepdims=True)
            return np.where(total > 0, v / np.where(total > 0, total, 1.0), 0.0)

        def named(v: np.ndarray) -> dict[str, float]:
            return {m: round(float(x), 6) for m, x in zip(self.names, v, strict=True)}

        return {
            "points": named(dataset),
            "share": named(share(dataset)),
            "per_sample": {sid: named(v) for sid, v in zip(self.ids, per_sample, strict=True)},
            "per_sample_share": {
                sid: named(v) for sid, v in zip(self.ids, share(per_sample), strict=True)
            },
        }
