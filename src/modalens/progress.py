"""One progress channel: the ``modalens`` logger for progress lines, tqdm for progress bars.

A long call (``fit``, ``ablate``, ``prune``, ``faithfulness``, ``mtl compare`` ...) reports its
steps with :func:`say`: each line is a record of the ``modalens`` logger (:data:`logger`), at
``INFO`` when the call's ``progress`` is on and at ``DEBUG`` when it is off, so an application
that configures :mod:`logging` receives every line where it wants them. The library installs no
handler and sets no level; when nothing would show an ``INFO`` record of ``modalens`` (Python's
default) a line asked for with ``progress=True`` is written to stderr instead, so a script or a
notebook sees its progress without configuring anything.

A caution the user should read whatever ``progress`` is (an unfinished run being tested,
results a report skipped) is a :func:`warn` line: a ``WARNING`` record of the same logger,
written to stderr as ``warning: ...`` when nothing would show it.

The ``modalens`` command shows the lines on stdout through :func:`console_progress` (installed
for the duration of one command and removed after), and the warnings on stderr as
``modalens: warning: ...``, like its errors. Bars come from :func:`bar`, one
:mod:`tqdm` bar on stderr when ``progress`` is on, the plain iterable otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

#: the library's logger (its modules' loggers, ``modalens.<module>``, are its children)
logger = logging.getLogger("modalens")

T = TypeVar("T")


def _shown(level: int) -> bool:
    """Whether a ``level`` record of :data:`logger` reaches a handler that emits it."""
    return logger.isEnabledFor(level) and logger.hasHandlers()


def say(text: str, progress: bool = True) -> None:
    """Report one progress line (see the module docstring).

    Args:
        text: the line, without a trailing newline.
        progress: the calling function's ``progress`` flag: ``INFO`` and shown when on,
            ``DEBUG`` (for a configured logger only) when off.
    """
    level = logging.INFO if progress else logging.DEBUG
    logger.log(level, text)
    if progress and not _shown(level):
        from tqdm.auto import tqdm  # here: the command line imports this module at start

        tqdm.write(text, file=sys.stderr)


def warn(text: str) -> None:
    """Report one warning line (see the module docstring): shown whatever the calling
    function's ``progress`` is, unless the application turned ``modalens`` warnings off.

    Args:
        text: the line, without ``warning:`` and without a trailing newline.
    """
    if not logger.isEnabledFor(logging.WARNING):
        return
    if logger.hasHandlers():
        logger.warning(text)
        return
    from tqdm.auto import tqdm  # Python's last-resort handler would break a progress bar

    tqdm.write(f"warning: {text}", file=sys.stderr)


def bar(iterable: Iterable[T], progress: bool, **options: Any) -> Iterable[T]:
    """``iterable`` with a tqdm bar when ``progress`` is on (``options``: tqdm's, e.g. ``desc``,
    ``unit``, ``total``, ``leave``); the iterable itself otherwise."""
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)


class _Stdout(logging.Handler):
    """Writes each record's message to the current ``sys.stdout`` (looked up per record, so
    a redirected or captured stdout receives it), flushed at once; warnings to ``sys.stderr``
    as ``modalens: warning: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= logging.WARNING:
                sys.stderr.write(f"modalens: warning: {self.format(record)}\n")
                sys.stderr.flush()
                return
            stream = sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 -- logging's contract: a handler never raises
            self.handleError(record)


@contextmanager
def console_progress(level: int = logging.INFO) -> Iterator[logging.Handler]:
    """Show the library's progress lines on stdout while the block runs (the command line's
    channel): a handler on :data:`logger` and its level, both restored after the block.

    Args:
        level: the lowest level shown (``INFO``: the progress lines of calls with
            ``progress`` on).
    """
    handler = _Stdout(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
