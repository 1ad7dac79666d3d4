"""Running :func:`~.subsets.score_subsets` on a run folder: :func:`evaluate_subsets`.

Writes into ``OUT`` (default ``RUN/subsets-<split>``): ``subsets.csv``, ``samples.csv`` (per
sample and subset), ``performance_shapley.csv`` and ``missing.csv``; each subset's scores are a
part in ``OUT/parts`` keyed by ``OUT/subsets.json`` (the options and the checkpoint's hash,
:func:`modalens.fingerprint.provenance`), so a rerun reuses finished subsets and recomputes all
of them when the checkpoint or an option changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ..attribution.run import run_mean
from ..attribution.shapley import coalition_masks
from ..attribution.strategies import STRATEGIES
from ..data.dataset import collate
from ..fingerprint import differences, provenance
from ..io import atomic_write_csv, atomic_write_json, check_output, make_folder
from ..progress import say, warn
from ..tasks.headline import worse_by
from ..training.run import load_run
from .bootstrap import aggregate, interval, resamples
from .subsets import SubsetsResult, metric_of, missing_table, score_subsets, shapley_values
from .table import build_table, write_table


def run_fill(config: Any, strategy: str | None) -> str:
    """The fill of absent modalities: ``strategy``, else the run's modality-dropout fill, else
    ``mean``.

    Args:
        config: the run config.
        strategy: the asked fill, or None.

    Returns:
        A registered strategy name.
    """
    if strategy:
        return strategy
    drop = getattr(getattr(config, "train", None), "modality_dropout", None)
    fill = getattr(drop, "fill", None) if drop is not None else None
    return str(fill) if fill else "mean"


def _subsets_of(names: list[str]) -> list[tuple[str, ...]]:
    masks = coalition_masks(len(names))
    return [tuple(n for n, on in zip(names, row, strict=True) if on) for row in masks]


def evaluate_subsets(
    run: str | Path,
    split: str = "test",
    strategy: str | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> SubsetsResult:
    """Score every subset of a run's input modalities (the others filled) on ``split``.

    Args:
        run: the run folder.
        split: ``train``, ``val`` or ``test``.
        strategy: the fill of absent modalities (default: the run's ``train.modality_dropout.fill``,
            else ``mean``).
        out: the result folder (default ``RUN/subsets-<split>``).
        batch_size: samples per forward pass (default: the run's).
        device: where to run (default: CUDA when available).
        n_boot: bootstrap resamples of the test samples for the Shapley intervals.
        ci: the intervals' coverage.
        seed: the bootstrap seed.
        progress: show progress.

    Returns:
        The :class:`~.subsets.SubsetsResult`.

    Raises:
        ModelError: ``run`` is not a run folder.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_run(run, device=device)
    folder = Path(out) if out is not None else Path(run) / f"subsets-{split}"
    check_output(folder, "folder")
    cfg = loaded.config
    if getattr(cfg.train, "modality_dropout", None) is None:
        warn(
            f"{run} was trained without train.modality_dropout: subset scores of absent "
            "modalities measure the fill, not the modality's worth"
        )
    fill = run_fill(cfg, strategy)
    fn = STRATEGIES.get(fill).fn
    mean = run_mean(loaded) if fill in ("mean", "nodata") else None
    names = [m.name for m in loaded.spec.modalities]
    options = {"split": split, "strategy": fill, "modalities": names}
    record = {"options": options, "provenance": provenance(checkpoint=loaded.checkpoint)}
    parts = _open_parts(folder, record)
    ds = loaded.dataset(split)
    bs = batch_size or cfg.train.batch_size
    dl = DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate, num_workers=0)
    moved = [
        {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in b.items()} for b in dl
    ]
    pooled, samples = [], []
    for sub in _subsets_of(names):
        key = "+".join(sub) or "none"
        p_row, p_samples = parts / f"{key}.json", parts / f"{key}.csv"
        if p_row.is_file() and p_samples.is_file():
            pooled.append(json.loads(p_row.read_text()))
            samples.append(pd.read_csv(p_samples, dtype={"id": str}))
            continue
        say(f"subset {key}", progress)
        table, rows = score_subsets(
            loaded.module, loaded.task, moved, loaded.spec.channel_slices(), fn, [sub], mean
        )
        row = table.iloc[0].to_dict()
        row["subset"] = key
        rows["subset"] = key
        atomic_write_csv(p_samples, rows)
        atomic_write_json(p_row, row)
        pooled.append(row)
        samples.append(rows)
    return _finish(
        folder, pd.DataFrame(pooled), pd.concat(samples), names, loaded.task.name, n_boot, ci, seed
    )


def _open_parts(folder: Path, record: dict[str, Any]) -> Path:
    """``folder/parts`` keyed by ``record``: kept when it matches, emptied otherwise."""
    parts = folder / "parts"
    path = folder / "subsets.json"
    saved = json.loads(path.read_text()) if path.is_file() else None
    current = json.loads(json.dumps(record, default=str))
    if saved is not None and differences(saved, current, ["provenance.threads"]):
        warn(f"{path} holds another checkpoint or options: its subsets are recomputed")
        shutil.rmtree(parts, ignore_errors=True)
    make_folder(parts)
    atomic_write_json(path, current)
    return parts


def _finish(
    folder: Path,
    pooled: pd.DataFrame,
    samples: pd.DataFrame,
    names: list[str],
    task: str | None,
    n_boot: int,
    ci: float,
    seed: int,
) -> SubsetsResult:
    """Write the tables from the per-subset scores (row 0 of ``pooled``: the all-filled input)."""
    metric = metric_of(task, pooled.columns)
    v = pooled[metric].to_numpy(dtype=np.float64)
    keys = pooled["subset"].tolist()
    phi = shapley_values(v, names, metric)
    wide = samples.pivot(index="id", columns="subset", values=metric)[keys]
    weights = samples.pivot(index="id", columns="subset", values="n")[keys].to_numpy(float)
    idx, boot = resamples(len(wide), n_boot, seed)
    table = (
        np.stack(
            [
                aggregate(wide[k].to_numpy(float), weights[:, j], idx[1:], metric)
                for j, k in enumerate(keys)
            ],
            axis=-1,
        )
        if boot
        else None
    )
    draws = shapley_values(table, names, metric) if table is not None else None
    rows = []
    for i, m in enumerate(names):
        lo, hi = interval(draws[:, i], ci) if draws is not None else (np.nan, np.nan)
        rows.append(
            {
                "modality": m,
                "shapley": float(phi[i]),
                "low": lo,
                "high": hi,
                "metric": metric,
                "v_all": float(v[-1]),
                "v_empty": float(v[0]),
                "note": "v(S): the metric with only S present, the others filled; "
                "v(empty): every modality filled; positive = improves the model; "
                "values sum to the gain of v(all) over v(empty)",
            }
        )
    shap = pd.DataFrame(rows)
    values = {frozenset(k.split("+")): float(x) for k, x in zip(keys[1:], v[1:], strict=True)}
    missing = missing_table(values, names)
    missing["metric"] = metric
    missing["worse_by"] = [worse_by(x, v[-1], metric) for x in missing["value"]]
    table_out = pooled.iloc[1:].sort_values("size", ascending=False, kind="stable")
    table_out = table_out.reset_index(drop=True)
    make_folder(folder)
    atomic_write_csv(folder / "subsets.csv", table_out)
    atomic_write_csv(folder / "samples.csv", samples[samples["subset"] != "none"])
    atomic_write_csv(folder / "performance_shapley.csv", shap)
    atomic_write_csv(folder / "missing.csv", missing)
    _table1(folder, table_out, names)
    return SubsetsResult(table_out, shap, missing, metric, folder)


def _table1(folder: Path, table: pd.DataFrame, names: list[str]) -> None:
    """``table1.csv`` in the ablation's format (all, single and leave-one-out rows)."""
    by = {str(r["subset"]): r for r in table.to_dict(orient="records")}
    metrics = [c for c in table.columns if c not in ("subset", "size", "n")]
    plan = [("all", "all", "", names)]
    plan += [(f"single-{m}", "single", m, [m]) for m in names]
    plan += [(f"leaveout-{m}", "leaveout", m, [o for o in names if o != m]) for m in names]
    rows = []
    for setting, kind, m, used in plan:
        key = "+".join(used)
        if len(used) == 0 or key not in by or (kind == "leaveout" and len(names) < 2):
            continue
        row = {
            "setting": setting,
            "label": setting,
            "kind": kind,
            "modality": m,
            "modalities": key,
            "n_modalities": len(used),
            "seed": 0,
            "n_seeds": 1,
        }
        row.update({k: by[key][k] for k in metrics})
        rows.append(row)
    order = [p[0] for p in plan]
    write_table(
        build_table(rows, metrics, order),
        folder,
        metrics,
        "one model, absent modalities filled (modalens subsets)",
    )
