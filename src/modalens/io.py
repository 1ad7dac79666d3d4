"""Atomic file output: nothing a long run has finished is lost, nothing half-written is left.

Every file modalens writes goes through :func:`atomic_path`: the content is written to a
temporary file in the same folder and moved into place with :func:`os.replace`, so a reader
sees either the old file or the complete new one, never a truncated one. The file gets the
mode a plain ``open()`` would give it (``0o666`` less the umask), and a write that fails for a
reason the user can fix (no permission, read-only file system, full disk) is raised as a
one-line :class:`~modalens.errors.OutputError` naming the target path
(:func:`~modalens.errors.output_error`). Every command checks its output path once, before any
work, with :func:`check_output` (a file where a folder is wanted or the reverse, a folder it
may not write, too little free space where the size is known); :func:`make_folder` and
:func:`require_free_space` are its parts, and :func:`fresh_folder` gives a writer that must not
mix old and new files an empty folder (``overwrite`` clears one, :func:`clear_folder`). Tables
are written by one writer, :func:`atomic_write_table` (CSV, and beside it a Markdown version when
one is given; its pipe tables are laid out by :func:`pipe_table`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .errors import OutputError, output_error

#: what an output path names: a folder (created) or a file (replaced)
PathKind = Literal["folder", "file"]
#: errno values of a write that met a file where a folder is wanted, or the reverse
CONFLICT_ERRNOS = frozenset({errno.EEXIST, errno.ENOTDIR, errno.EISDIR})


def umask() -> int:
    """The process's current umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new file as ``open()`` creates it: ``0o666`` less the umask."""
    return 0o666 & ~umask()


@contextmanager
def translated(path: str | Path, kind: PathKind = "file") -> Iterator[None]:
    """Raise permission and disk-space failures inside the block as an
    :class:`~modalens.errors.OutputError` naming ``path``, and so a file met where a folder is
    wanted or the reverse (:func:`path_conflict`; ``kind``: what ``path`` names); other
    exceptions pass unchanged."""
    try:
        yield
    except OutputError:
        raise
    except (OSError, RuntimeError) as exc:
        err = None
        if isinstance(exc, OSError) and exc.errno in CONFLICT_ERRNOS:
            err = path_conflict(path, kind)
        err = err or output_error(exc, path)
        if err is None:
            raise
        raise err from exc


def path_conflict(path: str | Path, kind: PathKind = "folder") -> OutputError | None:
    """The one-line error when ``path`` cannot be a ``kind`` as the file system stands (a file
    where a folder is wanted, a folder where a file is, a file among its parents); None when
    it can. Reads only.
    """
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            return OutputError(
                "the output folder is a file",
                str(path),
                "pass a folder path (e.g. --out DIR) or move that file away",
            )
        if kind == "file" and path.is_dir():
            return OutputError(
                "the output file is a folder",
                str(path),
                "pass a file path (e.g. --out DIR/NAME) or move that folder away",
            )
        return None
    above = _existing_parent(path)
    if above is not None and not above.is_dir():
        return OutputError(
            f"cannot write below {above}: it is a file, not a folder",
            str(path),
            "pass a path in a folder (e.g. --out DIR) or move that file away",
        )
    return None


def _existing_parent(path: Path) -> Path | None:
    """The nearest parent of ``path`` that exists (None when none does)."""
    return next((p for p in (*Path(path).parents, Path.cwd()) if p.exists()), None)


def check_output(
    path: str | Path,
    kind: PathKind = "folder",
    need: float | None = None,
    what: str = "the output",
) -> Path:
    """The output-path check every writing command runs once, before any work.

    Nothing is created or changed. It refuses, in one line (:class:`OutputError`): a file
    where a folder is wanted or a folder where a file is (:func:`path_conflict`); a folder
    this process may not write (the folder itself, or the nearest one that exists above the
    path); and, when ``need`` is given, a disk with less free space than that
    (:func:`require_free_space`).

    Args:
        path: the output folder or file (need not exist yet).
        kind: ``"folder"`` (written into) or ``"file"`` (replaced atomically).
        need: about how many bytes will be written, when that is known.
        what: what is written, for the free-space message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the path cannot be written, see above.
    """
    path = Path(path)
    err = path_conflict(path, kind)
    if err is not None:
        raise err
    folder = path if kind == "folder" and path.is_dir() else _existing_parent(path)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only(folder) else errno.EACCES
        err = output_error(OSError(code, os.strerror(code), str(folder)), path)
        assert err is not None  # a permission errno always has its error
        raise err
    if need is not None:
        require_free_space(path, need, what)
    return path


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def make_folder(path: str | Path) -> Path:
    """Create the output folder ``path`` (and its parents) or say in one line why not.

    Raises:
        OutputError: no permission, a read-only file system, a full disk, or a file where a
            folder is wanted (:func:`path_conflict`).
    """
    path = Path(path)
    with translated(path, "folder"):
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


def fresh_folder(path: str | Path, overwrite: bool = False) -> Path:
    """An empty output folder at ``path``: created, or with ``overwrite`` emptied first.

    The path is checked first (:func:`check_output`); a folder that holds anything is refused
    unless ``overwrite`` is set, which removes its contents (:func:`clear_folder`).

    Args:
        path: the output folder.
        overwrite: clear a non-empty folder instead of refusing it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`, an empty folder.

    Raises:
        OutputError: the path cannot be a folder written here, the folder is not empty and
            ``overwrite`` is not set, or it is one never cleared (:func:`clear_folder`).
    """
    path = check_output(path)
    entries = sorted(path.iterdir()) if path.is_dir() else []
    if entries and not overwrite:
        raise OutputError(
            f"the output folder is not empty: it holds {_listing(entries)}",
            str(path),
            "choose a new or empty folder, or pass --overwrite (overwrite=True) to delete "
            "what it holds first",
        )
    if entries:
        clear_folder(path)
    return make_folder(path)


def clear_folder(path: str | Path) -> None:
    """Delete everything inside the folder ``path`` (the folder itself stays; links are
    removed, not followed). The file system's root, the home folder, the current folder and
    the folders above them are never cleared.

    Raises:
        OutputError: ``path`` is one of those folders, or its contents cannot be deleted.
    """
    path = Path(path)
    real = path.resolve()
    guarded = {
        Path(real.anchor): "the file system's root",
        Path.home().resolve(): "your home folder",
    }
    try:
        guarded[Path.cwd().resolve()] = "the current folder"
    except OSError:  # the current folder was deleted: nothing there to protect
        pass
    for folder, name in guarded.items():
        if real == folder or real in folder.parents:
            what = name if real == folder else f"a folder that holds {name}"
            raise OutputError(
                f"refusing to clear {what}",
                str(path),
                "write into a folder of its own, e.g. a new sub-folder",
            )
    with translated(path, "folder"):
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _listing(entries: Sequence[Path], show: int = 3) -> str:
    """``"5 entries (a, b/, c, ...)"``: how many, and the first names (folders with ``/``)."""
    names = [e.name + ("/" if e.is_dir() else "") for e in entries[:show]]
    more = ", ..." if len(entries) > show else ""
    count = "1 entry" if len(entries) == 1 else f"{len(entries)} entries"
    return f"{count} ({', '.join(names)}{more})"


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
