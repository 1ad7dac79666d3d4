"""``precision="auto"``: bf16 occlusions, and fp32 for every score bf16 cannot resolve.

Where the hardware computes bf16 natively (:func:`modalens.precision.native_bf16`) the engine
evaluates each sample's unoccluded input in fp32 (the base every score is measured from) *and*
in bf16. The bf16-vs-fp32 distance of that unoccluded evaluation -- per sample, level and
distance -- is the observed bf16 error ``e`` of this sample. bf16's error grows with the size
of what is evaluated, so the **bound** of a score ``s`` is
``b = SAFETY * e * (1 + |s| / scale)`` (:func:`error_bounds`, :func:`score_bounds`), where
``scale`` is the same distance between the fp32 unoccluded evaluation and zero (its norm for
``euclidean``, 1 for ``relative``): an occluded evaluation far from the unoccluded one is
larger, and so is its bf16 error. Occluded inputs run in bf16, and each score is the
distance between the *fp32* base and the bf16 occluded result, so only one side carries bf16
error. Then :func:`needs_fp32` marks for an fp32 re-evaluation (batched) exactly

- every score whose bound exceeds ``tolerance`` (default :data:`RELATIVE`, 1 %) of its
  value, and
- the scores of groups whose gap to another group's score of the same sample (same level,
  distance and fill) is within their bounds (``|s_j - s_k| <= b_j + b_k``, ``b = 0`` for
  scores already in fp32): a per-sample ranking could flip.

A sample whose relative bound ``SAFETY * e / scale`` already reaches the tolerance for every
metric would have every score redone (``b * (1 + |s| / scale) > tolerance * |s|`` for all
``s``): its occlusions go to fp32 at once (:func:`hopeless`), with the same result, so
``auto`` costs at most one bf16 evaluation of the unoccluded input more than fp32.

What is left in bf16 is then within the tolerance of fp32 (as far as the bound holds), and no
per-sample order of two groups differs from fp32's: a bf16 score is more than its own bound
away from any other score, re-evaluated or not.

The bound of a distance ``d`` uses ``d`` itself, except where ``d`` of the unoccluded pair does
not bound ``d``'s change to first order (:data:`ERROR_DISTANCE`): cosine uses ``relative``
(``|d cos| <= ||delta|| / ||o||``), ``delta`` (signed, can cancel) uses ``mae``.

**Levels without a bound** (``bounded=False`` in :func:`~.levels.register_level`) run in fp32
under ``auto``: one forward gives every level's score, so a batch with such a level runs its
occlusions in fp32 at once (counted as fp32 occlusions), without a bf16 pass. The ``loss``
level is one: a loss-level score is a small difference of two losses, and
``|loss(bf16) - loss(fp32)|`` of the unoccluded input -- a signed sum of per-pixel errors that
can cancel by chance -- does not bound it. ``benchmarks/precision_check.py --levels loss``
measured scores up to 2800 times that bound (``SAFETY`` is 4) on the trained demo model, and
``auto`` keeping bf16 loss-level scores with 9 % error at a 1 % tolerance; a bound from the
loss gradient times the bf16 output error, summed in 8x8 blocks, was still 300 times too
small (the gradient at the occluded output is larger than at the unoccluded one). Bounds
that hold there would also have to be loose enough to send most scores to fp32 (docs/scaling.md).

**Noise floor** (:func:`noise_floor`): fp32 has ``2**-16`` times bf16's unit roundoff, so its
own error on a sample is about that fraction of the bf16 error; a score below 100 times that
(``b / SAFETY * 2**-16 / 0.01``) cannot be resolved to 1 % by fp32 itself (fp32 runs at other
batch sizes differ there), and the 1 % guarantee is stated above this floor.

**Never slower than fp32** (:class:`Pace`): bf16 pays only when its passes cost less than the
fp32 evaluations they spare. Every auto batch evaluates the unoccluded inputs in both
precisions; their times give the measured bf16/fp32 cost ratio ``q`` of this model, input size
and machine. With ``r`` the share of bf16 occlusions re-evaluated in fp32 so far and ``u`` the
unoccluded inputs per occlusion, one occlusion costs about ``q * (1 + u) + r`` fp32
evaluations under ``auto`` against 1 in fp32 (:meth:`Pace.cost` counts exactly); when that
reaches :data:`PAYS_BELOW` the following batches run in fp32 at once (recorded as fp32
occlusions), and every :data:`PROBE_EVERY`-th batch probes bf16 again. Which scores end up in
bf16 then depends on the measured speed: rankings and the tolerance hold either way;
bit-identical numbers need ``fp32``.

Shapley values and user value functions (``modality_shapley``, the ``shapley`` option) run in
fp32 under ``auto``: they are differences of coalition scores, whose bf16 errors do not cancel,
so a 1 % bound on each score bounds no Shapley value. Sensitivity maps run in fp32 too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the bound is this times the bf16-vs-fp32 distance of the unoccluded evaluation, scaled
#: (calibrated with benchmarks/precision_check.py on untrained and trained U-Nets; see
#: docs/scaling.md, "Precision")
SAFETY = 4.0
#: scores whose bound exceeds this fraction of their value are redone in fp32
RELATIVE = 0.01
#: fp32's unit roundoff over bf16's (2**-24 / 2**-8)
FP32_OVER_BF16 = 2.0**-16
#: the distance that bounds another distance's bf16 error (the others bound themselves)
ERROR_DISTANCE = {"cosine": "relative", "delta": "mae"}


#: ``auto`` keeps bf16 while its expected cost per occlusion is below this share of fp32's
PAYS_BELOW = 0.95
#: batches run straight in fp32 (bf16 did not pay) before bf16 is probed again
PROBE_EVERY = 8


@dataclass
class Pace:
    """Whether bf16 pays under ``auto`` (module docstring): timings and counts of this
    engine's auto batches.

    Attributes:
        q: the bf16/fp32 time ratio of the latest batch's unoccluded evaluations.
        batches: auto batches recorded (the first one's timings include warm-up and decide
            nothing).
        unoccluded: unoccluded inputs evaluated in both.
        occlusions: occlusions of those batches.
        bf16: of those, evaluated in bf16.
        fp32: of those, evaluated in fp32 (at once or re-evaluated).
        skipped: batches run in fp32 since bf16 last ran.
    """

    q: float = float("nan")
    batches: int = 0
    unoccluded: int = 0
    occlusions: int = 0
    bf16: int = 0
    fp32: int = 0
    skipped: int = 0

    def cost(self) -> float:
        """Expected cost of one occlusion under ``auto``, in fp32 evaluations (NaN before
        the second auto batch): ``(q * (unoccluded + bf16) + fp32) / occlusions``."""
        if self.batches < 2 or self.occlusions == 0:
            return float("nan")
        return (self.q * (self.unoccluded + self.bf16) + self.fp32) / self.occlusions

    def use_bf16(self) -> bool:
        """Run the next batch with bf16: until measured, while :meth:`cost` is below
        :data:`PAYS_BELOW`, and every :data:`PROBE_EVERY`-th batch after that."""
        c = self.cost()
        if not c >= PAYS_BELOW or self.skipped >= PROBE_EVERY:  # NaN: not measured yet
            self.skipped = 0
            return True
        self.skipped += 1
        return False

    def record(self, t16: float, t32: float, unoccluded: int, counts: Sequence[int]) -> None:
        """Add one auto batch: the unoccluded evaluations' seconds in bf16 and fp32, their
        number, and ``(occlusions, bf16, fp32)``."""
        self.q = t16 / t32 if t32 > 0 else float("nan")
        self.batches += 1
        self.unoccluded += unoccluded
        self.occlusions += counts[0]
        self.bf16 += counts[1]
        self.fp32 += counts[2]


def error_distances(distances: Sequence[str]) -> tuple[str, ...]:
    """The distances measuring the bf16 error of each of ``distances``
    (:data:`ERROR_DISTANCE`)."""
    return tuple(ERROR_DISTANCE.get(d, d) for d in distances)


def error_bounds(observed: np.ndarray, safety: float = SAFETY) -> np.ndarray:
    """Bounds ``[B, M]`` of the bf16 error of every score from the observed bf16-vs-fp32
    scores of the unoccluded inputs (``|observed| * safety``; NaN stays NaN)."""
    return np.abs(np.asarray(observed, dtype=np.float64)) * float(safety)


def score_bounds(scores: np.ndarray, bounds: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Bounds ``[B, F, K, M]`` of scores ``[B, F, K, M]``: ``bounds * (1 + |s| / scale)``
    (``bounds``, ``scales``: ``[B, M]``; a zero, negative or NaN scale counts as 1, an infinite
    one leaves the bound unscaled)."""
    sc = np.asarray(scales, dtype=np.float64)
    sc = np.where(np.isnan(sc) | (sc <= 0), 1.0, sc)[:, None, None, :]
    b = np.asarray(bounds, dtype=np.float64)[:, None, None, :]
    return b * (1.0 + np.abs(np.asarray(scores, dtype=np.float64)) / sc)


def hopeless(bounds: np.ndarray, scales: np.ndarray, relative: float = RELATIVE) -> np.ndarray:
    """Bool ``[B]``: samples none of whose bf16 scores could be kept (``bounds / scale >=
    relative`` for every metric with a finite bound; False where there is none)."""
    b = np.asarray(bounds, dtype=np.float64)
    sc = np.asarray(scales, dtype=np.float64)
    sc = np.where(np.isnan(sc) | (sc <= 0), 1.0, sc)
    unknown = np.isnan(b)  # no bound: decides nothing
    with np.errstate(invalid="ignore"):
        lost = (b / sc >= relative) | unknown  # an infinite bound is lost
    return np.asarray(lost.all(1) & ~unknown.all(1))


def precision_report(requested: str, used: str, counts: dict[str, int]) -> dict[str, Any]:
    """What an engine's precision did: ``requested``, ``used`` (``fp32``, ``bf16`` or
    ``bf16+fp32``) and, for ``bf16+fp32``, the counts of occluded inputs (``occlusions``,
    those evaluated in ``bf16``, those evaluated in ``fp32`` -- sent there at once or
    re-evaluated after bf16) and ``fp32_share`` (fp32 / occlusions)."""
    if used != "bf16+fp32":
        return {"requested": requested, "used": used}
    n = counts.get("occlusions", 0)
    share = counts.get("fp32", 0) / n if n else 0.0
    return {"requested": requested, "used": used, **counts, "fp32_share": share}


def noise_floor(bounds: np.ndarray, safety: float = SAFETY) -> np.ndarray:
    """Scores below this (same shape as ``bounds``) cannot be resolved to :data:`RELATIVE` by
    fp32 itself: the fp32 error estimate ``bounds / safety * 2**-16`` over 1 %."""
    return np.asarray(bounds, dtype=np.float64) / float(safety) * FP32_OVER_BF16 / RELATIVE


def needs_fp32(
    scores: np.ndarray,
    exact: np.ndarray,
    bounds: np.ndarray,
    ranked: np.ndarray,
    relative: float = RELATIVE,
    scales: np.ndarray | None = None,
) -> np.ndarray:
    """Which scores must be re-evaluated in fp32 (the rule in the module docstring).

    Args:
        scores: ``[B, F, K, M]`` scores (samples x fills x occlusion masks x metrics); NaN
            where a fill is missing.
        exact: bool ``[B, F, K]``: already computed in fp32 (bound 0).
        bounds: ``[B, M]`` error bounds of the bf16 scores of each sample and metric.
        ranked: bool ``[K]``: masks whose scores are ranked against each other (one group
            occluded each; ``ALL`` is not ranked).
        relative: the relative tolerance (1 %).
        scales: ``[B, M]`` scales of :func:`score_bounds` (None: bounds as given).

    Returns:
        bool ``[B, F, K]``: re-evaluate (never True where ``exact``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    exact = np.asarray(exact, dtype=bool)
    ranked = np.asarray(ranked, dtype=bool)
    if scales is None:
        scales = np.full_like(np.asarray(bounds, dtype=np.float64), np.inf)
    b = score_bounds(scores, bounds, scales)
    b = np.where(exact[..., None], 0.0, b)
    with np.errstate(invalid="ignore"):
        flag = b > relative * np.abs(scores)  # NaN compares False
        if ranked.sum() > 1:
            s, bb = scores[:, :, ranked], b[:, :, ranked]  # [B, F, R, M]
            gap = np.abs(s[:, :, :, None] - s[:, :, None, :])  # [B, F, R, R, M]
            close = gap <= bb[:, :, :, None] + bb[:, :, None, :]
            r = int(ranked.sum())
            close &= ~np.eye(r, dtype=bool)[None, None, :, :, None]
            sub = flag[:, :, ranked] | close.any(3)
            flag[:, :, ranked] = sub
    return flag.any(-1) & ~exact
