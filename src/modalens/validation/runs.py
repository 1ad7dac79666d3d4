"""One run of an ablation: train (or resume, or skip), test, measure, and keep its Table I row.

:func:`run_setting` brings the run folder ``runs/<setting>-seed<k>/`` to the finished state and
returns a :class:`RunRecord`:

- *finished* (``checkpoints/best.ckpt`` and ``metrics_test.csv`` present, training not
  recorded as unfinished in ``state.json``): skipped; its config is
  still checked (below) and nothing is written into it;
- *interrupted* (any other non-empty folder): continued with ``fit(..., resume=True)`` -- which
  starts again in the same folder when no epoch had ended -- then tested;
- *absent or empty*: trained with ``fit`` and tested.

Reuse is decided by the project's one rule: the folder's ``config.yaml`` must hold this setting's
``use`` and seed (a one-line error names the difference otherwise), and ``fit(..., resume=True)``
compares the rest of the saved config key by key with
:func:`modalens.fingerprint.require_same` (it returns at once for a finished run).

The row (test metrics of the pooled ``id == "all"`` row, cost figures from
:func:`~.measure.measure_run`) is cached in ``rows/<setting>-seed<k>.json`` beside the size and
modification time of the files it was computed from and the package version and torch thread
count it was measured with (:func:`modalens.fingerprint.provenance`); a rerun reuses it while
:func:`modalens.fingerprint.differences` finds those unchanged, so a finished ablation's timings
are not re-measured (at another thread count they are).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ModalensError, ModelError, SpecError
from ..fingerprint import differences, provenance
from ..io import atomic_write_json
from ..training import evaluate, fit
from ..training.runstate import read_state
from .measure import measure_run
from .settings import Setting, read_saved_config

#: columns of a metrics table that are not metrics
NOT_METRICS = ("id", "n", "loss")


@dataclass
class RunRecord:
    """What happened to one run in this call and its Table I row.

    Attributes:
        setting: the setting trained.
        seed: its seed.
        path: the run folder.
        status: ``trained`` (new), ``resumed`` (an interrupted folder continued) or
            ``skipped`` (finished earlier).
        row: the Table I row (setting, modalities, metrics, cost).
        seconds: wall time spent on this run in this call.
        metrics: the task's metric columns (those of ``metrics_test.csv`` but id, n, loss).
    """

    setting: Setting
    seed: int
    path: Path
    status: str
    row: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    metrics: list[str] = field(default_factory=list)


def is_finished(run_dir: Path, split: str = "test") -> bool:
    """Whether a run folder is finished for the ablation.

    Args:
        run_dir: the run folder.
        split: the split tested.

    Returns:
        True when it holds ``checkpoints/best.ckpt`` and ``metrics_<split>.csv`` and its
        training did not stop unfinished (``state.json``; a run without one counts as
        finished).
    """
    state = read_state(run_dir)
    return (
        (run_dir / "checkpoints" / "best.ckpt").is_file()
        and (run_dir / f"metrics_{split}.csv").is_file()
        and (state is None or state.finished)
    )


def check_folder(run_dir: Path, setting: Setting, seed: int) -> None:
    """Refuse a run folder whose saved config is another setting's or another seed's.

    Args:
        run_dir: the run folder (a folder without ``config.yaml`` passes).
        setting: the setting it should hold.
        seed: the seed it should hold.

    Raises:
        SpecError: ``use``, ``drop`` or ``train.seed`` of ``config.yaml`` differ.
    """
    saved = read_saved_config(run_dir)
    if saved is None:
        return  # nothing saved yet: fit decides (it restarts such a folder)
    use = saved.get("use")
    use = [use] if isinstance(use, str) else list(use or [])
    drop = saved.get("drop") or []
    got_seed = (saved.get("train") or {}).get("seed")
    found = None
    if use != list(setting.use) or drop:
        found = f"modalities use={use} drop={list(drop) if drop else None}"
        expected = f"use={list(setting.use)}"
    elif got_seed != seed:
        found, expected = f"seed {got_seed}", f"seed {seed}"
    if found:
        raise SpecError(
            f"the run folder holds another run ({found}; the {setting.short} run needs {expected})",
            str(run_dir / "config.yaml"),
            "remove that folder or give the ablation another --out",
        )


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _sources(run_dir: Path, split: str) -> dict[str, Any]:
    return {
        "best": _stamp(run_dir / "checkpoints" / "best.ckpt"),
        "metrics": _stamp(run_dir / "metrics.csv"),
        "test": _stamp(run_dir / f"metrics_{split}.csv"),
    }


def _made() -> dict[str, Any]:
    """What a row's timings depend on besides its files: the package version and the torch
    thread count (:func:`modalens.fingerprint.provenance`)."""
    return provenance()


def _cached_row(path: Path, sources: Mapping[str, Any], limit: int | None) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    current = {"sources": dict(sources), "timing_samples": limit, "provenance": _made()}
    if differences({k: saved.get(k) for k in current}, current):
        return None
    row = saved.get("row")
    return row if isinstance(row, dict) else None


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The metric columns of a test table.

    Args:
        table: a ``metrics_<split>.csv`` table.

    Returns:
        Its columns but ``id``, ``loss`` and counts (``n``, ``aux_<m>_n``), in order (the
        task's headline first).
    """
    return [c for c in table.columns if c not in NOT_METRICS and not is_count(c)]


def is_count(column: str) -> bool:
    """A count column, never a metric: ``n``, ``n_test``, an auxiliary task's ``aux_<m>_n``."""
    return column == "n" or column.endswith("_n") or column.startswith("n_")


def table_row(
    setting: Setting, seed: int, run_dir: Path, metrics: pd.DataFrame, cost: Mapping[str, Any]
) -> dict[str, Any]:
    """The Table I row of one run.

    Args:
        setting: the run's setting.
        seed: its seed.
        run_dir: its folder.
        metrics: its test table (pooled ``id == "all"`` row first).
        cost: :func:`~.measure.measure_run`'s figures.

    Returns:
        The row (columns of :mod:`.table`).
    """
    pooled = metrics[metrics["id"].astype(str) == "all"]
    values = pooled.iloc[0] if len(pooled) else pd.Series(dtype=float)
    row: dict[str, Any] = {
        "setting": setting.name,
        "label": setting.label,
        "kind": setting.kind,
        "modality": setting.modality or "",
        "modalities": "+".join(setting.use),
        "n_modalities": len(setting.use),
        "seed": str(seed),
        "n_seeds": 1,
    }
    for col in metric_columns(metrics):
        v = values.get(col, math.nan)
        row[col] = float(v) if v is not None and not pd.isna(v) else math.nan
    row["n_test"] = int((metrics["id"].astype(str) != "all").sum())
    row.update(
        {k: cost[k] for k in ("epochs", "train_s_per_epoch", "infer_s_per_sample", "parameters")}
    )
    row["run"] = str(Path("runs") / run_dir.name)
    return row


def run_setting(
    setting: Setting,
    seed: int,
    config: Mapping[str, Any],
    out: Path,
    *,
    progress: bool = False,
    timing_samples: int | None = None,
    split: str = "test",
) -> RunRecord:
    """Bring one run of the ablation to the finished state (see the module docstring).

    Args:
        setting: the setting.
        seed: the seed (``train.seed``).
        config: the run config (:func:`~.settings.run_config`).
        out: the ablation folder (runs go to ``out/runs``, rows to ``out/rows``).
        progress: show Lightning's progress bar while training (ablate passes False).
        timing_samples: time the forward pass on only this many test samples (None: all).
        split: the split tested and timed.

    Returns:
        The :class:`RunRecord`.

    Raises:
        SpecError: the folder holds another setting, seed or configuration.
        ModelError: training ended without a best checkpoint.
    """
    start = time.perf_counter()
    run_dir = out / "runs" / setting.run_name(seed)
    started = run_dir.is_dir() and any(run_dir.iterdir())
    finished = started and is_finished(run_dir, split)
    if started:
        check_folder(run_dir, setting, seed)
        try:
            fit(config, out=run_dir, resume=True, progress=progress)
        except ModalensError as exc:
            raise type(exc)(f"ablation run {run_dir.name}: {exc}") from None
    else:
        fit(config, out=run_dir, resume=False, progress=progress)
    if not (run_dir / "checkpoints" / "best.ckpt").is_file():
        raise ModelError(
            "the run has finished training but has no checkpoints/best.ckpt",
            str(run_dir),
            "delete the run folder and rerun the ablation to train it again",
        )
    if finished:
        metrics = pd.read_csv(run_dir / f"metrics_{split}.csv", dtype={"id": str})
    else:
        metrics = evaluate(run_dir, split=split)
    row_path = out / "rows" / f"{run_dir.name}.json"
    sources = _sources(run_dir, split)
    row = _cached_row(row_path, sources, timing_samples)
    if row is None:
        cost = measure_run(run_dir, split=split, limit=timing_samples)
        row = table_row(setting, seed, run_dir, metrics, cost)
        cached = {"sources": sources, "timing_samples": timing_samples, "provenance": _made()}
        atomic_write_json(row_path, {"row": row, **cached})
    status = "skipped" if finished else ("resumed" if started else "trained")
    seconds = time.perf_counter() - start
    return RunRecord(setting, seed, run_dir, status, row, seconds, metric_columns(metrics))
