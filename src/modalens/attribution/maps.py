"""Occlusion sensitivity maps: per group and pixel, how much the prediction changes.

:func:`sensitivity_map_fn` turns an engine into a tile function ``fn(x [B,C,h,w]) ->
[B,G,h,w]``: per pixel ``|prediction - occluded prediction|`` per group (averaged, or the
maximum, over output channels); all occlusions of a call go through chunked batched forwards,
and noise comes from one generator seeded per strategy, so a fixed tiling is reproducible.
Strategies that need other samples (``permute``) have no meaning for single scenes.
:func:`occlusion_map_fn` builds one for a model; :func:`occlusion_maps` writes whole-scene
maps of a trained run through :func:`modalens.training.tiling.sliding_window` as georeferenced
float32 GeoTIFFs (one band per group) with a preview per group (PNG + SVG, on map coordinates);
for scene classifiers, which predict no map, per window (:mod:`~.scenemaps`). The noise of a
scene's map restarts from the same seed for every scene, so a scene's map does not depend on
the scenes before it; with several processes (:mod:`~.sharding`) each rank maps its share of
the scenes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.rasters import write_geotiff
from ..data.samples import sample_ids
from ..errors import SpecError
from ..io import check_output
from ..plotting import label
from ..training.run import load_run
from ..training.runfolder import RunFolder
from ..training.tiling import sliding_window
from .engine import OcclusionEngine
from .figures import occlusion_map_preview
from .groups import Groups, groups_for
from .options import AttributionOptions, resolve_options
from .run import run_options
from .scenemaps import SCENE_MAP_QUANTITY, scene_sensitivity
from .sharding import launch
from .strategies import STRATEGIES, stable_seed

REDUCTIONS = ("mean", "max")

#: the colour bar label of a sensitivity map
MAP_QUANTITY = "|prediction - occluded prediction| (normalised units)"


def sensitivity_map_fn(
    engine: OcclusionEngine, strategy: str | None = None, reduce: str = "mean"
) -> Callable[[Tensor], Tensor]:
    """A tile function of ``engine``: ``fn(x [B,C,h,w]) -> [B,G,h,w]`` float32 on the CPU.

    Args:
        engine: the engine (its groups, seed, mean, precision and chunk size).
        strategy: the fill (default: the engine's first strategy).
        reduce: over output channels: ``mean`` or ``max``.

    Returns:
        The tile function.

    Raises:
        SpecError: an unknown strategy or reduction, or a strategy that needs other samples.
    """
    strategy = strategy or engine.options.strategies[0]
    if STRATEGIES.get(strategy).needs_batch:
        single = STRATEGIES.names(lambda s: not s.needs_batch)
        raise SpecError(
            f"{strategy} has no meaning for single scenes",
            "--strategy",
            f"use {', '.join(single)}",
        )
    if reduce not in REDUCTIONS:
        raise SpecError(f"unknown reduction {reduce!r}", "reduce", "use mean or max")
    gen = torch.Generator().manual_seed(stable_seed(engine.options.seed, "map", strategy))

    def fn(x: Tensor) -> Tensor:
        x = x.to(engine.device).float()
        engine.prepare(x)
        with torch.inference_mode():
            return _map(engine, x, strategy, gen, reduce)

    return fn


def _map(
    engine: OcclusionEngine, x: Tensor, strategy: str, gen: torch.Generator, reduce: str
) -> Tensor:
    ax = engine.axis(x)
    c = x.shape[ax]
    gm = engine.group_matrix(c)
    b, g = x.shape[0], len(engine.group_names)
    f = engine.make_fill(strategy, 0, [""] * b, x, generator=gen)
    if f.kind not in ("constant", "per_sample"):
        raise SpecError(f"{strategy} gives no fill for single scenes", "--strategy")
    assert f.value is not None
    fill = f.value.expand_as(x) if f.kind == "constant" else f.value
    step = engine.chunk_length(x)
    pred = torch.cat([engine.runner.predict(x[s : s + step]) for s in range(0, b, step)])
    tasks = [(i, gi) for gi in range(g) for i in range(b)]
    out = torch.empty((b, g, *pred.shape[2:]), dtype=torch.float32)
    for s in range(0, len(tasks), step):
        chunk = tasks[s : s + step]
        rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
        gis = torch.as_tensor([t[1] for t in chunk], dtype=torch.long)
        cm = gm[gis].reshape(engine.broadcast_shape(x, len(chunk), c)).to(x.device)
        occ = torch.where(cm, fill[rows], x[rows])
        d = (pred[rows] - engine.runner.predict(occ)).abs()
        d = d.mean(1) if reduce == "mean" else d.amax(1)
        out[rows, gis] = d.cpu()
    return out


def occlusion_map_fn(
    model: nn.Module,
    groups: Groups,
    strategy: str | None = None,
    options: AttributionOptions | None = None,
    *,
    input_fn: Callable[[Tensor], Tensor] | None = None,
    reduce: str = "mean",
    **overrides: Any,
) -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.training.tiling.sliding_window` with one output
    channel per group: per pixel ``|prediction - prediction with the group occluded|``.

    Args:
        model: the model.
        groups: channel groups.
        strategy: the fill (default: the first strategy of the options).
        options: the :class:`~.options.AttributionOptions` (its levels are ignored).
        input_fn: prepares raw tiles (e.g. masking) first.
        reduce: over output channels: ``mean`` or ``max``.
        **overrides: fields of :class:`~.options.AttributionOptions`.

    Returns:
        ``fn(x [B,C,h,w]) -> [B,G,h,w]``.
    """
    opts = resolve_options(options, **overrides)
    strategy = strategy or opts.strategies[0]
    single = opts.replace(strategies=(strategy,), levels=("output",))
    engine = OcclusionEngine(model, groups, single)
    fn = sensitivity_map_fn(engine, strategy, reduce)
    if input_fn is None:
        return fn
    return lambda x: fn(input_fn(x))


def occlusion_maps(
    run_dir: str | Path,
    ids: Sequence[str] | None = None,
    out: str | Path | None = None,
    options: AttributionOptions | None = None,
    *,
    split: str = "test",
    groups: str | Groups = "modalities",
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    preview: bool = True,
    progress: bool = False,
    data_root: str | Path | None = None,
    window: int | None = None,
    devices: int = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    **overrides: Any,
) -> list[Path]:
    """Spatial occlusion sensitivity maps of whole scenes of a trained run.

    Per strategy, group and pixel ``|prediction - prediction with the group occluded|``, by
    sliding window (memory bounded by the tile), written as one georeferenced float32 GeoTIFF
    per scene and strategy (``<id>_occlusion_<strategy>.tif``, one band per group, NaN where
    the scene is invalid) plus a preview per group (``..._<group>.png`` and ``.svg``). A scene
    classifier's map gives each square window of ``window`` px (default: 8 windows along the
    shorter side) the mean change of the class probabilities when the group is occluded in it
    (:func:`~.scenemaps.window_map_fn`; tag ``window`` in the GeoTIFF).

    Args:
        run_dir: the run folder.
        ids: the scenes (default: the ``split``'s ids).
        out: the output folder (default ``RUN/occlusion_maps``).
        options: the :class:`~.options.AttributionOptions` (strategies, seed, precision ...;
            default: its defaults, the ``mean`` fill). Maps are always at output level (the
            change of the prediction per pixel needs no target; the loss level of the run-level
            default is a per-sample score).
        split: the split whose ids are the default.
        groups: ``"modalities"``, ``"bands"`` or explicit channel groups.
        tile: tile size of the sliding window.
        overlap: overlap of neighbouring tiles.
        batch_size: tiles per forward batch.
        preview: write the previews (PNG + SVG).
        progress: show a progress bar.
        data_root: points the run's spec at another copy of the data.
        window: window side in pixels of a scene classifier's map.
        devices: processes per node; above 1 (or with ``num_nodes`` above 1) the scenes are
            shared round robin among the ranks (:func:`~.sharding.launch`), each writing its
            own scenes' files.
        num_nodes: machines.
        accelerator: ``auto``, ``cpu``, ``gpu``/``cuda`` or ``mps``.
        **overrides: fields of :class:`~.options.AttributionOptions`.

    Returns:
        The files written, in scene order (on ranks other than 0 of a sharded run: none;
        rank 0 returns every rank's files once all are written).
    """
    opts = resolve_options(options, **overrides)
    with launch(devices, num_nodes, accelerator) as shard:
        if shard.device is not None and opts.device is None:
            opts = opts.replace(device=str(shard.device))
        if out is not None:  # checked before any work; the default once the run is found
            out = check_output(out)
        run = load_run(run_dir, data_root=data_root)
        out = out if out is not None else check_output(RunFolder(run_dir).occlusion_maps)
        grp = groups_for(run.spec, groups)
        opts = run_options(run, opts)
        engines = {
            s: OcclusionEngine(run.model, grp, opts.replace(strategies=(s,), levels=("output",)))
            for s in opts.strategies
        }
        reader = run.reader()
        if ids is None:
            ids = sample_ids(run.spec)[split]
        written: list[Path] = []
        names = list(grp)
        tiling = {"tile": tile, "overlap": overlap, "batch_size": batch_size, "progress": progress}
        quantity = MAP_QUANTITY if run.task.dense else SCENE_MAP_QUANTITY
        preview_quantity = quantity if preview else None
        for sid in map(str, shard.pick(list(ids))):
            for strategy in opts.strategies:
                arr, tags = _scene_map(run, reader, sid, engines[strategy], names, window, tiling)
                grid = reader.grid(sid)
                written += _write_map(out, sid, arr, grid, names, tags, preview_quantity)
        if not shard.sharded:
            return written
        shard.barrier()  # every rank's scenes are written
        if not shard.main:
            return []
        return [p for sid in ids for p in map_files(out, str(sid), opts.strategies, names, preview)]


def _scene_map(
    run: Any,
    reader: Any,
    sid: str,
    engine: OcclusionEngine,
    names: Sequence[str],
    window: int | None,
    tiling: dict[str, Any],
) -> tuple[np.ndarray, dict[str, str]]:
    """``(map [G, H, W], GeoTIFF tags)`` of one scene for ``engine``'s one strategy: per pixel
    by sliding window (``tiling``: its tile, overlap, batch size and progress) for a dense
    task, per window (:func:`~.scenemaps.scene_sensitivity`) for a scene classifier."""
    strategy = engine.options.strategies[0]
    tags = {"strategy": strategy, "groups": ",".join(names)}
    if not run.task.dense:
        arr, used = scene_sensitivity(run, sid, reader, engine, strategy, window)
        return arr, {**tags, "window": str(used)}
    pixels = sliding_window(
        sensitivity_map_fn(engine, strategy),
        reader,
        sid,
        out_channels=len(names),
        multiple=run.model.downsampling,
        fill=float("nan"),
        **tiling,
    )
    assert isinstance(pixels, np.ndarray)  # no valid mask asked for
    return pixels, tags


def _write_map(
    out: Path,
    sid: str,
    arr: np.ndarray,
    grid: Any,
    names: Sequence[str],
    tags: dict[str, str],
    quantity: str | None,
) -> list[Path]:
    """Write one scene's map as a GeoTIFF and, with a ``quantity`` (the previews' colour bar
    label), a preview per group; the files in :func:`map_files` order."""
    strategy = tags["strategy"]
    path = out / f"{sid}_occlusion_{strategy}.tif"
    write_geotiff(
        path,
        arr.astype(np.float32),
        grid.crs,
        grid.transform,
        nodata=float("nan"),
        band_names=list(names),
        tags=tags,
    )
    written = [path]
    if quantity is None:
        return written
    for gi, name in enumerate(names):
        png = out / f"{sid}_occlusion_{strategy}_{name}.png"
        occlusion_map_preview(
            arr[gi],
            png,
            title=f"Sensitivity to {label(name)}, sample {sid} ({label(strategy)} fill)",
            transform=grid.transform,
            crs=grid.crs,
            quantity=quantity,
        )
        written.extend([png, png.with_suffix(".svg")])
    return written


def map_files(
    out: Path, sid: str, strategies: Sequence[str], names: Sequence[str], preview: bool = True
) -> list[Path]:
    """The files :func:`occlusion_maps` writes for scene ``sid``, in its order."""
    files: list[Path] = []
    for strategy in strategies:
        files.append(out / f"{sid}_occlusion_{strategy}.tif")
        if preview:
            for name in names:
                png = out / f"{sid}_occlusion_{strategy}_{name}.png"
                files.extend([png, png.with_suffix(".svg")])
    return files
