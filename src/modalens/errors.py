"""User-facing errors.

Every mistake a user can make (a missing file, a bad key in a spec, a wrong band count...) is
raised as a :class:`ModalensError` whose message is a single line naming *what* is wrong,
*where* (file, key, sample id) and *how to fix it*. The CLI prints that line and exits with
code 2; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class ModalensError(Exception):
    """A user error with a one-line, actionable message."""

    exit_code = 2

    def __init__(self, what: str, where: str | None = None, fix: str | None = None) -> None:
        parts = [what.rstrip(".")]
        if where:
            parts[0] = f"{parts[0]} ({where})"
        if fix:
            parts.append(fix.rstrip("."))
        message = "; ".join(parts)
        # keep it on one line whatever the caller passed in
        message = " ".join(message.split())
        super().__init__(message)
        self.what = what
        self.where = where
        self.fix = fix


class SpecError(ModalensError):
    """A dataset or modality specification is invalid."""


class DataError(ModalensError):
    """A raster, split file or sample cannot be read as the spec says."""


class ModelError(ModalensError):
    """A checkpoint or model does not fit the data or request."""


class OutputError(ModalensError):
    """A result cannot be written: no permission, a read-only file system or a full disk."""


#: errno values of a write that fails for a reason the user can fix (permissions, space)
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
WRITE_ERRNOS = PERMISSION_ERRNOS | SPACE_ERRNOS
#: how a library reports a full disk without an errno (GDAL, the C library's text)
SPACE_MESSAGES = ("no space left", "free disk space", "disk quota")
#: how a library reports a failed write of any cause (torch.save, rasterio): a full disk only
#: when the disk has less than :data:`NEARLY_FULL` bytes free
WRITE_MESSAGES = ("write failed", "write error")
NEARLY_FULL = 2**20


def output_error(
    exc: BaseException, path: str | os.PathLike[str] | None = None
) -> OutputError | None:
    """The one-line :class:`OutputError` for a failed write, or None when ``exc`` is not one.

    Args:
        exc: the exception a write raised (an :class:`OSError` with errno EACCES, EPERM, EROFS,
            ENOSPC or EDQUOT, a library error whose message says the disk is full, or one
            that says a write failed while the disk is nearly full).
        path: the file or folder being written (default: the one the exception names).

    Returns:
        The error to raise instead, naming the path and the fix; None for other exceptions.
    """
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if code is not None and code not in WRITE_ERRNOS:
        return None
    where = str(path if path is not None else getattr(exc, "filename", None) or "output")
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:  # rasterio: the GDAL error is the cause
        chain.append(str(cause).lower())
        cause = cause.__cause__ or cause.__context__
    text = " ".join(chain)
    if code is None and not any(m in text for m in SPACE_MESSAGES):
        free = _free_bytes(where)
        if not any(m in text for m in WRITE_MESSAGES) or free is None or free >= NEARLY_FULL:
            return None
    if code in PERMISSION_ERRNOS:
        what = "read-only file system" if code == errno.EROFS else "no permission to write"
        return OutputError(
            f"cannot write: {what}",
            where,
            "choose a writable folder (e.g. --out DIR) or give yourself write access "
            "(chmod u+w / chown); nothing was written there",
        )
    free = _free_bytes(where)
    left = "" if free is None else f", {free / 2**20:.0f} MiB free"
    return OutputError(
        f"cannot write: the disk is full{left}",
        where,
        "free space on that disk or write to another disk (e.g. --out DIR), then rerun the same "
        "command, with --resume for fit (finished files are kept, the unfinished one removed)",
    )


def _free_bytes(path: str) -> int | None:
    p = Path(path).absolute()
    for folder in (p, *p.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None
