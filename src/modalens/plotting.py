"""Shared figure plumbing: matplotlib on the Agg backend, figures written atomically.

Every stage that draws (attribution's influence charts, map previews and sample views, the
validation figures, the report's figures next) gets pyplot from :func:`pyplot` and writes
through :func:`save_figures` (PNG + SVG) or :func:`save_figure`, so figures look alike and a
half-written file is never left behind.
"""

from __future__ import annotations

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
