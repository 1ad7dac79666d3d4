"""User-facing errors.

Every mistake a user can make (a missing file, a bad key in a spec, a wrong band count...) is
raised as a :class:`ModalensError` whose message is a single line naming *what* is wrong,
*where* (file, key, sample id) and *how to fix it*. The CLI prints that line and exits with
code 2; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations


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
