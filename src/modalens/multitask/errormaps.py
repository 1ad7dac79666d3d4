"""Per-pixel error maps of every head of a multitask run, and their GeoTIFFs.

:func:`head_error_map` turns a head's output and target into one error per pixel: the absolute
error averaged over bands for continuous heads (regression: target units / scale, 0-1 for the
naturalness index; auxiliary continuous modalities: their normalised units) and the
cross-entropy ``-log p(true class)`` for categorical heads (segmentation, categorical auxiliary
modalities); NaN where the pixel is invalid. :func:`collect_errors` runs a run's split once
(its deterministic evaluation crops) and keeps, per sample, every head's map, its mean (the
sample's error) and the grid of its window; a scene-level main head (classification) has no
map and its error is the task's per-sample loss. :func:`write_error_maps` writes the maps as
GeoTIFFs on the sample's grid (CRS and transform of the window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..data.auxiliary import aux_key, aux_valid_key
from ..data.dataset import collate
from ..data.grid import RasterGrid
from ..data.rasters import write_geotiff
from ..models.multitask import MAIN_HEAD
from ..progress import bar
from ..tasks.losses import valid_pixels
from ..training.run import Run


@dataclass
class SampleErrors:
    """One sample's errors.

    Attributes:
        sample_id: the sample.
        errors: head -> the sample's error (the mean of its map).
        maps: head -> ``[H, W]`` float32 error map (NaN where invalid); no ``main`` entry for a
            scene-level main task.
        grid: the grid of the sample's window (for georeferencing).
    """

    sample_id: str
    errors: dict[str, float] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    grid: RasterGrid | None = None


def head_error_map(output: Tensor, target: Tensor, valid: Tensor, categorical: bool) -> Tensor:
    """Per-pixel error ``[B, H, W]`` of one head (see the module docstring).

    Args:
        output: the head's float output ``[B, K, H, W]`` (logits for categorical heads).
        target: ``[B, K, H, W]`` values, or ``[B, H, W]`` class indices (-1: invalid).
        valid: bool ``[B, H, W]``.
        categorical: score by cross-entropy instead of absolute error.

    Returns:
        Float32 errors, NaN where ``valid`` is False (or the class is -1).
    """
    valid = valid.to(torch.bool)
    if categorical:
        t = target.long()
        valid = valid & (t >= 0)
        logp = F.log_softmax(output.float(), dim=1)
        err = -logp.gather(1, t.clamp(min=0)[:, None])[:, 0]
    else:
        t = target.float()
        if t.ndim == output.ndim - 1:
            t = t[:, None]
        err = (output.float() - t).abs().mean(dim=1)
        valid = valid & torch.isfinite(err)
    return torch.where(valid, err, torch.full_like(err, float("nan")))


def _mean(values: np.ndarray) -> float:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else float("nan")


def collect_errors(
    run: Run,
    split: str = "test",
    batch_size: int = 8,
    progress: bool = False,
) -> list[SampleErrors]:
    """Every head's error maps and per-sample errors over a run's split.

    Args:
        run: a loaded multitask run (:func:`modalens.training.load_run`).
        split: ``train``, ``val`` or ``test``.
        batch_size: samples per forward pass.
        progress: show a progress bar.

    Returns:
        One :class:`SampleErrors` per sample of the split, in order.
    """
    module, task = run.module, run.task
    ds = run.dataset(split)
    dl = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=0)
    reader = run.reader()
    device = run.device
    out: list[SampleErrors] = []
    it = bar(dl, progress, desc=f"errors {split}", unit="batch")
    with torch.inference_mode():
        for batch in it:
            batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
            outputs = module.predict_all(batch)
            valid = valid_pixels(batch.get("valid"), batch["image"])
            maps: dict[str, np.ndarray] = {}
            if task.dense:
                cat = task.name != "regression"
                m = head_error_map(outputs[MAIN_HEAD], batch["target"], valid, cat)
                maps[MAIN_HEAD] = m.cpu().numpy()
            for name, aux in module.aux_tasks.items():
                ok = valid & batch[aux_valid_key(name)].to(torch.bool)
                cat = aux.name != "regression"
                m = head_error_map(outputs[name], batch[aux_key(name)], ok, cat)
                maps[name] = m.cpu().numpy()
            for i, sid in enumerate(batch["id"]):
                item = SampleErrors(str(sid))
                if not task.dense:
                    one = {
                        k: (v[i : i + 1] if isinstance(v, Tensor) else v) for k, v in batch.items()
                    }
                    res = module.compute(one, output={k: v[i : i + 1] for k, v in outputs.items()})
                    item.errors[MAIN_HEAD] = float(res["loss"])
                for head, arr in maps.items():
                    item.maps[head] = arr[i].astype(np.float32)
                    item.errors[head] = _mean(arr[i])
                window = batch["window"][i] if "window" in batch else None
                item.grid = reader.grid(str(sid)).window_grid(window)
                out.append(item)
    return out


def write_error_maps(sample: SampleErrors, folder: str | Path, run_dir: str | Path) -> list[Path]:
    """Write ``folder/<id>_<head>_error.tif`` for every head's map of ``sample`` (float32, NaN
    no-data, on the sample window's grid)."""
    paths: list[Path] = []
    grid = sample.grid
    if grid is None:
        return paths
    for head, arr in sample.maps.items():
        paths.append(
            write_geotiff(
                Path(folder) / f"{sample.sample_id}_{head}_error.tif",
                arr,
                grid.crs,
                grid.transform,
                nodata=float("nan"),
                band_names=[f"{head} error"],
                tags={"modalens_run": str(Path(run_dir).resolve()), "head": head},
            )
        )
    return paths
