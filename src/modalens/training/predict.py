"""Whole-scene prediction: one file per scene, written by the run's task.

:func:`predict` reads only the inputs of each scene (:class:`InputReader`, no target needed).
Dense tasks run the model by sliding window (:func:`~modalens.training.tiling.sliding_window`,
memory bounded by the tile) and write a GeoTIFF on the scene's grid
(:meth:`~modalens.tasks.Task.prediction_raster`: scaled values for regression, class codes for
segmentation); scene classification runs the whole scene once and writes a JSON of label
probabilities (:meth:`~modalens.tasks.Task.scene_prediction`).

A multitask run needs only its input modalities: its auxiliary modalities are never read, so
it predicts on data where they are absent. ``auxiliary=True`` also writes each auxiliary head's
reconstruction of a scene (:func:`write_auxiliary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.auxiliary import auxiliary_outputs, denormalize
from ..data.rasters import write_geotiff
from ..data.reader import SampleReader
from ..data.samples import discover_ids, sample_ids
from ..data.spec import TargetSpec
from ..errors import ModelError
from ..io import atomic_write_json, check_output
from ..progress import bar, say
from .dropout import expected_subset_metric, missing_fill
from .module import make_tile_fn
from .run import Run, load_run
from .runfolder import RunFolder
from .tiling import sliding_window


class InputReader:
    """Wraps a :class:`~modalens.data.SampleReader` to read inputs only (no target file
    needed): ``valid`` is the input validity."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def grid(self, sample_id: str) -> Any:
        """The sample's grid (that of its first modality)."""
        return self.reader.grid(sample_id)

    def read(self, sample_id: str, window: Any = None) -> dict[str, Any]:
        """``{"image", "valid", "id", "window"}`` of the inputs on ``window`` (whole scene when
        None)."""
        image, valid = self.reader.read_inputs(sample_id, window)
        return {"image": image, "valid": valid, "id": sample_id, "window": window}


def predict(
    run_dir: str | Path,
    data_root: str | Path | None = None,
    ids: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    split: str = "test",
    device: str | torch.device | None = None,
    precision: str = "fp32",
    progress: bool = False,
    auxiliary: bool = False,
    missing: Sequence[str] = (),
) -> list[Path]:
    """Predict whole scenes by sliding window and write one file per scene into ``out_dir``.

    - regression: ``<id>.tif`` float32, prediction × ``target.scale`` (naturalness 0-100),
      no-data NaN where an input is invalid;
    - segmentation: ``<id>.tif`` uint8 (uint16 if needed) class *codes*, no-data 255
      (65535) where an input is invalid;
    - classification: ``<id>.json`` with the scene's label probabilities.

    GeoTIFFs have the CRS and transform of the scene's grid (its first modality). Only inputs
    are read (no target needed). ``ids`` defaults to the ``split`` of the run's data, or to every
    sample found under ``data_root`` when that is given. ``out_dir`` defaults to
    ``RUN/predictions``.

    Args:
        run_dir: the run folder.
        data_root: another copy of the data (same layout) to predict.
        ids: the scenes (default: the ``split``'s, or every scene under ``data_root``).
        out_dir: the output folder.
        tile: tile edge in pixels (a multiple of the model's downsampling factor).
        overlap: pixels shared by neighbouring tiles (blended).
        batch_size: tiles per forward pass.
        split: the split predicted when ``ids`` and ``data_root`` are not given.
        device: where to run (default: CUDA when available).
        precision: ``fp32`` or ``bf16`` (autocast).
        progress: show a progress bar over scenes.
        auxiliary: also write the auxiliary reconstructions of a multitask run
            (:func:`write_auxiliary`: ``<out_dir>/auxiliary/<modality>/<id>.tif``).
        missing: input modalities absent at deployment: never read, filled as in training
            (the run's modality-dropout fill, else the train mean, with a warning); recorded
            in the GeoTIFF tag ``missing_modalities``.

    Returns:
        The main prediction files written, one per scene.

    Raises:
        ModelError: a bad tile/overlap, a model that does not fit the data, or ``auxiliary``
            for a run without auxiliary heads.
    """

    if out_dir is not None:  # checked before any work; the default once the run is found
        out_dir = check_output(out_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, data_root=data_root, device=device)
    spec, task = run.spec, run.task
    out_dir = out_dir if out_dir is not None else check_output(RunFolder(run_dir).predictions)
    if ids is None:
        ids = discover_ids(spec) if data_root is not None else sample_ids(spec)[split]
    ids = [str(i) for i in ids]
    reader = InputReader(SampleReader(spec))
    reader.reader.missing = missing_fill(run, missing)
    tags = {"missing_modalities": ",".join(missing)} if missing else {}
    expected = expected_subset_metric(run_dir, missing, spec.modality_names) if missing else ""
    if expected:
        say(expected)
    fn = make_tile_fn(run.module, precision)
    if auxiliary and not run.spec.auxiliary:
        raise ModelError(
            "the run has no auxiliary heads", str(run_dir), "predict without --auxiliary"
        )
    paths: list[Path] = []
    it = bar(ids, progress, desc="predict", unit="scene")
    for sid in it:
        if auxiliary:
            write_auxiliary(run, reader, sid, out_dir, tile, overlap, batch_size, precision)
        if not task.dense:
            paths.append(_predict_scene_labels(run, reader, sid, out_dir, precision))
            continue
        grid = reader.grid(sid)
        scores, valid = sliding_window(
            fn,
            reader,
            sid,
            tile=tile,
            overlap=overlap,
            out_channels=task.n_outputs,
            batch_size=batch_size,
            multiple=run.downsampling,
            return_valid=True,
        )
        raster = task.prediction_raster(scores, valid, spec.target)
        del scores  # the raster may be a new array: free the scene-sized scores first
        path = write_geotiff(
            out_dir / f"{sid}.tif",
            raster.array,
            grid.crs,
            grid.transform,
            nodata=raster.nodata,
            band_names=raster.band_names,
            tags={"modalens_run": str(Path(run_dir).resolve()), **raster.tags, **tags},
        )
        paths.append(path)
    return paths


def _predict_scene_labels(
    run: Run, reader: InputReader, sid: str, out_dir: Path, precision: str
) -> Path:
    grid = reader.grid(sid)
    run.check_size(grid.height, grid.width, f"sample {sid!r}")
    item = reader.read(sid)
    image = torch.from_numpy(np.asarray(item["image"], np.float32))[None]
    valid = torch.from_numpy(np.asarray(item["valid"], bool))[None]
    device = run.device
    with torch.inference_mode():
        probs = run.module.infer(image.to(device), valid.to(device), precision=precision)[0]
    labels = run.task.scene_prediction(probs, run.spec.target.classes)
    return atomic_write_json(Path(out_dir) / f"{sid}.json", {"id": sid, **labels})


def write_auxiliary(
    run: Run,
    reader: InputReader,
    sample_id: str,
    out_dir: str | Path,
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    precision: str = "fp32",
) -> list[Path]:
    """Write every auxiliary head's reconstruction of a scene from its inputs alone.

    Continuous modalities are written in their raw units (the normalisation undone, float32,
    one band per modality band, NaN where the inputs are invalid); categorical ones as class
    codes (as segmentation predictions are). Files: ``<out_dir>/auxiliary/<modality>/<id>.tif``
    on the scene's grid (CRS and transform of its first input modality).

    Args:
        run: a loaded multitask run.
        reader: reads the scene's inputs.
        sample_id: the scene.
        out_dir: the prediction folder.
        tile: tile edge in pixels.
        overlap: pixels shared by neighbouring tiles.
        batch_size: tiles per forward pass.
        precision: ``fp32`` or ``bf16``.

    Returns:
        The files written, one per auxiliary modality.
    """
    modalities = run.spec.auxiliary
    grid = reader.grid(sample_id)
    scores, valid = sliding_window(
        make_tile_fn(run.module, precision, auxiliary=True),
        reader,
        sample_id,
        tile=tile,
        overlap=overlap,
        out_channels=sum(auxiliary_outputs(m) for m in modalities),
        batch_size=batch_size,
        multiple=run.downsampling,
        return_valid=True,
    )
    paths: list[Path] = []
    start = 0
    for m in modalities:
        part = scores[start : start + auxiliary_outputs(m)]
        start += auxiliary_outputs(m)
        if m.is_categorical:
            target = TargetSpec(kind="classes", classes=m.classes)
            raster = run.module.aux_tasks[m.name].prediction_raster(part, valid, target)
            array, nodata, names, tags = raster.array, raster.nodata, raster.band_names, raster.tags
        else:
            array = denormalize(m, np.array(part, np.float32))
            array[:, ~valid] = np.nan
            nodata, names, tags = float("nan"), list(m.bands), {}
        path = write_geotiff(
            Path(out_dir) / "auxiliary" / m.name / f"{sample_id}.tif",
            array,
            grid.crs,
            grid.transform,
            nodata=nodata,
            band_names=names,
            tags={"modalens_run": str(Path(run.run_dir).resolve()), "auxiliary": m.name, **tags},
        )
        paths.append(path)
    return paths
