"""Fill sanity: how much of each occlusion fill lies outside the data the model was trained on.

An occlusion strategy replaces a modality's channels by a fill in the model's normalised input
space. A fill far outside the train range (``ones`` for Sentinel-2 scaled by 1/10000 is a
10,000-reflectance pixel) measures how the model reacts to impossible inputs, not how much it
uses the modality. :func:`fill_sanity` measures it instead of assuming it: it *generates* every
strategy's fill with the registered fill function (:data:`~modalens.attribution.STRATEGIES`,
with the :class:`~modalens.attribution.FillContext` the engine would build: the run's train
means for ``mean``, :func:`~modalens.attribution.run.run_nodata` for ``nodata``, the same seed,
draws and input masking) on samples of a split, and counts, per strategy and modality, the
filled values outside the modality's train range, pooled over its channels.

- Continuous modalities: a value is outside when it lies below the channel's train minimum or
  above its train maximum (the raw per-band range of the run's statistics, normalised as the
  reader normalises: :func:`~modalens.data.stats.normalized_range`).
- Categorical modalities with codes in one channel (ordinal, scaled, none): a value is outside
  when it is not a valid class code (the spec's classes, normalised); below/above are values
  under the smallest / over the largest code. ``class_code_share`` is the share of filled
  values that *are* real class codes -- notable too: ``zeros`` and ``ones`` on WorldCover's
  ordinal codes are classes 10 (tree cover) and 100 (moss), not an absence.
- One-hot categorical modalities: counted per pixel (one value = one pixel's class vector),
  outside unless exactly one class channel is 1 and the others 0; below/above: a component
  under 0 / over 1.

A value within ``1e-5`` (relative, at least absolute) of a bound or code counts as inside
(fills and ranges pass through float32). A strategy x modality whose outside share exceeds the
threshold is flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attribution.options import AttributionOptions
from ..attribution.run import run_options
from ..attribution.strategies import STRATEGIES, Fill, FillContext
from ..data.dataset import collate
from ..data.reader import normalize
from ..data.samples import sample_ids
from ..data.spec import Modality
from ..data.stats import Statistics, compute_statistics, normalized_range
from ..errors import DataError, SpecError

FILL_COLUMNS = [
    "strategy",
    "group",
    "outside_share",
    "below_share",
    "above_share",
    "class_code_share",
    "flagged",
    "threshold",
    "n_values",
]
TOLERANCE = 1e-5


def train_statistics(
    run: Any, cache: str | Path | None = None, progress: bool = True
) -> Statistics:
    """The run's train statistics with the per-band range: its ``stats.json`` when that holds
    one (version 2), else recomputed over the train split (written to ``cache`` and reused from
    there), so run folders made before the range existed still work.

    Args:
        run: a loaded run (:func:`modalens.training.run.load_run`).
        cache: where recomputed statistics are kept (None: not kept).
        progress: show a progress bar while computing.

    Returns:
        Statistics whose modalities all have ``min``/``max``.
    """
    stats = Statistics.from_dict(run.stats) if run.stats else None
    names = [m.name for m in run.spec.modalities]
    if stats is not None and all(
        n in stats.modalities and stats.modalities[n].has_range for n in names
    ):
        return stats
    train = sample_ids(run.spec)["train"]
    return compute_statistics(run.spec, train, cache=cache, progress=progress)


def class_codes(m: Modality) -> np.ndarray:
    """The normalised values of a categorical modality's classes (one channel)."""
    raw = np.asarray(m.classes or (), dtype=np.float32).reshape(1, -1, 1)
    return np.asarray(normalize(m, raw), dtype=np.float64).reshape(-1)


def _near(values: torch.Tensor, target: float) -> torch.Tensor:
    return (values - target).abs() <= TOLERANCE * max(1.0, abs(target))


def count_outside(m: Modality, values: torch.Tensor, stats: Statistics) -> dict[str, float]:
    """Counts of one modality's filled values outside its train range (see the module
    docstring).

    Args:
        m: the modality (normalisation complete).
        values: its filled channels ``[B, c, ...]`` (float).
        stats: train statistics with the range.

    Returns:
        ``n``, ``below``, ``above``, ``outside`` and (categorical) ``code`` counts.
    """
    v = values.detach().to(torch.float64).cpu()
    if m.is_categorical and m.normalization.type == "onehot":
        zero, one = _near(v, 0.0), _near(v, 1.0)
        code = (zero | one).all(dim=1) & (one.sum(dim=1) == 1)
        below = (v < -TOLERANCE).any(dim=1)
        above = (v > 1 + TOLERANCE).any(dim=1)
        return _counts(code.numel(), below, above, ~code, code)
    if m.is_categorical:
        codes = class_codes(m)
        code = torch.zeros_like(v, dtype=torch.bool)
        for c in codes:
            code |= _near(v, float(c))
        lo, hi = float(codes.min()), float(codes.max())
        below = v < lo - TOLERANCE * max(1.0, abs(lo))
        above = v > hi + TOLERANCE * max(1.0, abs(hi))
        return _counts(v.numel(), below, above, ~code, code)
    low, high = normalized_range(m, stats.modalities[m.name])
    shape = (1, -1) + (1,) * (v.ndim - 2)
    lo_t = torch.as_tensor(low, dtype=torch.float64).reshape(shape)
    hi_t = torch.as_tensor(high, dtype=torch.float64).reshape(shape)
    below = v < lo_t - TOLERANCE * lo_t.abs().clamp(min=1.0)
    above = v > hi_t + TOLERANCE * hi_t.abs().clamp(min=1.0)
    return _counts(v.numel(), below, above, below | above, None)


def _counts(
    n: int,
    below: torch.Tensor,
    above: torch.Tensor,
    outside: torch.Tensor,
    code: torch.Tensor | None,
) -> dict[str, float]:
    out = {
        "n": float(n),
        "below": float(below.sum()),
        "above": float(above.sum()),
        "outside": float(outside.sum()),
    }
    if code is not None:
        out["code"] = float(code.sum())
    return out


def materialize(fill: Fill, x: torch.Tensor, channel_axis: int = 1) -> torch.Tensor | None:
    """The filled values of every channel of ``x`` for ``fill`` (None for a missing fill)."""
    if fill.kind == "constant":
        assert fill.value is not None
        shape = [1] * x.ndim
        shape[channel_axis] = -1
        return fill.value.to(torch.float32).reshape(shape).expand(x.shape)
    if fill.kind == "per_sample":
        assert fill.value is not None
        return fill.value.to(torch.float32)
    if fill.kind == "donor":
        assert fill.donor is not None
        return x[fill.donor.long()]
    return None


def _batches(run: Any, split: str, samples: int | None, batch_size: int) -> list[dict[str, Any]]:
    dataset = run.dataset(split)
    ids = [str(i) for i in getattr(dataset, "ids", range(len(dataset)))]
    n = len(ids) if samples is None else min(len(ids), int(samples))
    if n == 0:
        raise DataError(
            f"the {split} split has no samples", str(run.run_dir), "choose another split"
        )
    mask = bool(getattr(getattr(run.module, "hparams", {}), "mask_invalid_inputs", True))
    out = []
    for s in range(0, n, batch_size):
        b = collate([dataset[i] for i in range(s, min(s + batch_size, n))])
        image = b["image"].to(torch.float32)
        if mask and b.get("valid") is not None and image.ndim == 4:
            image = torch.where(b["valid"][:, None], image, torch.zeros((), dtype=image.dtype))
        out.append({"image": image, "id": [str(i) for i in b["id"]]})
    return out


def fill_sanity(
    run: Any,
    strategies: Iterable[str],
    *,
    split: str = "test",
    samples: int | None = 16,
    threshold: float = 0.01,
    draws: int = 1,
    seed: int = 0,
    batch_size: int = 8,
    statistics: Statistics | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Per strategy and modality: the shares of filled values outside the train range.

    Args:
        run: a loaded run (:func:`modalens.training.run.load_run`).
        strategies: registered strategy names (unknown names are a SpecError).
        split: whose samples are filled (their shapes, and the donors of ``permute``).
        samples: at most this many samples of the split (None: all).
        threshold: an outside share above it flags the pair.
        draws: draws of the random strategies.
        seed: the attribution's seed (it seeds the noise).
        batch_size: samples per fill.
        statistics: train statistics with range (default: :func:`train_statistics`).
        progress: show progress.

    Returns:
        One row per strategy x modality, columns :data:`FILL_COLUMNS` (shares NaN where a
        strategy gave no fill, e.g. ``permute`` on a batch of one).

    Raises:
        SpecError: an unknown strategy or a threshold outside [0, 1].
        DataError: ``mean`` or ``nodata`` for a run whose statistics lack the train means
            (:func:`~modalens.attribution.run.run_options`).
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise SpecError(
            f"threshold must lie in [0, 1], got {threshold}", "--threshold", "e.g. 0.01 (1 %)"
        )
    names = tuple(dict.fromkeys(strategies))
    specs = [STRATEGIES.get(s) for s in names]
    stats = statistics if statistics is not None else train_statistics(run, progress=progress)
    fills = run_options(run, AttributionOptions(strategies=names))  # as the attribution fills
    mean_t = None if fills.mean is None else torch.tensor(fills.mean, dtype=torch.float32)
    nodata_t = None if fills.nodata is None else torch.tensor(fills.nodata, dtype=torch.float32)
    slices = run.spec.channel_slices()
    totals: dict[tuple[str, str], dict[str, float]] = {
        (s, m.name): {} for s in names for m in run.spec.modalities
    }
    batches = _batches(run, split, samples, batch_size)
    bar = tqdm(total=len(batches) * len(names), desc="fill sanity", disable=not progress)
    for b in batches:
        x = b["image"]
        for strategy in specs:
            for draw in range(draws if strategy.random else 1):
                ctx = FillContext(x, 1, b["id"], strategy.name, draw, seed, mean_t, None, nodata_t)
                filled = materialize(strategy.fn(ctx), x)
                if filled is None:
                    continue
                for m in run.spec.modalities:
                    c = count_outside(m, filled[:, slices[m.name]], stats)
                    acc = totals[(strategy.name, m.name)]
                    for k, v in c.items():
                        acc[k] = acc.get(k, 0.0) + v
            bar.update(1)
    bar.close()
    rows = []
    for (strategy_name, group), acc in totals.items():
        n = acc.get("n", 0.0)
        sh = {k: (acc.get(k, 0.0) / n if n else np.nan) for k in ("outside", "below", "above")}
        categorical = run.spec.modality(group).is_categorical
        outside = sh["outside"]
        rows.append(
            {
                "strategy": strategy_name,
                "group": group,
                "outside_share": outside,
                "below_share": sh["below"],
                "above_share": sh["above"],
                "class_code_share": (acc.get("code", 0.0) / n if n else np.nan)
                if categorical
                else np.nan,
                "flagged": bool(n and outside > threshold),
                "threshold": float(threshold),
                "n_values": int(n),
            }
        )
    return pd.DataFrame(rows, columns=FILL_COLUMNS)
