"""Evaluating a run: :func:`evaluate` writes ``metrics_<split>.csv``.

The best checkpoint is run once per batch over the split's deterministic evaluation crops; each
sample is then scored on its own (its valid pixel count ``n``, ``loss`` and the task's per-sample
metrics, :meth:`~modalens.tasks.Task.sample_metrics`) and feeds the task's metric collection,
whose values make the pooled first row ``id = "all"`` (over every valid pixel -- sample for
classification -- of the split; its loss is the ``n``-weighted mean). A multitask run's table
adds, per auxiliary modality ``<m>``, ``aux_<m>_n``, ``aux_<m>_loss`` and its task's metrics
``aux_<m>_<metric>`` (per sample; pooled in the ``all`` row).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data.dataset import collate
from ..deprecation import deprecated_alias
from ..errors import OutputError
from ..io import atomic_write_csv, check_output
from ..progress import bar
from .run import load_run
from .runfolder import RunFolder
from .runstate import warn_if_unfinished


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
) -> pd.DataFrame:
    """Evaluate the best checkpoint on ``split`` and write ``metrics_<split>.csv`` atomically.

    The table has one row per sample (``id``, valid pixel count ``n``, ``loss`` and the task's
    metrics) after a first row ``id = "all"`` pooled over every valid pixel (sample for
    classification) of the split. Regression errors are in target units / scale (0-1 for the
    naturalness index, as in the paper's Table I).

    Args:
        run_dir: the run folder.
        split: ``train``, ``val`` or ``test``.
        batch_size: samples per forward pass (default: the run's).
        device: where to run (default: CUDA when available).
        progress: show a progress bar.
        out: the CSV file to write (default ``RUN/metrics_<split>.csv``). When the default
            cannot be written (a read-only run folder, a full disk) the table is still returned,
            with the reason in ``table.attrs["not_saved"]``; an explicit ``out`` that cannot be
            written raises.
        data_root: the folder holding the run's data when it is no longer where the run
            recorded it (:func:`~modalens.training.run.run_spec`).

    A run whose training did not finish (``state.json``, :mod:`.runstate`) is evaluated
    after one warning line naming the epoch reached and the command that finishes it.

    Returns:
        The table (``table.attrs["saved"]``: the file written).

    Raises:
        OutputError: ``out`` was given and cannot be written.
        DataError: the run's data folder is missing (pass ``data_root``).
    """
    if out is not None:  # checked before any work; the run folder's default is tried at the end
        check_output(out, "file")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, data_root=data_root, device=device)
    warn_if_unfinished(run_dir)
    module, task = run.module, run.task
    ds = run.dataset(split)
    bs = batch_size or run.config.train.batch_size
    dl = DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate, num_workers=0)
    pooled = task.metrics().to(device)
    aux_pooled = {n: t.metrics(f"aux_{n}_").to(device) for n, t in module.aux_tasks.items()}
    aux_tot = {n: [0.0, 0.0] for n in module.aux_tasks}
    rows: list[dict[str, Any]] = []
    tot_loss = tot_n = 0.0
    it = bar(dl, progress, desc=f"test {split}", unit="batch")
    with torch.inference_mode():
        for batch in it:
            batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
            outputs = module.predict_all(batch)  # one forward per batch, scored per sample
            for i, sid in enumerate(batch["id"]):
                one = {k: (v[i : i + 1] if isinstance(v, Tensor) else v) for k, v in batch.items()}
                res = module.compute(one, output={k: v[i : i + 1] for k, v in outputs.items()})
                n = float(res["n"])
                row: dict[str, Any] = {"id": str(sid), "n": int(n), "loss": float(res["loss"])}
                row.update(task.sample_metrics(res["preds"], res["targets"]))
                rows.append(row)
                tot_loss += float(res["loss"]) * n
                tot_n += n
                if res["preds"].shape[0] > 0:
                    pooled.update(res["preds"], res["targets"])
                for name, r in res["aux"].items():
                    a_n = float(r["n"])
                    row[f"aux_{name}_n"] = int(a_n)
                    row[f"aux_{name}_loss"] = float(r["loss"])
                    sample = module.aux_tasks[name].sample_metrics(r["preds"], r["targets"])
                    row.update({f"aux_{name}_{k}": v for k, v in sample.items()})
                    aux_tot[name][0] += float(r["loss"]) * a_n
                    aux_tot[name][1] += a_n
                    if r["preds"].shape[0] > 0:
                        aux_pooled[name].update(r["preds"], r["targets"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {k: float(v) for k, v in pooled.compute().items()} if tot_n > 0 else {}
    # the task's order (each class's scores in class order: how a table names its headline)
    values = {k: values[k] for k in task.metric_dict() if k in values}
    all_row = {"id": "all", "n": int(tot_n), "loss": tot_loss / tot_n if tot_n else math.nan}
    all_row.update(values)
    for name, (a_loss, a_n) in aux_tot.items():
        all_row[f"aux_{name}_n"] = int(a_n)
        all_row[f"aux_{name}_loss"] = a_loss / a_n if a_n else math.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if a_n > 0:
                all_row.update({k: float(v) for k, v in aux_pooled[name].compute().items()})
    table = pd.DataFrame([all_row] + rows)
    target = Path(out) if out is not None else RunFolder(run_dir).test_metrics(split)
    try:
        atomic_write_csv(target, table)
        table.attrs["saved"] = str(target)
    except OutputError as err:
        if out is not None:
            raise
        table.attrs["not_saved"] = str(err)
    return table


#: deprecated name of :func:`evaluate` (removed next release)
test = deprecated_alias(evaluate, "test")
test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
