"""Shared figure plumbing: matplotlib on the Agg backend, figures written atomically.

Every stage that draws (attribution's influence charts and map previews today, the report's
figures next) gets pyplot from :func:`pyplot` and writes through :func:`save_figure`, so figures
look alike and a half-written PNG is never left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use:
    matplotlib is only needed by commands that draw)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, PNG by default); close it."""
    plt = pyplot()
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path, suffix=f".tmp.{fmt}") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    plt.close(fig)
    return path
