"""Modality dropout: during training each input modality of each item is replaced by a fill
with probability ``p`` (never more than all but ``min_keep``), ModDrop style.

The masks come from the item's own seed (``aug_seed``, the per-item rule augmentation uses:
``(seed, epoch, draw, index)``), so they do not depend on the batch composition, the world
size or resuming. The fill is one normalised value per channel, as the attribution
strategies of the same names give it: ``mean`` (the train mean in normalised space, from the
run's statistics), ``zeros`` and ``ones``. Dropout acts on the inputs only (auxiliary targets
are untouched) and is off unless ``train.modality_dropout`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import Tensor

from ..data.augment import AUG_SEED
from ..data.reader import normalize
from ..data.spec import DatasetSpec
from ..errors import DataError, SpecError
from ..progress import warn

#: the fills training can use: constant per channel (noise and permute fills are refused)
DROPOUT_FILLS = ("mean", "zeros", "ones")
_SALT = 0xD40D


class ModalityDropout(BaseModel):
    """``train.modality_dropout``: ``{p: 0.25, fill: mean, min_keep: 1}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    p: float = 0.25
    fill: str = "mean"
    min_keep: int = 1

    @model_validator(mode="after")
    def _check(self) -> ModalityDropout:
        where = "train.modality_dropout"
        if not 0.0 <= self.p < 1.0:
            raise SpecError(f"p={self.p} is outside [0, 1)", f"{where}.p", "give e.g. p: 0.25")
        if self.fill not in DROPOUT_FILLS:
            raise SpecError(
                f"unknown dropout fill {self.fill!r}",
                f"{where}.fill",
                f"choose one of {', '.join(DROPOUT_FILLS)} (noise and permute fills are "
                "not supported in training)",
            )
        if self.min_keep < 1:
            raise SpecError(
                f"min_keep={self.min_keep} would drop every modality",
                f"{where}.min_keep",
                "keep at least one modality (min_keep: 1)",
            )
        return self


def check_modalities(dropout: ModalityDropout, n_modalities: int) -> None:
    """Refuse a ``min_keep`` above the number of input modalities.

    Raises:
        SpecError: ``min_keep`` > ``n_modalities``.
    """
    if dropout.min_keep > n_modalities:
        raise SpecError(
            f"min_keep={dropout.min_keep} but the run has {n_modalities} input modalities",
            "train.modality_dropout.min_keep",
            f"give min_keep <= {n_modalities}",
        )


def dropout_masks(seeds: Sequence[int], n_modalities: int, p: float, min_keep: int) -> Tensor:
    """Which modalities each item keeps, from the items' own seeds.

    Args:
        seeds: one seed per item (``aug_seed``).
        n_modalities: number of input modalities.
        p: drop probability of each modality.
        min_keep: fewest modalities kept; when the draw keeps fewer, the dropped ones with
            the lowest draws are restored.

    Returns:
        Bool ``[B, M]``, True where the modality is kept.
    """
    keep = np.ones((len(seeds), n_modalities), dtype=bool)
    for i, s in enumerate(seeds):
        u = np.random.default_rng([int(s) & ((1 << 63) - 1), _SALT]).random(n_modalities)
        k = u >= p
        short = min_keep - int(k.sum())
        if short > 0:  # restore the dropped modalities with the highest draws
            dropped = np.flatnonzero(~k)
            k[dropped[np.argsort(-u[dropped])[:short]]] = True
        keep[i] = k
    return torch.from_numpy(keep)


def apply_dropout(
    image: Tensor, keep: Tensor, channels: Sequence[int], fill: Tensor | Sequence[float]
) -> Tensor:
    """``image`` [B,C,...] with each dropped modality's channels set to ``fill``.

    Args:
        image: normalised input.
        keep: bool ``[B, M]`` (:func:`dropout_masks`).
        channels: number of channels of each modality, in order.
        fill: one value per channel.
    """
    per_channel = torch.repeat_interleave(
        keep.to(image.device), torch.as_tensor(list(channels), device=image.device), dim=1
    )
    shape = (*per_channel.shape, *([1] * (image.dim() - 2)))
    value = torch.as_tensor(fill, dtype=image.dtype, device=image.device)
    value = value.reshape(1, -1, *([1] * (image.dim() - 2)))
    return torch.where(per_channel.reshape(shape), image, value)


def dropout_batch(batch: Mapping[str, Any], settings: Mapping[str, Any]) -> Any:
    """A training batch with its inputs dropped out per item (``settings``: the module's
    ``modality_dropout`` hyper-parameter with ``channels`` and ``fill_values``)."""
    if AUG_SEED not in batch:
        return batch
    seeds = [int(s) for s in batch[AUG_SEED].reshape(-1).tolist()]
    channels = settings["channels"]
    keep = dropout_masks(seeds, len(channels), settings["p"], settings["min_keep"])
    image = apply_dropout(batch["image"].float(), keep, channels, settings["fill_values"])
    return {**batch, "image": image, "modality_keep": keep}


def fill_values(spec: DatasetSpec, stats: Mapping[str, Any] | None, fill: str) -> list[float]:
    """One normalised fill value per input channel of ``spec`` for ``fill``.

    Raises:
        DataError: the ``mean`` fill without train means in ``stats`` for a modality.
    """
    if fill in ("zeros", "ones"):
        return [float(fill == "ones")] * spec.n_channels
    raw = (stats or {}).get("modalities", stats or {})
    vals: list[float] = []
    for m in spec.modalities:
        entry = raw.get(m.name) if isinstance(raw, Mapping) else None
        entry = entry if isinstance(entry, Mapping) else {}
        if m.normalization.type == "onehot":
            freq = entry.get("class_frequencies") or entry.get("frequencies")
            if isinstance(freq, Mapping):
                freq = [freq.get(str(c), freq.get(c, 0.0)) for c in m.classes or ()]
            got = None if freq is None else [float(f) for f in freq]
        else:
            mean = entry.get("mean")
            arr = None if mean is None else np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
            got = None if arr is None else np.asarray(normalize(m, arr)).reshape(-1).tolist()
        if got is None:
            raise DataError(
                f"no train means for modality {m.name!r} (the mean dropout fill)",
                "stats.json",
                "let fit compute the statistics or use fill: zeros",
            )
        vals.extend(float(v) for v in got)
    return vals


def module_settings(
    dropout: ModalityDropout | None, spec: DatasetSpec, stats: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The module's ``modality_dropout`` hyper-parameter (None: off)."""
    if dropout is None:
        return None
    check_modalities(dropout, len(spec.modalities))
    return {
        **dropout.model_dump(),
        "modalities": [m.name for m in spec.modalities],
        "channels": [m.n_channels for m in spec.modalities],
        "fill_values": fill_values(spec, stats, dropout.fill),
    }


def missing_fill(run: Any, missing: Sequence[str]) -> dict[str, np.ndarray]:
    """The normalised fill of each absent modality at deployment: the run's dropout fill, or
    the train mean for a run trained without dropout (warned: untested behaviour).

    Args:
        run: a loaded run (:func:`~modalens.training.run.load_run`).
        missing: names of the absent input modalities.

    Returns:
        ``{modality: per-channel fill}`` (empty when nothing is missing).

    Raises:
        SpecError: an unknown modality, or every input modality missing.
    """
    names = [m.name for m in run.spec.modalities]
    missing = [str(m) for m in missing]
    for m in missing:
        if m not in names:
            raise SpecError(
                f"unknown modality {m!r} in --missing", "missing", f"choose from {names}"
            )
    if not missing:
        return {}
    if set(missing) >= set(names):
        raise SpecError("every input modality is missing", "missing", "keep at least one modality")
    settings = run.module.hparams.get("modality_dropout")
    if settings:
        values = list(settings["fill_values"])
    else:
        values = fill_values(run.spec, run.stats, "mean")
        warn(
            f"the run was trained without modality dropout: predictions with {', '.join(missing)}"
            " missing (mean fill) are untested"
        )
    out, start = {}, 0
    for m in run.spec.modalities:
        if m.name in missing:
            out[m.name] = np.asarray(values[start : start + m.n_channels], np.float32)
        start += m.n_channels
    return out


def expected_subset_metric(run_dir: Any, missing: Sequence[str], names: Sequence[str]) -> str:
    """One line with the metrics ``RUN/subsets/subsets.csv`` gives for the modalities kept
    (empty when the file or the row is absent or unreadable)."""
    path = Path(run_dir) / "subsets" / "subsets.csv"
    kept = "+".join(n for n in names if n not in set(missing))
    try:
        df = pd.read_csv(path)
        row = df[df["subset"].astype(str) == kept].iloc[0]
    except Exception:  # absent, unreadable or without this subset: say nothing
        return ""
    vals = ", ".join(
        f"{k}={float(v):.4g}"
        for k, v in row.items()
        if k != "subset" and isinstance(v, (int, float)) and not isinstance(v, bool)
    )
    return f"expected on {kept} (from {path}): {vals}" if vals else ""
