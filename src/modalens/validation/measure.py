"""What Table I reports about a finished run besides its test metrics: cost.

- :func:`epoch_seconds`: training time per epoch, the mean of the ``seconds`` column of the run's
  ``metrics.csv`` (one row per trained epoch, written by :func:`modalens.training.fit`).
- :func:`inference_seconds`: seconds per sample of a forward pass of the best model over the
  run's test crops (the same crops :func:`modalens.training.test` scores). Samples are read and
  batched (``train.batch_size``, consecutive samples of one shape) outside the timed region; one
  untimed warm-up forward goes first and every batch is timed ``repeats`` times, keeping the
  fastest (the least disturbed by other work on the machine); the model runs in float32 under
  ``torch.inference_mode`` on the device ``test`` uses (CUDA when available).
- :func:`measure_run`: both, the parameter count (:func:`modalens.models.count_parameters`) and
  the number of test samples timed, in one dict.

Timings depend on the machine and its load: compare runs of one ablation, measured one after the
other on the same machine, not numbers from different machines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..errors import DataError
from ..models import count_parameters
from ..training import load_run
from .settings import read_saved_config


def epoch_seconds(run_dir: str | Path) -> tuple[float, int]:
    """Mean training seconds per epoch and the number of epochs from ``metrics.csv``.

    Args:
        run_dir: a run folder.

    Returns:
        ``(seconds per epoch, epochs)``.

    Raises:
        DataError: ``metrics.csv`` is missing or has no ``seconds`` column.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise DataError("the run has no metrics.csv", str(path), "train it (modalens fit)")
    table = pd.read_csv(path)
    if "seconds" not in table.columns or len(table) == 0:
        raise DataError("metrics.csv has no 'seconds' rows", str(path), "retrain the run")
    return float(table["seconds"].mean()), int(len(table))


def _batches(dataset: Any, batch_size: int, limit: int | None) -> Iterator[torch.Tensor]:
    n = len(dataset) if limit is None else min(len(dataset), int(limit))
    pending: list[torch.Tensor] = []
    for i in range(n):
        image = dataset[i]["image"]
        if pending and (len(pending) == batch_size or pending[0].shape != image.shape):
            yield torch.stack(pending)
            pending = []
        pending.append(image)
    if pending:
        yield torch.stack(pending)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_seconds(
    model: torch.nn.Module,
    dataset: Any,
    batch_size: int,
    device: torch.device,
    limit: int | None = None,
    repeats: int = 3,
) -> tuple[float, int]:
    """Seconds per sample of ``model``'s forward pass over ``dataset`` (see the module
    docstring).

    Args:
        model: the network, in eval mode on ``device``.
        dataset: items are dicts with an ``image`` tensor ``[C, H, W]``.
        batch_size: samples per forward pass.
        device: where ``model`` is.
        limit: time only the first ``limit`` samples (None: all).
        repeats: timed forward passes per batch; the fastest counts.

    Returns:
        ``(seconds per sample, samples timed)``; ``(nan, 0)`` for an empty dataset.
    """
    total = 0.0
    count = 0
    warm = False
    with torch.inference_mode():
        for batch in _batches(dataset, max(1, int(batch_size)), limit):
            x = batch.to(device)
            if not warm:
                model(x)  # first call: allocations, kernel selection
                warm = True
            best = float("inf")
            for _ in range(max(1, int(repeats))):
                _sync(device)
                start = time.perf_counter()
                model(x)
                _sync(device)
                best = min(best, time.perf_counter() - start)
            total += best
            count += int(x.shape[0])
    return (total / count, count) if count else (float("nan"), 0)


def measure_run(run_dir: str | Path, split: str = "test", limit: int | None = None) -> dict:
    """Cost figures of a finished run for Table I.

    Args:
        run_dir: a run folder with ``checkpoints/best.ckpt``.
        split: the split timed.
        limit: time only the first ``limit`` samples of the split (None: all).

    Returns:
        ``epochs``, ``train_s_per_epoch``, ``infer_s_per_sample``, ``n_timed`` and
        ``parameters``.
    """
    run_dir = Path(run_dir)
    per_epoch, epochs = epoch_seconds(run_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, device=device)
    model = run.model.eval()
    saved = read_saved_config(run_dir) or {}
    batch_size = int((saved.get("train") or {}).get("batch_size") or 1)
    per_sample, timed = inference_seconds(
        model, run.dataset(split), batch_size, device, limit=limit
    )
    return {
        "epochs": epochs,
        "train_s_per_epoch": per_epoch,
        "infer_s_per_sample": per_sample,
        "n_timed": timed,
        "parameters": int(count_parameters(model)),
    }
