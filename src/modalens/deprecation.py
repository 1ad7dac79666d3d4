"""Old public names kept for one release: calling one warns and forwards to its new name.

:func:`deprecated_alias` wraps the new function; the alias is not listed in any ``__all__``, so
``from modalens import *`` and the API reference show only the new names. The warning is a
:class:`DeprecationWarning` issued with :func:`warnings.warn` (no filter is changed: Python
shows it where the caller's code runs, e.g. in ``__main__``, tests and notebooks).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def deprecated_alias(func: F, old: str) -> F:
    """``func`` under its old name ``old``: each call warns, then calls ``func``.

    Args:
        func: the function under its new name.
        old: the name being retired (shown in the warning).

    Returns:
        A function with ``func``'s signature and the name ``old``.
    """
    new = func.__qualname__

    @functools.wraps(func)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"modalens: {old}() is deprecated and will be removed in the next release; use {new}()",
            DeprecationWarning,
            stacklevel=2,
        )
        return func(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated alias of :func:`{func.__module__}.{new}` (removed next release)."
    return alias  # type: ignore[return-value]
