"""TODO docstring: attribution/maps.py"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from ..data.rasters import write_geotiff
from ..data.samples import sample_ids
from ..training.run import load_run
from ..training.runfolder import RunFolder
from ..training.tiling import sliding_window
from .engine import OcclusionEngine
from .figures import occlusion_map_preview
from .groups import Groups, _groups_for
from .run import _run_mean


def occlusion_map_fn(
    model: nn.Module,
    groups: Groups,
    strategy: str = "zeros",
    *,
    channel_axis: int = 1,
    seed: int = 0,
    mean: Sequence[float] | None = None,
    precision: str = "fp32",
    optimize: bool = True,
    input_fn: Callable[[Tensor], Tensor] | None = None,
) -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.inference.sliding_window` with one output channel
    per group: per pixel ``|prediction - prediction with the group occluded|`` (averaged
    over output channels). ``input_fn`` prepares raw tiles (e.g. masking) first."""
    engine = OcclusionEngine(
        model,
        groups,
        strategies=(strategy,),
        levels=("output",),
        channel_axis=channel_axis,
        seed=seed,
        mean=mean,
        precision=precision,
        optimize=optimize,
    )
    fn = engine.map_fn(strategy)
    if input_fn is None:
        return fn
    return lambda x: fn(input_fn(x))


def occlusion_maps(
    run_dir: str | Path,
    ids: Sequence[str] | None = None,
    out: str | Path | None = None,
    *,
    split: str = "test",
    strategy: str = "zeros",
    groups: str | Groups = "modalities",
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    seed: int = 0,
    precision: str = "fp32",
    preview: bool = True,
    progress: bool = False,
    data_root: str | Path | None = None,
) -> list[Path]:
    """Spatial occlusion sensitivity maps of whole scenes: per group and pixel
    ``|prediction - prediction with the group occluded|``, by sliding window (memory bounded by
    the tile), written as one georeferenced float32 GeoTIFF per scene (one band per group,
    NaN where the scene is invalid) plus a PNG preview per group. Returns the files written.

    ``ids`` default to the ``split``'s ids; ``out`` to ``RUN/occlusion_maps``; ``data_root``
    points the run's spec at another copy of the data.
    """

    run = load_run(run_dir, data_root=data_root)
    out = Path(out) if out is not None else RunFolder(run_dir).occlusion_maps
    grp = _groups_for(run.spec, groups)
    mean = _run_mean(run) if strategy == "mean" else None
    fn = occlusion_map_fn(run.model, grp, strategy, seed=seed, mean=mean, precision=precision)
    reader = run.reader()
    if ids is None:

        ids = sample_ids(run.spec)[split]
    written: list[Path] = []
    names = list(grp)
    for sid in ids:
        arr, valid = sliding_window(
            fn,
            reader,
            str(sid),
            tile=tile,
            overlap=overlap,
            out_channels=len(names),
            batch_size=batch_size,
            progress=progress,
            multiple=run.model.downsampling,
            return_valid=True,
            fill=float("nan"),
        )
        grid = reader.grid(str(sid))
        path = out / f"{sid}_occlusion_{strategy}.tif"
        write_geotiff(
            path,
            arr.astype(np.float32),
            grid.crs,
            grid.transform,
            nodata=float("nan"),
            band_names=names,
            tags={"strategy": strategy, "groups": ",".join(names)},
        )
        written.append(path)
        if preview:
            for gi, name in enumerate(names):
                png = out / f"{sid}_occlusion_{strategy}_{name}.png"
                occlusion_map_preview(arr[gi], png, title=f"{sid}: {name} ({strategy})")
                written.append(png)
    return written
