"""``modalens report DIR``: one self-contained HTML page from whatever a folder holds."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write_text, check_output
from . import studies  # noqa: F401  (importing it registers the study sections)
from .collect import collect
from .render import render
from .sections import build_sections

#: findings of each section repeated in the reading at the top of the page
READING_LINES = 2
#: sections whose findings are not repeated in the reading at the top of the page (they
#: describe inputs, not results)
NOT_READ = ("dataset", "run", "views")


def build_report(
    folder: str | Path, out: str | Path | None = None, title: str | None = None
) -> Path:
    """Write the HTML report of ``folder`` to ``out`` (default ``folder/report.html``).

    Every artefact found under ``folder`` (:func:`~.collect.collect`) becomes a section with its
    findings, tables and embedded figures; the findings of the result sections are repeated
    at the top as a short reading. The page needs no network and no files beside it.

    Returns:
        The path of the written page.

    Raises:
        OutputError: the page cannot be written there (a folder, not writable;
            :func:`~modalens.io.check_output`), checked before the sections are built.
    """
    if out is not None:
        check_output(out, "file")
    arts = collect(folder)
    path = check_output(out if out is not None else arts.root / "report.html", "file")
    sections = build_sections(arts)
    reading = [
        f"{s.title}: {line}" if len(sections) > 1 else line
        for s in sections
        if s.id.split("-", 1)[0] not in NOT_READ
        for line in s.findings[:READING_LINES]
    ]
    kinds = arts.kinds()
    subtitle = (
        f"{len(sections)} sections from {arts.root}: " + ", ".join(kinds)
        if kinds
        else f"nothing recognised in {arts.root}"
    )
    html = render(
        sections, reading, title or f"modalens report: {arts.root.name}", subtitle, str(arts.root)
    )
    atomic_write_text(path, html)
    return path
