"""TODO docstring: attribution/run.py"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data.reader import normalize
from ..errors import ModalensError, SpecError
from ..io import atomic_path, atomic_write_text
from ..training.run import load_run
from ..training.runfolder import RunFolder
from .aggregation import format_summary, summarize
from .api import attribute
from .batches import Batch, _lazy_batches
from .figures import influence_bar_chart
from .groups import Groups, _groups_for
from .options import PAPER_STRATEGIES, _as_list


def _run_mean(run: Any) -> list[float] | None:
    """Per-channel train means in normalised space from a run's statistics (best effort)."""
    try:

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

    if int(batch_size) < 1:
        raise SpecError(
            f"batch size must be at least 1, got {batch_size}",
            "batch_size",
            "pass a positive batch size, e.g. --batch-size 8",
        )
    run = load_run(run_dir, data_root=data_root)
    out = Path(out) if out is not None else RunFolder(run_dir).attribution(split)
    grp = _groups_for(run.spec, groups)
    strategies_l = _as_list(strategies, PAPER_STRATEGIES)
    levels_l = _as_list(levels, ("embedding",))
    mean = None
    if "mean" in strategies_l:
        mean = _run_mean(run)
        if mean is None:
            warnings.warn("no train statistics for the mean strategy; filling with 0", stacklevel=2)
    if loss_fn is None and "loss" in levels_l:
        loss_fn = run.task.loss
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

        try:
            influence_bar_chart(summary, out / "influence.png")
        except ModalensError:
            pass
    return scores, summary
