"""TODO docstring: training/predict.py"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.rasters import write_geotiff
from ..data.reader import SampleReader
from ..data.samples import discover_ids, sample_ids
from ..io import atomic_write_json
from .module import _is_bf16, make_tile_fn
from .run import Run, load_run
from .tiling import sliding_window


class InputReader:
    """Wraps a :class:`~modalens.data.SampleReader` to read inputs only (no target file
    needed): ``valid`` is the input validity."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def grid(self, sample_id: str) -> Any:
        return self.reader.grid(sample_id)

    def read(self, sample_id: str, window: Any = None) -> dict[str, Any]:
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
    precision: str = "32",
    progress: bool = False,
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
    """

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, data_root=data_root, device=device)
    spec = run.spec
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "predictions"
    if ids is None:
        ids = discover_ids(spec) if data_root is not None else sample_ids(spec)[split]
    ids = [str(i) for i in ids]
    reader = InputReader(SampleReader(spec))
    fn = make_tile_fn(run.module, precision)
    target = spec.target
    paths: list[Path] = []
    it: Any = ids
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(ids, desc="predict", unit="scene")
    for sid in it:
        grid = reader.grid(sid)
        if run.task == "classification":
            paths.append(_predict_scene_labels(run, reader, sid, out_dir, precision))
            continue
        pred, valid = sliding_window(
            fn,
            reader,
            sid,
            tile=tile,
            overlap=overlap,
            out_channels=run.module.hparams.out_channels,
            batch_size=batch_size,
            multiple=run.downsampling,
            return_valid=True,
        )
        if run.task == "regression":
            pred *= np.float32(target.scale)  # in place: no second scene-sized array
            pred[:, ~valid] = np.nan
            path = write_geotiff(
                out_dir / f"{sid}.tif",
                pred,
                grid.crs,
                grid.transform,
                nodata=float("nan"),
                band_names=["prediction"],
                tags={"modalens_run": str(Path(run_dir).resolve()), "scale": target.scale},
            )
        else:
            codes = np.asarray(target.classes, dtype=np.int64)
            dtype = np.uint8 if codes.max() < 255 and codes.min() >= 0 else np.uint16
            nodata = 255 if dtype == np.uint8 else 65535
            lab = codes[pred.argmax(0)].astype(dtype)
            lab[~valid] = nodata
            del pred
            path = write_geotiff(
                out_dir / f"{sid}.tif",
                lab,
                grid.crs,
                grid.transform,
                nodata=nodata,
                band_names=["class"],
                tags={"classes": ",".join(map(str, codes.tolist()))},
            )
        paths.append(path)
    return paths


def _predict_scene_labels(
    run: Run, reader: InputReader, sid: str, out_dir: Path, precision: str
) -> Path:
    item = reader.read(sid)
    image = torch.from_numpy(np.asarray(item["image"], np.float32))[None]
    valid = torch.from_numpy(np.asarray(item["valid"], bool))[None]
    module = run.module
    device = run.device
    with torch.inference_mode():
        x = module.prepare_input(image.to(device), valid.to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_is_bf16(precision)):
            logits = module(x).float()[0]
    probs = torch.sigmoid(logits) if module.multilabel else torch.softmax(logits, 0)
    classes = list(run.spec.target.classes or range(len(probs)))
    p = {str(c): round(float(v), 6) for c, v in zip(classes, probs.tolist(), strict=True)}
    if module.multilabel:
        predicted = [c for c, v in p.items() if v >= 0.5]
    else:
        predicted = [max(p, key=p.get)]
    return atomic_write_json(
        Path(out_dir) / f"{sid}.json",
        {"id": sid, "probabilities": p, "predicted": predicted, "multilabel": module.multilabel},
    )
