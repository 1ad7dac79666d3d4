"""The pieces a report section is made of: findings, tables, figures and text blocks.

A :class:`Table` keeps its cells as display strings and, for sorting in the browser, the raw
value of each cell; a :class:`Figure` carries its image as a ``data:`` URI so the page opens
offline without the files beside it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


@dataclass
class Cell:
    """One table cell: what is shown and the value the column sorts by."""

    text: str
    sort: str
    numeric: bool


@dataclass
class Table:
    """A titled table of display cells."""

    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    source: str = ""


@dataclass
class Figure:
    """An embedded image with its caption and the files it came from."""

    caption: str
    uri: str
    source: str = ""
    alt: str = ""


@dataclass
class Section:
    """One section of the report."""

    id: str
    title: str
    intro: str = ""
    findings: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (summary, preformatted text)


def format_value(value: Any, digits: int = 3) -> str:
    """A table value for display: numbers to ``digits`` significant digits, NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) < 1e6:
            return format_value(int(value))
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(digits - 1, 1)}f}"
    return str(value)


def _cell(value: Any) -> Cell:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and isinstance(value, float) and math.isnan(value):
        return Cell("–", "", True)
    return Cell(format_value(value), repr(float(value)) if numeric else str(value), numeric)


def table_from_frame(
    frame: pd.DataFrame,
    caption: str,
    columns: Sequence[str] | None = None,
    headers: dict[str, str] | None = None,
    source: str = "",
) -> Table:
    """A :class:`Table` from the ``columns`` of ``frame`` (all by default), headers renamed."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    headers = headers or {}
    rows = [[_cell(v) for v in rec] for rec in frame[cols].itertuples(index=False, name=None)]
    return Table(caption, [headers.get(c, c) for c in cols], rows, source)


def image_uri(path: str | Path) -> str:
    """The file at ``path`` as a base64 ``data:`` URI."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure(path: str | Path, caption: str, source: str = "") -> Figure:
    """An embedded :class:`Figure` of the image at ``path``."""
    return Figure(caption, image_uri(path), source or str(path), alt=caption)
