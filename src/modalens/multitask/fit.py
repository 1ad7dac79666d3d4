"""``modalens mtl fit``: train a multitask run, test it and report its parameters per head.

:func:`fit_multitask` is :func:`modalens.training.fit` for a config with an ``auxiliary``
section (refused without one, so a typo does not silently train a single-task model), followed
by :func:`modalens.training.evaluate` and ``RUN/parameters.csv`` (columns ``part``, ``parameters``:
the encoder, the decoder(s), each head, ``main`` -- what predicting the main task uses -- and
``total``; :meth:`modalens.models.MultiTaskUNet.parameter_counts`). A finished run folder is
left as it is (``resume`` continues an interrupted one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import SpecError
from ..io import atomic_write_csv
from ..models.multitask import MultiTaskUNet
from ..training import evaluate, fit, load_config, load_run


def parameter_table(run_dir: str | Path) -> pd.DataFrame:
    """Trainable parameters per part of a run's model, written to ``RUN/parameters.csv``.

    Args:
        run_dir: a trained run folder.

    Returns:
        The table (``part``, ``parameters``).
    """
    model = load_run(run_dir).model
    if isinstance(model, MultiTaskUNet):
        counts = model.parameter_counts()
    else:
        total = sum(p.numel() for p in model.parameters() if p.requires_grad)
        counts = {"main": total, "total": total}
    table = pd.DataFrame({"part": list(counts), "parameters": list(counts.values())})
    atomic_write_csv(Path(run_dir) / "parameters.csv", table)
    return table


def fit_multitask(
    config: str | Path | Mapping[str, Any],
    out: str | Path | None = None,
    root: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train, test and report a multitask run (see the module docstring).

    Args:
        config: a run config (YAML path or dict) with ``inputs`` and ``auxiliary``.
        out: the run folder (default ``runs/<name>``).
        root: the dataset folder (overrides ``data.root``).
        resume: continue an interrupted run in ``out``.
        progress: show Lightning's progress bar.

    Returns:
        The run folder (``metrics_test.csv`` and ``parameters.csv`` written).

    Raises:
        SpecError: the config has no ``auxiliary`` section or is invalid.
    """
    overrides = {"data": {"root": str(root)}} if root is not None else None
    cfg = load_config(config, overrides)
    if cfg.auxiliary is None:
        where = f"key 'auxiliary' in {config}" if isinstance(config, (str, Path)) else None
        raise SpecError(
            "the config names no auxiliary modalities",
            where or "key 'auxiliary'",
            "add auxiliary: {targets: [s1, ...]} or train it with modalens fit",
        )
    run_dir = fit(config, out=out, resume=resume, progress=progress, overrides=overrides)
    evaluate(run_dir)
    parameter_table(run_dir)
    return run_dir
