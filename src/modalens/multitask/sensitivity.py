"""Sensitivity of every head of a multitask run to each input modality (or band).

The attribution engine occludes groups of input channels and measures how far a model's
embedding moves; here the "embedding" is one head's output, given to
:func:`modalens.attribution.attribute` as the callable ``embedding`` option
(``fn(model, x) = model.forward_all(x)[head]``, probabilities for categorical heads), so the
engine is used unchanged. Each head gets one pass over the split's deterministic evaluation
crops with the train-mean fill (``mean`` strategy, the default), the Euclidean distance and no
``ALL`` row; the scores are summarised by :func:`modalens.attribution.summarize_scores` (mean over
samples, bootstrap interval, share within the head).

A run with one input modality is occluded band by band (``groups="auto"``): occluding its only
modality would say nothing about which inputs a head relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from ..attribution import attribute, summarize_scores
from ..attribution.batches import Batch
from ..attribution.groups import groups_for
from ..attribution.run import lazy_batches, run_mean
from ..models.multitask import MAIN_HEAD
from ..training.run import Run

#: columns of ``mtl_sensitivity.csv``
SENSITIVITY_COLUMNS = ["input", "head", "mean", "ci_low", "ci_high", "share"]


def head_output(head: str, probabilities: bool = False) -> Callable[[Any, Tensor], Tensor]:
    """``fn(model, x)``: one head's output of a :class:`~modalens.models.MultiTaskUNet`
    (softmax over channels when ``probabilities``)."""

    def fn(model: Any, x: Tensor) -> Tensor:
        out = model.forward_all(x)[head]
        return torch.softmax(out, 1) if probabilities else out

    fn.__name__ = f"head_{head}"
    return fn


def sensitivity(
    run: Run,
    split: str = "test",
    groups: str = "auto",
    batch_size: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Occlusion sensitivity of every head to each input group (see the module docstring).

    Args:
        run: a loaded multitask run.
        split: the split attributed.
        groups: ``modalities``, ``bands`` or ``auto`` (bands when there is one input modality).
        batch_size: samples per batch.
        n_boot: bootstrap resamples of the interval.
        seed: the bootstrap's seed.
        progress: show a progress bar per head.

    Returns:
        One row per (input group, head): :data:`SENSITIVITY_COLUMNS` (``share``: the group's
        share of the head's summed sensitivity).

    Raises:
        DataError: the run's statistics lack the train means of the ``mean`` fill
            (:func:`~modalens.attribution.run.run_mean`).
    """
    if groups == "auto":
        groups = "bands" if len(run.spec.modalities) == 1 else "modalities"
    grp = groups_for(run.spec, groups)
    mean = run_mean(run)
    dataset = run.dataset(split)
    mask = bool(getattr(getattr(run.module, "hparams", {}), "mask_invalid_inputs", True))

    def prepare(batch: Batch) -> Batch:
        if mask and batch.valid is not None:
            img = torch.where(
                batch.valid[:, None], batch.image, torch.zeros((), dtype=batch.image.dtype)
            )
            return Batch(img, batch.target, batch.valid, batch.ids, batch.windows)
        return batch

    tasks = {MAIN_HEAD: run.task, **run.module.aux_tasks}
    frames = []
    for head, task in tasks.items():
        fn = head_output(head, probabilities=task.name != "regression")
        scores = attribute(
            run.model,
            lazy_batches(dataset, batch_size),
            grp,
            levels="embedding",
            embedding=fn,
            strategies="mean",
            distances="euclidean",
            mean=mean,
            include_all=False,
            seed=seed,
            input_fn=prepare,
            progress=progress,
        )
        summary = summarize_scores(scores, n_boot=n_boot, seed=seed)
        summary = summary.rename(columns={"group": "input"}).assign(head=head)
        frames.append(summary[SENSITIVITY_COLUMNS])
    return pd.concat(frames, ignore_index=True)
