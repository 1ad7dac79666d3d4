"""Lazy package faces: names re-exported by a package, imported on first access.

The top-level package and :mod:`modalens.attribution` hand on their entry points without
importing torch and Lightning up front (so ``import modalens`` and the command line start fast);
:func:`lazy_exports` gives a package's ``__getattr__`` and ``__dir__`` (PEP 562) for a table of
``name -> module``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose names load on first use.

    Args:
        package: the package's ``__name__`` (named in the AttributeError).
        exports: public name -> absolute module that defines it.
        namespace: the package's ``globals()``; a loaded name is cached there.
    """

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(module)
        value = getattr(loaded, name)
        namespace[name] = value
        short = module.rpartition(".")[2]
        if exports.get(short) == module:  # importing the module bound its name to it
            namespace[short] = getattr(loaded, short)  # the export of that name instead
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
