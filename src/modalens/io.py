"""Atomic file output: nothing a long run has finished is lost, nothing half-written is left.

Every file modalens writes goes through :func:`atomic_path`: the content is written to a
temporary file in the same folder and moved into place with :func:`os.replace`, so a reader
sees either the old file or the complete new one, never a truncated one. The file gets the
mode a plain ``open()`` would give it (``0o666`` less the umask), and a write that fails for a
reason the user can fix (no permission, read-only file system, full disk) is raised as a
one-line :class:`~modalens.errors.OutputError` naming the target path
(:func:`~modalens.errors.output_error`). :func:`make_folder` and :func:`require_free_space`
check an output folder before long work starts. Tables are written by one writer,
:func:`atomic_write_table` (CSV, and beside it a Markdown version when one is given; its pipe tables
are laid out by :func:`pipe_table`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import OutputError, output_error


def umask() -> int:
    """The process's current umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new file as ``open()`` creates it: ``0o666`` less the umask."""
    return 0o666 & ~umask()


@contextmanager
def translated(path: str | Path) -> Iterator[None]:
    """Raise permission and disk-space failures inside the block as an
    :class:`~modalens.errors.OutputError` naming ``path``; other exceptions pass unchanged."""
    try:
        yield
    except OutputError:
        raise
    except (OSError, RuntimeError) as exc:
        err = output_error(exc, path)
        if err is None:
            raise
        raise err from exc


def make_folder(path: str | Path) -> Path:
    """Create the output folder ``path`` (and its parents) or say in one line why not.

    Raises:
        OutputError: no permission, a read-only file system or a full disk.
    """
    path = Path(path)
    with translated(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def require_free_space(path: str | Path, nbytes: float, what: str = "the output") -> None:
    """Refuse to start a write of about ``nbytes`` into ``path`` when its disk has less free.

    Args:
        path: the output file or folder (need not exist yet).
        nbytes: the expected size of what will be written.
        what: what is written, for the message.

    Raises:
        OutputError: the disk holding ``path`` has less than ``nbytes`` free.
    """
    p = Path(path).absolute()
    folder = next((f for f in (p, *p.parents) if f.exists()), None)
    if folder is None:
        return
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise OutputError(
            f"not enough free space for {what}: needs about {nbytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free",
            str(path),
            "free space on that disk or write to another disk (e.g. --out DIR)",
        )


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched. The new file
    has mode ``0o666`` less the umask.

    Raises:
        OutputError: the folder cannot be written (permissions, read-only, disk full).
    """
    path = Path(path)
    with translated(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.",
            suffix=suffix if suffix is not None else path.suffix + ".tmp",
            dir=path.parent,
        )
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with translated(path):
            yield tmp_path
            os.chmod(tmp_path, file_mode())
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path: str | Path, frame: Any) -> Path:
    """Write the table ``frame`` (a :class:`pandas.DataFrame`) to ``path`` as CSV, without the
    index, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def atomic_write_table(path: str | Path, frame: Any, markdown: str | None = None) -> list[Path]:
    """Write a table: ``frame`` as CSV to ``path`` (:func:`atomic_write_csv`) and, when
    ``markdown`` is given, that text beside it as ``path`` with the suffix ``.md``.

    Args:
        path: the CSV file.
        frame: the table (a :class:`pandas.DataFrame`; written without its index).
        markdown: the table as Markdown (e.g. with :func:`pipe_table`), or None.

    Returns:
        The files written, the CSV first.
    """
    written = [atomic_write_csv(path, frame)]
    if markdown is not None:
        written.append(atomic_write_text(Path(path).with_suffix(".md"), markdown))
    return written


def pipe_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] | None = None
) -> list[str]:
    """The lines of a Markdown pipe table of formatted cells.

    Args:
        header: the column titles.
        rows: per row, one formatted cell per column.
        align: per column its separator, ``---`` (default) or ``---:`` (right-aligned).

    Returns:
        The header line, the separator line and one line per row (no trailing newline).
    """
    seps = list(align) if align is not None else ["---"] * len(header)
    if len(seps) != len(header):
        raise ValueError(f"{len(seps)} alignments for {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(seps) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
