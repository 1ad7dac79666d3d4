"""Whole-scene inference by overlapping tiles.

:func:`sliding_window` runs any tile function (a U-Net forward, an occlusion difference, ...)
over a scene too large for one forward pass. It reads the scene tile by tile through
``reader.read(sample_id, window)``, so the memory used grows with the tile and batch size, not
with the scene; the only scene-sized arrays are the output ``[K, H, W]`` (float32) and the
valid mask ``[H, W]`` (bool).

Tiles sit on a regular grid with stride ``tile - overlap``; the last row/column of tiles is
shifted back inside the scene (no padding with invented data). Scenes smaller than a tile are
read whole and zero-padded (as invalid) up to a multiple of ``multiple`` (the model's
downsampling factor). Overlaps are blended with a separable raised-cosine weight that falls
towards the tile borders, where a convolutional network sees the least context; since the
tile grid is a Cartesian product of row and column offsets, the normalising weight sum is the
outer product of two 1-D sums and is never stored at scene size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np
import rasterio
import torch
from affine import Affine
from torch import Tensor
from tqdm.auto import tqdm

from ..data.rasters import RasterGrid
from ..errors import ModelError

TileFn = Callable[[Tensor], Tensor]


Window = tuple[int, int, int, int]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` overlap.

    The last tile is shifted back so that it ends at ``size``; a scene shorter than the tile
    gets a single tile at 0.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def blend_weights(length: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile: a raised-cosine ramp over ``overlap`` px at both ends.

    Strictly positive everywhere (so pixels covered by a single tile keep their value after
    normalisation) and 1 in the tile centre.
    """
    w = np.ones(length, dtype=np.float64)
    ramp_len = min(overlap, length // 2)
    if ramp_len > 0:
        t = (np.arange(ramp_len, dtype=np.float64) + 0.5) / ramp_len
        ramp = 0.5 - 0.5 * np.cos(np.pi * t)
        w[:ramp_len] = ramp
        w[length - ramp_len :] = np.minimum(w[length - ramp_len :], ramp[::-1])
    return w


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _check_tiling(tile: int, overlap: int, multiple: int) -> None:
    if multiple > 0 and tile % multiple:
        raise ModelError(
            f"tile size {tile} is not a multiple of the model's downsampling factor {multiple}",
            "--tile",
            f"use e.g. {max(multiple, _round_up(tile, multiple))}",
        )
    if tile <= 0:
        raise ModelError(f"tile size must be positive, got {tile}", "--tile", "use e.g. 256")
    if overlap < 0 or overlap >= tile:
        raise ModelError(
            f"overlap {overlap} must be >= 0 and smaller than the tile ({tile})",
            "--overlap",
            f"use e.g. {tile // 4}",
        )


def _batches(items: Sequence[Window], size: int) -> Iterator[list[Window]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


@overload
def sliding_window(
    fn: TileFn,
    reader: Any,
    sample_id: str,
    tile: int = 256,
    overlap: int = 64,
    out_channels: int = 1,
    batch_size: int = 4,
    progress: bool = False,
    *,
    multiple: int = 16,
    mask_inputs: bool = True,
    return_valid: Literal[False] = False,
    fill: float | None = None,
    gdal_cache_mb: int | None = 128,
) -> np.ndarray: ...


@overload
def sliding_window(
    fn: TileFn,
    reader: Any,
    sample_id: str,
    tile: int = 256,
    overlap: int = 64,
    out_channels: int = 1,
    batch_size: int = 4,
    progress: bool = False,
    *,
    multiple: int = 16,
    mask_inputs: bool = True,
    return_valid: Literal[True],
    fill: float | None = None,
    gdal_cache_mb: int | None = 128,
) -> tuple[np.ndarray, np.ndarray]: ...


def sliding_window(
    fn: TileFn,
    reader: Any,
    sample_id: str,
    tile: int = 256,
    overlap: int = 64,
    out_channels: int = 1,
    batch_size: int = 4,
    progress: bool = False,
    *,
    multiple: int = 16,
    mask_inputs: bool = True,
    return_valid: bool = False,
    fill: float | None = None,
    gdal_cache_mb: int | None = 128,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Blend ``fn`` over overlapping tiles of a whole scene.

    Args:
        fn: maps a float32 tensor ``[B, C, h, w]`` to ``[B, out_channels, h, w]``; it is called
            under :func:`torch.inference_mode` and may move data to a device (the result is
            brought back to CPU float32).
        reader: anything with ``grid(sample_id)`` (``.height``/``.width``) and
            ``read(sample_id, window)`` returning ``{"image": [C,h,w], "valid": [h,w], ...}``
            (:class:`modalens.data.SampleReader`, :class:`ArrayReader`).
        sample_id: the scene.
        tile: tile edge in pixels, a multiple of ``multiple``.
        overlap: pixels shared by neighbouring tiles (blended).
        out_channels: ``K``, channels ``fn`` returns.
        batch_size: tiles per call of ``fn``.
        progress: show a tqdm bar over tiles.
        multiple: the model's downsampling factor (16 for the paper's U-Net); 0 disables the check.
        mask_inputs: zero the image where ``valid`` is False before ``fn`` (as training does).
        return_valid: also return the scene's valid mask.
        fill: if given, written into the output where the scene is invalid.
        gdal_cache_mb: GDAL block cache limit while reading (GDAL's default, 5% of RAM, would
            fill with the decompressed blocks of the whole scene); None leaves it alone.

    Returns:
        The blended ``[K, H, W]`` float32 array, or ``(array, valid)`` with ``return_valid``.
    """
    _check_tiling(tile, overlap, multiple)
    grid = reader.grid(sample_id)
    height, width = int(grid.height), int(grid.width)
    th, tw = min(tile, height), min(tile, width)
    rows = tile_starts(height, tile, overlap)
    cols = tile_starts(width, tile, overlap)
    wr = blend_weights(th, overlap if len(rows) > 1 else 0)
    wc = blend_weights(tw, overlap if len(cols) > 1 else 0)
    # the tile grid is a Cartesian product, so the weight sum is separable
    row_sum = np.zeros(height, dtype=np.float64)
    col_sum = np.zeros(width, dtype=np.float64)
    for r in rows:
        row_sum[r : r + th] += wr
    for c in cols:
        col_sum[c : c + tw] += wc
    weight2d = np.outer(wr, wc).astype(np.float32)
    ph = _round_up(th, multiple) if multiple > 0 else th
    pw = _round_up(tw, multiple) if multiple > 0 else tw

    out = np.zeros((out_channels, height, width), dtype=np.float32)
    valid_all = np.zeros((height, width), dtype=bool)
    windows = [(r, c, th, tw) for r in rows for c in cols]

    with _gdal_cache(gdal_cache_mb):
        _run_tiles(
            fn,
            reader,
            sample_id,
            windows,
            batch_size,
            out,
            valid_all,
            weight2d,
            (th, tw),
            (ph, pw),
            mask_inputs,
            out_channels,
            progress,
        )
    # normalise in place, one axis at a time (no scene-sized temporaries)
    out /= row_sum.astype(np.float32)[None, :, None]
    out /= col_sum.astype(np.float32)[None, None, :]
    if fill is not None:
        out[:, ~valid_all] = fill
    if return_valid:
        return out, valid_all
    return out


def _gdal_cache(mb: int | None) -> Any:
    if mb is None:
        return contextlib.nullcontext()
    return rasterio.Env(GDAL_CACHEMAX=int(mb))


def _run_tiles(
    fn: TileFn,
    reader: Any,
    sample_id: str,
    windows: list[Window],
    batch_size: int,
    out: np.ndarray,
    valid_all: np.ndarray,
    weight2d: np.ndarray,
    tile_shape: tuple[int, int],
    padded_shape: tuple[int, int],
    mask_inputs: bool,
    out_channels: int,
    progress: bool,
) -> None:
    th, tw = tile_shape
    ph, pw = padded_shape
    bar = None
    if progress:
        bar = tqdm(total=len(windows), desc=f"tiles {sample_id}", unit="tile", leave=False)
    try:
        for group in _batches(windows, max(1, batch_size)):
            images = []
            for win in group:
                item = reader.read(sample_id, win)
                image = np.asarray(item["image"], dtype=np.float32)
                valid = np.asarray(item["valid"], dtype=bool)
                if mask_inputs:
                    image = np.where(valid[None], image, np.float32(0))
                if image.shape[-2:] != (ph, pw):
                    padded = np.zeros((image.shape[0], ph, pw), dtype=np.float32)
                    padded[:, :th, :tw] = image
                    image = padded
                images.append(image)
                r, c, h, w = win
                valid_all[r : r + h, c : c + w] |= valid
            batch = torch.from_numpy(np.stack(images))
            with torch.inference_mode():
                pred = fn(batch)
            if pred.ndim != 4 or pred.shape[0] != len(group) or pred.shape[1] != out_channels:
                raise ModelError(
                    f"the tile function returned shape {tuple(pred.shape)}, expected "
                    f"[{len(group)}, {out_channels}, h, w]",
                    "sliding_window",
                    "check out_channels",
                )
            pred_np = pred.detach().to("cpu", torch.float32).numpy()[:, :, :th, :tw]
            for (r, c, h, w), p in zip(group, pred_np, strict=True):
                out[:, r : r + h, c : c + w] += p * weight2d
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()


class ArrayReader:
    """A reader over in-memory arrays with the :class:`modalens.data.SampleReader` interface.

    ``images`` maps sample ids to ``[C, H, W]`` arrays; ``valid`` (optional) to ``[H, W]``
    masks (default: finite everywhere in the image).
    """

    def __init__(
        self,
        images: dict[str, np.ndarray],
        valid: dict[str, np.ndarray] | None = None,
        crs: Any = None,
        transform: Any = None,
    ) -> None:
        self.images = images
        self.valid = valid or {}
        self.crs = crs
        self.transform = transform

    def grid(self, sample_id: str) -> Any:
        """The sample's :class:`~modalens.data.rasters.RasterGrid` (identity transform unless
        given)."""
        _, h, w = self.images[sample_id].shape
        return RasterGrid(self.crs, self.transform or Affine.identity(), int(w), int(h))

    def read(self, sample_id: str, window: Window | None = None) -> dict[str, Any]:
        """``{"image", "valid", "id"}`` on ``window`` (whole array when None; NaN -> 0)."""
        image = self.images[sample_id]
        valid = self.valid.get(sample_id)
        if valid is None:
            valid = np.isfinite(image).all(axis=0)
        if window is not None:
            r, c, h, w = window
            image = image[:, r : r + h, c : c + w]
            valid = valid[r : r + h, c : c + w]
        image = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return {"image": image, "valid": np.asarray(valid, dtype=bool), "id": sample_id}
