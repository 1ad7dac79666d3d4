"""Map axes (modalens.plotting.map_axes) by CRS: degrees with hemisphere ticks for a geographic
raster (Sen1Floods11-like EPSG:4326 chip), km for a projected one, pixels without a CRS; the
mtl explain error maps use them."""

from __future__ import annotations

import math

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from modalens.attribution.figures import map_figure
from modalens.data.grid import RasterGrid
from modalens.data.rasters import write_geotiff
from modalens.multitask.explain_figures import error_maps_figure
from modalens.plotting import pixel_size_text, pyplot

#: a Sen1Floods11 chip's pixel (degrees) and a corner near Rome
DEG = 8.983152841195e-05
GEO = Affine(DEG, 0.0, 12.30, 0.0, -DEG, 41.95)


def _tick_texts(ax, axis: str) -> list[str]:
    ax.figure.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    at = 0 if axis == "x" else 1
    return [t.get_text() for t in ticks if t.get_text() and lo <= t.get_position()[at] <= hi]


def _geotiff(tmp_path, crs, transform, size: int = 64):
    arr = np.random.default_rng(0).random((1, size, size)).astype(np.float32)
    path = write_geotiff(tmp_path / "chip.tif", arr, crs=crs, transform=transform)
    with rasterio.open(path) as ds:
        return ds.read(1), ds.crs, ds.transform


def test_geographic_raster_has_degree_axes(tmp_path) -> None:
    arr, crs, transform = _geotiff(tmp_path, CRS.from_epsg(4326), GEO)
    fig = map_figure(arr, transform=transform, crs=crs)
    ax = fig.get_axes()[0]
    assert ax.get_xlabel() == "EPSG:4326 longitude"
    assert ax.get_ylabel() == "EPSG:4326 latitude"
    xs, ys = _tick_texts(ax, "x"), _tick_texts(ax, "y")
    assert xs and all(t.endswith("°E") for t in xs), xs
    assert ys and all(t.endswith("°N") for t in ys), ys
    # degrees, not degrees / 1000: the ticks lie inside the chip
    values = [float(t[:-2]) for t in xs]
    assert all(12.30 <= v <= 12.30 + 64 * DEG for v in values), xs
    assert any(t.startswith("12.30") for t in xs)
    left, right = ax.get_xlim()
    assert math.isclose(left, 12.30) and math.isclose(right, 12.30 + 64 * DEG)
    # a degree of longitude drawn as wide as on the ground at ~42° N
    lat = 41.95 - 32 * DEG
    assert math.isclose(ax.get_aspect(), 1 / math.cos(math.radians(lat)), rel_tol=1e-6)
    pyplot().close(fig)
    assert pixel_size_text(crs, transform) == "8.983e-05° pixels (~7.44 m)"


def test_southern_western_hemisphere_ticks() -> None:
    grid = RasterGrid(CRS.from_epsg(4326), Affine(0.01, 0, -60.5, 0, -0.01, -3.0), 50, 50)
    fig = map_figure(np.ones((50, 50)), transform=grid.transform, crs=grid.crs)
    ax = fig.get_axes()[0]
    assert all(t.endswith("°W") for t in _tick_texts(ax, "x"))
    assert all(t.endswith("°S") for t in _tick_texts(ax, "y"))
    pyplot().close(fig)


def test_projected_raster_has_km_axes(tmp_path) -> None:
    utm = Affine(10.0, 0.0, 634230.0, 0.0, -10.0, 5386280.0)
    arr, crs, transform = _geotiff(tmp_path, CRS.from_epsg(32633), utm, size=40)
    fig = map_figure(arr, transform=transform, crs=crs)
    ax = fig.get_axes()[0]
    assert ax.get_xlabel() == "EPSG:32633 easting (km)"
    assert ax.get_ylabel() == "EPSG:32633 northing (km)"
    assert np.allclose(ax.get_xlim(), (634.23, 634.63))
    values = [float(t.replace("−", "-")) for t in _tick_texts(ax, "x")]
    assert values and all(634.2 <= v <= 634.7 for v in values)
    assert ax.get_aspect() == 1.0
    pyplot().close(fig)
    assert pixel_size_text(crs, transform) == "10 m pixels"


def test_no_crs_draws_pixels() -> None:
    fig = map_figure(np.ones((8, 12)), transform=None, crs=None)
    ax = fig.get_axes()[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("column (pixels)", "row (pixels)")
    pyplot().close(fig)


def test_mtl_error_maps_of_a_geographic_sample_are_in_degrees(tmp_path) -> None:
    arr, crs, transform = _geotiff(tmp_path, CRS.from_epsg(4326), GEO, size=32)
    grid = RasterGrid(crs, transform, 32, 32)
    maps = {"main": arr, "s1": arr * 2}
    fig = error_maps_figure("7", maps, {"main": 0.5, "s1": 1.0}, grid)
    first, second = (ax for ax in fig.get_axes() if ax.get_title())
    assert first.get_xlabel() == "EPSG:4326 longitude" and second.get_ylabel() == ""
    xs = _tick_texts(first, "x")
    assert xs and all(t.endswith("°E") and t.startswith("12.3") for t in xs), xs
    assert "km" not in first.get_xlabel() + first.get_ylabel()
    utm = RasterGrid(CRS.from_epsg(32633), Affine(10, 0, 400000, 0, -10, 5300000), 32, 32)
    fig2 = error_maps_figure("7", maps, {}, utm)
    assert fig2.get_axes()[0].get_xlabel() == "EPSG:32633 easting (km)"
    pyplot().close(fig)
    pyplot().close(fig2)
