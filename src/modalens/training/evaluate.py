"""TODO docstring: training/evaluate.py"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data.dataset import collate
from ..io import atomic_path
from ..tasks.metrics import _make_metrics, _sample_metrics
from .run import load_run


def test(
    run_dir: str | Path,
    split: str = "test",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Any:
    """Evaluate the best checkpoint on ``split`` and write ``metrics_<split>.csv`` atomically.

    The table has one row per sample (``id``, valid pixel count ``n``, ``loss`` and the task's
    metrics) after a first row ``id = "all"`` pooled over every valid pixel (sample for
    classification) of the split. Regression errors are in target units / scale (0-1 for the
    naturalness index, as in the paper's Table I).
    """
    import pandas as pd

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, device=device)
    module = run.module
    ds = run.dataset(split)
    bs = batch_size or run.config["train"]["batch_size"]
    dl = DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate, num_workers=0)
    pooled = _make_metrics(run.task, module.hparams.out_channels, module.multilabel).to(device)
    rows: list[dict[str, Any]] = []
    tot_loss = tot_n = 0.0
    it: Any = dl
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(dl, desc=f"test {split}", unit="batch")
    with torch.inference_mode():
        for batch in it:
            batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
            output = module.predict_batch(batch)  # one forward per batch, scored per sample
            for i, sid in enumerate(batch["id"]):
                one = {k: (v[i : i + 1] if isinstance(v, Tensor) else v) for k, v in batch.items()}
                res = module.compute(one, output=output[i : i + 1])
                n = float(res["n"])
                row: dict[str, Any] = {"id": str(sid), "n": int(n), "loss": float(res["loss"])}
                row.update(_sample_metrics(run.task, res, module.multilabel))
                rows.append(row)
                tot_loss += float(res["loss"]) * n
                tot_n += n
                if res["preds"].shape[0] > 0:
                    pooled.update(res["preds"], res["targets"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {k: float(v) for k, v in pooled.compute().items()} if tot_n > 0 else {}
    all_row = {"id": "all", "n": int(tot_n), "loss": tot_loss / tot_n if tot_n else math.nan}
    all_row.update(values)
    table = pd.DataFrame([all_row] + rows)
    path = Path(run_dir) / f"metrics_{split}.csv"
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table

test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
