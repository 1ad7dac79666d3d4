"""GeoTIFF input and output.

Reading: :func:`open_raster` opens a file with one-line :class:`~modalens.errors.DataError`\\ s for
missing, truncated or non-raster files; :class:`~.grid.RasterGrid` describes a pixel grid (CRS,
transform, size) and :func:`read_onto` reads bands of a source *onto* a grid (usually a window of
a sample's reference grid) with windowed reads, so a 256 crop touches only the blocks it needs:

- same CRS and pixel size, integer offset: a plain windowed read (parts outside the source are
  NaN);
- same CRS, pure scale difference (BigEarthNet 20 m / 60 m bands onto the 10 m grid): a windowed
  read with rasterio's ``out_shape`` (bilinear for continuous, nearest for categorical);
- anything else (other CRS, rotation, or a resampled source with a no-data value): a
  :class:`rasterio.vrt.WarpedVRT` onto the grid, which reads only the needed source window and
  keeps no-data out of the resampling kernel.

No-data (the file's and the caller's declared value) becomes NaN; values come back as float32.

Writing: :func:`write_geotiff` writes tiled, compressed GeoTIFFs with CRS, transform and
no-data kept, atomically (see :mod:`modalens.io`).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ..errors import DataError
from ..io import atomic_path
from .grid import RasterGrid, WindowTuple, axis_aligned, close_transform, same_crs
from .remote import RemotePath, as_location, gdal_env, is_remote, raster_open_error

#: tile size of the COGs ``modalens synth --cog`` writes: a 256 crop at a random offset touches
#: at most 3 x 3 tiles (2.25x its pixels; 4x with 256 tiles, 16x with GDAL's default 512)
COG_BLOCKSIZE = 128

_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear}


def open_raster(path: str | Path | RemotePath) -> Any:
    """Open a raster for reading; missing, non-raster or unreadable files are DataErrors.

    A URL (:mod:`modalens.data.remote`) opens through GDAL's virtual file systems.
    """
    path = as_location(path)
    if isinstance(path, RemotePath):
        try:
            with gdal_env():
                return rasterio.open(path.vsi())
        except RasterioError as exc:
            raise raster_open_error(str(path), exc) from None
    if not path.exists():
        raise DataError(
            "raster file not found",
            str(path),
            "check the data root and the modality's path template",
        )
    if path.is_dir():
        raise DataError("expected a raster file but found a folder", str(path), "fix the template")
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        kind = _sniff(path)
        if kind == "truncated or corrupt TIFF":
            what = f"cannot open raster: truncated or corrupt TIFF ({_short(exc)})"
        else:
            what = f"cannot open raster: {kind}"
        raise DataError(what, str(path), "re-download or re-export it as a GeoTIFF") from None


def _sniff(path: Path) -> str:
    try:
        head = path.read_bytes()[:4]
    except OSError:
        return "unreadable file"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "truncated or corrupt TIFF"
    if not head:
        return "empty file"
    return "not a TIFF file"


def _short(exc: BaseException, limit: int = 120) -> str:
    cause = exc.__cause__ or exc.__context__
    if "previous exception" in str(exc) and cause is not None:
        exc = cause
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_error(path: str | Path, exc: BaseException) -> DataError:
    """The DataError for a raster whose data cannot be read (truncated/corrupt file; a remote
    file's whole error, whose end says what the storage answered)."""
    reason = _short(exc, 10**6 if is_remote(path) else 120)
    return DataError(
        f"cannot read raster data, the file may be truncated or corrupt ({reason})",
        str(path),
        "re-download or re-export it",
    )


class RasterCache:
    """A small LRU cache of open rasterio datasets (per process: safe across DataLoader forks)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._files: OrderedDict[str, Any] = OrderedDict()
        self._pid = os.getpid()

    def get(self, path: str | Path | RemotePath) -> Any:
        if os.getpid() != self._pid:  # forked worker: never share GDAL handles with the parent
            self._files = OrderedDict()
            self._pid = os.getpid()
        key = str(path)
        ds = self._files.get(key)
        if ds is not None:
            self._files.move_to_end(key)
            return ds
        ds = open_raster(path)
        self._files[key] = ds
        while len(self._files) > self.size:
            _, old = self._files.popitem(last=False)
            old.close()
        return ds

    def close(self) -> None:
        if os.getpid() == self._pid:
            for ds in self._files.values():
                ds.close()
        self._files = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]


def check_band_indices(
    dataset: Any, bands: Sequence[int] | None, expected: int, what: str = ""
) -> list[int]:
    """The 1-based bands to read; a DataError when the file does not have them.

    ``bands=None`` means every band of the file, which must then have ``expected`` bands.
    """
    count = int(dataset.count)
    label = f" for {what}" if what else ""
    if bands is None:
        if count != expected:
            raise DataError(
                f"wrong band count{label}: file has {count} bands, spec wants {expected}",
                str(dataset.name),
                "fix the modality's bands list or its source 'bands' indices",
            )
        return list(range(1, count + 1))
    bad = [b for b in bands if b < 1 or b > count]
    if bad:
        raise DataError(
            f"wrong band count{label}: file has {count} bands, spec wants band {max(bad)}",
            str(dataset.name),
            "fix the source 'bands' indices or the file",
        )
    return list(bands)


def nodata_values(dataset: Any, declared: float | None = None) -> list[float]:
    """No-data values to turn into NaN: the file's (first band) and the declared one."""
    out: list[float] = []
    nd = dataset.nodata
    if nd is not None and not math.isnan(nd):
        out.append(float(nd))
    if declared is not None and not math.isnan(declared) and declared not in out:
        out.append(float(declared))
    return out


def mask_nodata(arr: np.ndarray, nodata: Sequence[float]) -> np.ndarray:
    """Set pixels equal to any no-data value, and +-inf, to NaN, in place (float array).

    Infinite values are invalid like no-data: they would otherwise reach the statistics and
    the loss as inf (and NaN after normalisation).
    """
    for v in nodata:
        arr[arr == v] = np.nan
    arr[np.isinf(arr)] = np.nan
    return arr


def _float_window(src_t: Affine, grid: RasterGrid) -> tuple[float, float, float, float]:
    """(row, col, height, width) of ``grid`` in the source's pixel coordinates."""
    inv = ~src_t
    x0, y0 = inv @ (grid.transform.c, grid.transform.f)
    x1, y1 = inv @ (grid.transform @ (grid.width, grid.height))
    return (min(y0, y1), min(x0, x1), abs(y1 - y0), abs(x1 - x0))


def _near_int(v: float, tol: float = 1e-6) -> bool:
    return abs(v - round(v)) <= tol


@dataclass(frozen=True)
class ReadPlan:
    """How one source lands on a reference grid (computed once per source and grid)."""

    mode: str  # "direct" | "scale" | "warp"
    row_shift: int = 0
    col_shift: int = 0


def plan_read(dataset: Any, reference: RasterGrid, reference_name: str = "") -> ReadPlan:
    """Decide how to put ``dataset`` onto ``reference``; DataError when they cannot overlap."""
    src = RasterGrid.of(dataset)
    src_crs, ref_crs = dataset.crs, reference.crs
    if (src_crs is None) != (ref_crs is None):
        if src.same_as(RasterGrid(src_crs, reference.transform, reference.width, reference.height)):
            return ReadPlan("direct")
        raise DataError(
            f"cannot put the raster onto the grid of {reference_name or 'the sample'}: "
            "one of them has no CRS",
            str(dataset.name),
            "georeference both files (same CRS) or give them identical grids",
        )
    crs_match = same_crs(src_crs, ref_crs)
    if crs_match and axis_aligned(src.transform) and axis_aligned(reference.transform):
        if not _overlaps(src.bounds, reference.bounds):
            raise _no_overlap(dataset, reference_name)
        if close_transform(
            Affine(src.transform.a, 0, 0, 0, src.transform.e, 0),
            Affine(reference.transform.a, 0, 0, 0, reference.transform.e, 0),
        ):
            row, col, _, _ = _float_window(src.transform, reference)
            if _near_int(row) and _near_int(col):
                return ReadPlan("direct", int(round(row)), int(round(col)))
        return ReadPlan("scale")
    if src_crs is not None and ref_crs is not None:
        try:
            b = transform_bounds(src_crs, ref_crs, *src.bounds)
        except Exception:  # noqa: BLE001 - projection failure means no usable overlap
            raise _no_overlap(dataset, reference_name) from None
        if not _overlaps(b, reference.bounds):
            raise _no_overlap(dataset, reference_name)
    return ReadPlan("warp")


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _no_overlap(dataset: Any, reference_name: str) -> DataError:
    return DataError(
        f"raster does not overlap the sample grid of {reference_name or 'the reference file'}",
        str(dataset.name),
        "check that both files cover the same area (CRS and extent)",
    )


def read_onto(
    dataset: Any,
    grid: RasterGrid,
    bands: Sequence[int],
    plan: ReadPlan | None = None,
    window: WindowTuple | None = None,
    resampling: str = "bilinear",
    nodata: float | None = None,
    out: np.ndarray | None = None,
    raw_dtype: bool = False,
) -> np.ndarray:
    """Read ``bands`` of ``dataset`` onto ``grid`` (or the ``window`` of it) as float32 [B,h,w].

    ``plan`` comes from :func:`plan_read` against the *full* ``grid``; it is computed here when
    omitted. No-data (file and ``nodata``) becomes NaN and pixels outside the source are NaN.
    ``out`` (float32 [B,h,w]) is filled in place when given. ``raw_dtype=True`` returns the
    file's dtype for direct reads fully inside the source (no NaN conversion: used for
    categorical codes, where the caller handles no-data).
    """
    if plan is None:
        plan = plan_read(dataset, grid)
    win = window if window is not None else grid.full_window
    sub = grid.window_grid(win)
    nd = nodata_values(dataset, nodata)
    try:
        with gdal_env(dataset.name):
            args = (plan, win, sub, resampling, nodata, nd, out, raw_dtype)
            return _read_plan(dataset, bands, *args)
    except RasterioError as exc:
        raise read_error(dataset.name, exc) from None


def _read_plan(
    dataset: Any,
    bands: Sequence[int],
    plan: ReadPlan,
    win: WindowTuple,
    sub: RasterGrid,
    resampling: str,
    nodata: float | None,
    nd: Sequence[float],
    out: np.ndarray | None,
    raw_dtype: bool,
) -> np.ndarray:
    if plan.mode == "direct":
        arr = _read_direct(dataset, bands, win, plan, out, raw_dtype)
        if arr.dtype.kind == "f":
            mask_nodata(arr, nd)
        return arr
    if plan.mode == "scale":
        scaled = _read_scaled(dataset, sub, bands, resampling, nd)
        if scaled is not None:
            return _into(out, scaled)
    return _into(out, _read_warped(dataset, sub, bands, resampling, nodata))


def _into(out: np.ndarray | None, arr: np.ndarray) -> np.ndarray:
    if out is None:
        return arr
    out[...] = arr
    return out


def _read_direct(
    dataset: Any,
    bands: Sequence[int],
    win: WindowTuple,
    plan: ReadPlan,
    out: np.ndarray | None,
    raw_dtype: bool,
) -> np.ndarray:
    row, col, h, w = win
    r0, c0 = row + plan.row_shift, col + plan.col_shift
    H, W = dataset.height, dataset.width
    if r0 >= 0 and c0 >= 0 and r0 + h <= H and c0 + w <= W:
        rw = Window(c0, r0, w, h)
        if raw_dtype and out is None:
            return dataset.read(list(bands), window=rw)
        if out is not None:
            if out.dtype == np.dtype(dataset.dtypes[0]):
                return dataset.read(list(bands), window=rw, out=out)
            out[...] = dataset.read(list(bands), window=rw)
            return out
        return dataset.read(list(bands), window=rw, out_dtype="float32")
    arr = out if out is not None else np.empty((len(bands), h, w), dtype=np.float32)
    arr.fill(np.nan)
    ir0, ic0 = max(r0, 0), max(c0, 0)
    ir1, ic1 = min(r0 + h, H), min(c0 + w, W)
    if ir1 > ir0 and ic1 > ic0:
        part = dataset.read(list(bands), window=Window(ic0, ir0, ic1 - ic0, ir1 - ir0))
        arr[:, ir0 - r0 : ir1 - r0, ic0 - c0 : ic1 - c0] = part
    return arr


def _read_scaled(
    dataset: Any, sub: RasterGrid, bands: Sequence[int], resampling: str, nd: Sequence[float]
) -> np.ndarray | None:
    """Windowed read with ``out_shape``; None when the warper is needed instead."""
    if nd and resampling != "nearest":
        return None  # GDAL's RasterIO resampling would mix no-data into valid pixels
    row, col, h, w = _float_window(dataset.transform, sub)
    eps = 1e-6
    if row < -eps or col < -eps or row + h > dataset.height + eps or col + w > dataset.width + eps:
        return None
    row, col = max(row, 0.0), max(col, 0.0)
    h, w = min(h, dataset.height - row), min(w, dataset.width - col)
    arr = dataset.read(
        list(bands),
        window=Window(col, row, w, h),
        out_shape=(len(bands), sub.height, sub.width),
        resampling=_RESAMPLING[resampling],
        out_dtype="float32",
    )
    return mask_nodata(arr, nd)


def _read_warped(
    dataset: Any, sub: RasterGrid, bands: Sequence[int], resampling: str, nodata: float | None
) -> np.ndarray:
    src_nodata = nodata if nodata is not None else dataset.nodata
    with WarpedVRT(
        dataset,
        crs=sub.crs,
        transform=sub.transform,
        width=sub.width,
        height=sub.height,
        resampling=_RESAMPLING[resampling],
        src_nodata=src_nodata,
        nodata=np.nan,
        dtype="float32",
    ) as vrt:
        arr = vrt.read(list(bands))
    return mask_nodata(arr.astype(np.float32, copy=False), nodata_values(dataset, nodata))


def read_raster(
    path: str | Path,
    bands: Sequence[int] | None = None,
    window: WindowTuple | None = None,
    grid: RasterGrid | None = None,
    resampling: str = "bilinear",
    nodata: float | None = None,
) -> np.ndarray:
    """Convenience: read a file (optionally a window, optionally onto another grid) as float32.

    Without ``grid`` the window is on the file's own grid. No-data becomes NaN.
    """
    with open_raster(path) as ds:
        idx = list(bands) if bands is not None else list(range(1, ds.count + 1))
        check_band_indices(ds, idx, len(idx))
        ref = grid if grid is not None else RasterGrid.of(ds)
        plan = plan_read(ds, ref, str(path))
        return read_onto(ds, ref, idx, plan, window, resampling, nodata)


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
    cog: bool = False,
) -> Path:
    """Write ``array`` ([bands, H, W] or [H, W]) as a tiled GeoTIFF, atomically.

    The dtype of the file is the array's dtype. Tiles are ``blocksize`` square when the raster
    is at least that large (GeoTIFF tiles must be multiples of 16), otherwise striped.
    ``cog=True`` writes a Cloud-Optimized GeoTIFF (GDAL's COG driver: ``blocksize`` tiles, header
    first, no overviews; same pixel values).
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
    if cog:  # the COG driver tiles itself and picks the predictor for the dtype
        for key in ("tiled", "blockxsize", "blockysize", "predictor"):
            profile.pop(key, None)
        predictor = "YES" if compress != "none" else "NO"
        profile.update(driver="COG", blocksize=blocksize, predictor=predictor, overviews="NONE")
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
