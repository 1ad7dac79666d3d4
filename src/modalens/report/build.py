"""``modalens report DIR``: one self-contained HTML page from whatever a folder holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..io import atomic_write_text
from ..progress import warn
from . import studies  # noqa: F401  (importing it registers the study sections)
from .blocks import Section
from .collect import Artefacts, collect
from .render import render
from .sections import build_sections, skipped_section

#: findings of each section repeated in the reading at the top of the page
READING_LINES = 2
#: sections whose findings are not repeated in the reading at the top of the page (they
#: describe inputs, not results)
NOT_READ = ("dataset", "run", "views")
#: how the reading names the sections it does not read, by kind (singular, plural)
NOUNS = {
    "dataset": ("dataset", "datasets"),
    "run": ("run", "runs"),
    "views": ("sample views", "sample views"),
}


def _nothing_to_read(sections: Sequence[Section], skipped: int) -> str:
    """The reading of a page without results, saying what the sections below do show."""
    if not sections:
        finished = " finished" if skipped else ""
        return (
            f"Nothing to read yet: the folder holds no{finished} runs, attributions or "
            "validation results."
        )
    counts = Counter(s.id.split("-", 1)[0] for s in sections)
    shown = ", ".join(f"{n} {NOUNS[k][n != 1]}" for k, n in counts.items() if k in NOUNS)
    if not shown:
        return "No findings to read yet: see the sections below."
    return f"No attribution or validation results to read yet; the sections below show {shown}."


def reading_lines(arts: Artefacts, sections: Sequence[Section]) -> list[str]:
    """The reading at the top of the page: the notes on unfinished runs, what was left out, then
    the first findings of each result section; never empty, and never at odds with the
    sections (without results it says what the sections show)."""
    head = [f"Unfinished: {note}." for note in arts.notes.values()]
    if arts.skipped:
        n = len(arts.skipped)
        head.append(
            f"{n} folder{'' if n == 1 else 's'} left out of this report (unfinished or "
            "unreadable): see “Not in this report”."
        )
    read = [
        f"{s.title}: {line}" if len(sections) > 1 else line
        for s in sections
        if s.id.split("-", 1)[0] not in NOT_READ
        for line in [f for f in s.findings if not f.startswith("Unfinished: ")][:READING_LINES]
    ]
    return head + (read or [_nothing_to_read(sections, len(arts.skipped))])


def build_report(
    folder: str | Path, out: str | Path | None = None, title: str | None = None
) -> Path:
    """Write the HTML report of ``folder`` to ``out`` (default ``folder/report.html``).

    Every artefact found under ``folder`` (:func:`~.collect.collect`) becomes a section with its
    findings, tables and embedded figures; the findings of the result sections are repeated
    at the top as a short reading. The page needs no network and no files beside it.

    What the page leaves out (unfinished or unreadable folders) is listed in its first
    section, "Not in this report"; it, a run whose training did not finish, and a folder with
    nothing to report are also one warning line each (:func:`modalens.progress.warn`; the
    command shows them on stderr).

    Returns:
        The path of the written page.
    """
    arts = collect(folder)
    sections = build_sections(arts)
    reading = reading_lines(arts, sections)
    kinds = arts.kinds()
    subtitle = (
        f"{len(sections)} sections from {arts.root}: " + ", ".join(kinds)
        if kinds
        else f"nothing recognised in {arts.root}"
    )
    if arts.skipped:
        subtitle += f"; {len(arts.skipped)} left out"
    left_out = skipped_section(arts)
    shown = ([left_out] if left_out is not None else []) + sections
    html = render(
        shown, reading, title or f"modalens report: {arts.root.name}", subtitle, str(arts.root)
    )
    path = Path(out) if out is not None else arts.root / "report.html"
    atomic_write_text(path, html)
    _warn(arts, sections)
    return path


def _warn(arts: Artefacts, sections: Sequence[Section]) -> None:
    """One warning line per note and per folder left out, and one when nothing was found."""
    for note in arts.notes.values():
        warn(f"report: {note}")
    for item in arts.skipped:
        warn(f"report: left out {arts.relative(item.path)}: {item.why}; {item.fix}")
    if not sections:
        warn(
            f"report: nothing to report in {arts.root}: no finished runs, attributions or "
            "validation results found; give the folder that holds them"
        )
