"""Pixel grids and windows: where a sample's pixels lie on the ground.

:class:`RasterGrid` is a CRS, an affine transform (pixel -> map coordinates) and a size; every
modality of a sample is read onto one such grid (:mod:`.rasters`), and crops are windows
``(row_off, col_off, height, width)`` on it (:data:`WindowTuple`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from affine import Affine

# A window on a grid: (row_off, col_off, height, width), integer pixels.
WindowTuple = tuple[int, int, int, int]


@dataclass(frozen=True)
class RasterGrid:
    """A pixel grid: CRS, affine transform (pixel -> map coordinates) and size."""

    crs: Any
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, dataset: Any) -> RasterGrid:
        """The grid of an open rasterio dataset."""
        return cls(dataset.crs, dataset.transform, int(dataset.width), int(dataset.height))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units (positive)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of an axis-aligned grid."""
        t = self.transform
        xs = [t.c, t.c + t.a * self.width + t.b * self.height]
        ys = [t.f, t.f + t.d * self.width + t.e * self.height]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def full_window(self) -> WindowTuple:
        return (0, 0, self.height, self.width)

    def window_grid(self, window: WindowTuple | None) -> RasterGrid:
        """The grid of a ``(row_off, col_off, height, width)`` window of this grid."""
        if window is None:
            return self
        row, col, h, w = (int(v) for v in window)
        return RasterGrid(self.crs, self.transform @ Affine.translation(col, row), w, h)

    def scaled(self, factor: float) -> RasterGrid:
        """The same extent with pixels ``factor`` times larger (coarser when factor > 1)."""
        w = max(1, int(math.ceil(self.width / factor)))
        h = max(1, int(math.ceil(self.height / factor)))
        t = self.transform @ Affine.scale(self.width / w, self.height / h)
        return RasterGrid(self.crs, t, w, h)

    def contains(self, window: WindowTuple) -> bool:
        row, col, h, w = window
        return (
            row >= 0
            and col >= 0
            and h > 0
            and w > 0
            and row + h <= self.height
            and (col + w <= self.width)
        )

    def same_as(self, other: RasterGrid) -> bool:
        return (
            self.width == other.width
            and self.height == other.height
            and same_crs(self.crs, other.crs)
            and close_transform(self.transform, other.transform)
        )


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRS objects are the same (both None counts as the same)."""
    if a is None or b is None:
        return a is None and b is None
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - odd CRS objects: compare their text
        return str(a) == str(b)


def close_transform(a: Affine, b: Affine, rel: float = 1e-6) -> bool:
    """Whether two affine transforms agree to ``rel`` of the pixel size."""
    scale = max(abs(a.a), abs(a.e), 1e-12)
    return all(abs(x - y) <= rel * scale for x, y in zip(a[:6], b[:6], strict=True))


def axis_aligned(t: Affine) -> bool:
    """Whether a transform has no rotation or shear."""
    return t.b == 0 and t.d == 0
