"""GeoTIFF input and output.

Writing: :func:`write_geotiff` writes tiled, compressed GeoTIFFs with CRS, transform and
no-data kept, atomically (see :mod:`modalens.io`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from .io import atomic_path


def write_geotiff(
    path: str | Path,
    array: np.ndarray,
    crs: Any,
    transform: Affine,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    blocksize: int = 256,
    compress: str = "deflate",
    tags: dict[str, Any] | None = None,
) -> Path:
    """Write ``array`` ([bands, H, W] or [H, W]) as a tiled GeoTIFF, atomically.

    The dtype of the file is the array's dtype. Tiles are ``blocksize`` square when the raster
    is at least that large (GeoTIFF tiles must be multiples of 16), otherwise striped.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected a [bands, H, W] array, got shape {arr.shape}")
    count, height, width = arr.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": arr.dtype.name,
        "crs": crs,
        "transform": transform,
        "compress": compress,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    if height >= blocksize and width >= blocksize and blocksize % 16 == 0:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if arr.dtype.kind == "f":
        profile["predictor"] = 3 if compress != "none" else 1
    elif compress != "none":
        profile["predictor"] = 2
    if compress == "none":
        profile.pop("compress")
        profile.pop("predictor", None)
    path = Path(path)
    with atomic_path(path, suffix=".tmp.tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, str(name))
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path
