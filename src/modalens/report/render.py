"""Render the report's sections into one self-contained HTML page (jinja2, autoescaped)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import jinja2

from .blocks import Section, Table

TEMPLATES = Path(__file__).parent / "templates"
#: tables with more rows than this are folded (click to open)
LONG_TABLE = 16
#: packages whose versions the report lists (those that are installed)
PACKAGES = (
    "modalens",
    "torch",
    "lightning",
    "torchmetrics",
    "numpy",
    "pandas",
    "pyarrow",
    "rasterio",
    "matplotlib",
    "jinja2",
    "pydantic",
    "captum",
)


def versions() -> list[tuple[str, str]]:
    """(package, version) for Python, the platform and each installed package of
    :data:`PACKAGES`."""
    out = [("python", sys.version.split()[0]), ("platform", platform.platform())]
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return out


def _flagged(table: Table, row: Sequence) -> bool:
    """A row is highlighted when a column named ``flagged`` says yes."""
    if "flagged" not in table.columns:
        return False
    return row[table.columns.index("flagged")].text == "yes"


def render(
    sections: Sequence[Section],
    reading: Sequence[str],
    title: str,
    subtitle: str,
    root: str,
) -> str:
    """The report page as an HTML string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["row_flagged"] = _flagged
    version = dict(versions()).get("modalens", "dev")
    return env.get_template("report.html.j2").render(
        sections=sections,
        reading=reading,
        title=title,
        subtitle=subtitle,
        root=root,
        versions=versions(),
        version=version,
        long_table=LONG_TABLE,
    )
