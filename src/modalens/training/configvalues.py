"""The error a config value check raises, shared by the sections of a run config.

A validator of :mod:`modalens.training.config` or :mod:`modalens.training.auxconfig` raises
:class:`ConfigValueError`; :func:`modalens.training.config.config_error` turns it into the
one-line :class:`~modalens.errors.SpecError` naming the dotted key.
"""

from __future__ import annotations


class ConfigValueError(ValueError):
    """A bad config value, raised inside a validator: ``{key}`` in the message is replaced by
    the dotted key, and ``fix`` says what to write instead."""

    def __init__(self, message: str, fix: str = "fix it") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
