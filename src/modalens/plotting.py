"""Shared figure plumbing: matplotlib on the Agg backend, figures written atomically.

Every stage that draws (attribution's influence charts, map previews and sample views, the
validation figures, the report's figures next) gets pyplot from :func:`pyplot` and writes
through :func:`save_figures` (PNG + SVG) or :func:`save_figure`, so figures look alike and a
half-written file is never left behind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .io import atomic_path

#: Okabe & Ito's colour-blind-safe palette (Color Universal Design), black last.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",
)

#: Readable names for the identifiers that end up in figures and tables.
LABELS: dict[str, str] = {
    "s2": "Sentinel-2",
    "s1": "Sentinel-1",
    "esa_wc": "ESA WorldCover",
    "viirs": "VIIRS night lights",
    "embedding": "embedding level",
    "output": "output level",
    "loss": "loss level",
    "euclidean": "Euclidean distance",
    "cosine": "cosine distance",
    "relative": "relative distance",
    "mae": "mean absolute difference",
    "delta": "signed mean difference",
    "occlusion": "occlusion",
    "shapley": "Shapley values",
    "interaction": "Shapley interactions",
    "zeros": "zeros",
    "ones": "ones",
    "uniform": "uniform noise",
    "gaussian": "Gaussian noise",
    "mean": "train mean",
    "permute": "permuted across samples",
    "NI": "naturalness index",
}


def color(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE` (cycling)."""
    return PALETTE[i % len(PALETTE)]


def label(name: str) -> str:
    """A readable label for an identifier (``"esa_wc"`` -> ``"ESA WorldCover"``); unknown names
    are returned unchanged."""
    return LABELS.get(str(name), str(name))


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use:
    matplotlib is only needed by commands that draw)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(**options: Any) -> Any:
    """A :class:`matplotlib.figure.Figure` made without pyplot (``options``: the Figure's, e.g.
    ``figsize``): no backend is chosen and no global figure list grows, so a notebook's
    backend is left as it is. What result objects' ``plot()`` return."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _close(fig: Any) -> None:
    """Close ``fig`` in pyplot when pyplot made it (a :func:`new_figure` needs nothing)."""
    if getattr(fig.canvas, "manager", None) is not None:
        pyplot().close(fig)


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, PNG by default); close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path, suffix=f".tmp.{fmt}") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    _close(fig)
    return path


def save_figures(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG (``path`` with suffix ``.png``) and as SVG beside it, atomically;
    close it and return the PNG path. Publication figures are always written in both forms."""
    path = Path(path).with_suffix(".png")
    for suffix in (".svg", ".png"):
        target = path.with_suffix(suffix)
        fmt = suffix.lstrip(".")
        with atomic_path(target, suffix=f".tmp.{fmt}") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    _close(fig)
    return path


def _degree_text(value: float, decimals: int, positive: str, negative: str) -> str:
    hemisphere = positive if value >= 0 else negative
    return f"{abs(value):.{decimals}f}°{hemisphere}"


def _map_units(crs: Any) -> tuple[str, float]:
    """``(kind, scale)`` of map axes in ``crs``: ``("degrees", 1)`` for a geographic CRS,
    ``("km", 0.001)`` for one in metres, ``(unit, 1)`` for another linear unit, ``("px", 1)``
    without a CRS."""
    if crs is None:
        return "px", 1.0
    if getattr(crs, "is_geographic", False):
        return "degrees", 1.0
    unit = str(getattr(crs, "linear_units", "") or "units").lower()
    if unit in ("metre", "meter", "m", "metres", "meters"):
        return "km", 0.001
    return {"foot": "ft", "us survey foot": "ftUS"}.get(unit, unit), 1.0


def draw_map(ax: Any, array: Any, crs: Any = None, transform: Any = None, **imshow: Any) -> Any:
    """``ax.imshow(array, **imshow)`` on map axes (:func:`map_axes`): the image placed on
    its map extent, with the CRS's aspect; returns the image artist."""
    extent, aspect = map_axes(ax, crs, transform, tuple(array.shape[:2]))
    return ax.imshow(array, extent=extent, aspect=aspect, **imshow)


def map_axes(
    ax: Any, crs: Any, transform: Any, shape: tuple[int, int]
) -> tuple[tuple[float, float, float, float] | None, float | str]:
    """Set up ``ax`` as map axes for a raster of ``shape`` (rows, cols) in ``crs`` under an
    axis-aligned affine ``transform``; the ``extent`` and ``aspect`` to pass to ``imshow``
    (:func:`draw_map` does).

    Every figure with map axes goes through here, so they read alike: a projected CRS in metres
    is drawn in km (``EPSG:32633 easting (km)``), a geographic one in degrees with hemisphere
    tick labels (``12.345°E``, ``41.2°N``) and its aspect corrected by the cosine of the
    latitude (so a degree of longitude is as wide as it is on the ground), another linear unit
    as it is; without a CRS or transform the axes count pixels.

    Args:
        ax: the matplotlib Axes.
        crs: the raster's CRS (rasterio CRS or None).
        transform: its affine transform (None: pixel axes).
        shape: ``(rows, cols)``.

    Returns:
        ``(extent, aspect)``: ``(left, right, bottom, top)`` in the axes' units (None for pixel
        axes: imshow's default) and ``"equal"`` or, geographic, ``1 / cos(latitude)``.
    """
    import matplotlib.ticker as mticker

    kind, scale = _map_units(crs if transform is not None else None)
    if kind == "px":
        ax.set_xlabel("column (pixels)", fontsize=8)
        ax.set_ylabel("row (pixels)", fontsize=8)
        return None, "equal"
    h, w = shape
    x0, y0 = transform.c, transform.f
    x1, y1 = x0 + transform.a * w, y0 + transform.e * h
    left, right, bottom, top = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    name = f"EPSG:{epsg}" if epsg else str(crs)[:40]
    if kind == "degrees":
        span = max(right - left, top - bottom, 1e-12)
        decimals = int(min(7, max(0, math.ceil(-math.log10(span / 4)) + 1)))  # 2.5 steps
        ax.xaxis.set_major_formatter(
            mticker.FuncFormatter(lambda v, _: _degree_text(v, decimals, "E", "W"))
        )
        ax.yaxis.set_major_formatter(
            mticker.FuncFormatter(lambda v, _: _degree_text(v, decimals, "N", "S"))
        )
        ax.xaxis.set_major_locator(mticker.MaxNLocator(4))
        ax.set_xlabel(f"{name} longitude", fontsize=8)
        ax.set_ylabel(f"{name} latitude", fontsize=8)
        aspect = 1.0 / max(math.cos(math.radians((top + bottom) / 2)), 1e-6)
        return (left, right, bottom, top), aspect
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlabel(f"{name} easting ({kind})", fontsize=8)
    ax.set_ylabel(f"{name} northing ({kind})", fontsize=8)
    return (left * scale, right * scale, bottom * scale, top * scale), "equal"


def pixel_size_text(crs: Any, transform: Any) -> str:
    """A raster's pixel size for a title: ``"10 m pixels"``, ``"8.983e-05° pixels (~10 m)"``
    in a geographic CRS, ``"1 px"`` without a CRS."""
    kind, _ = _map_units(crs if transform is not None else None)
    res = abs(transform.a) if transform is not None else 1.0
    if kind == "px":
        return "pixel grid (no CRS)"
    if kind == "degrees":
        metres = res * 111_320 * math.cos(math.radians(transform.f))
        return f"{res:.4g}° pixels (~{metres:.3g} m)"
    unit = "m" if kind == "km" else kind
    return f"{res:g} {unit} pixels"
