"""Named registries: the strategies, distances and levels the engine can be asked for by name.

Each registry maps a name to an entry (a small frozen dataclass holding the function and its
properties) and keeps the order of registration, which is the order shown in ``--help`` and in
error messages. The options object (:mod:`modalens.attribution.options`) validates names
against the registries, the command line takes its choices and help text from them, and
adding a strategy, distance or level is one decorated function in its module (or in user
code: a registry is open to entries registered at run time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from ..errors import SpecError


class Entry(Protocol):
    """What every registry entry has: a name and a one-line help text (read-only, so frozen
    dataclasses qualify)."""

    @property
    def name(self) -> str: ...

    @property
    def help(self) -> str: ...


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    """Entries of one kind (``strategy``, ``distance``, ``level``) by name.

    Args:
        kind: singular noun used in messages (``"strategy"``).
        option: the option that names entries (``"strategies"``).
        flag: the command-line flag that names entries (``"--strategy"``).
    """

    def __init__(self, kind: str, option: str, flag: str) -> None:
        self.kind = kind
        self.option = option
        self.flag = flag
        self._entries: dict[str, E] = {}

    def add(self, entry: E) -> E:
        """Register ``entry`` under its name.

        Raises:
            SpecError: the name is empty, has a comma or is taken.
        """
        name = entry.name
        if not name or "," in name or name != name.strip():
            raise SpecError(
                f"bad {self.kind} name {name!r}", self.option, "use a plain word, e.g. 'blur'"
            )
        if name in self._entries:
            raise SpecError(
                f"a {self.kind} named {name!r} is already registered",
                self.option,
                "choose another name or unregister the old one first",
            )
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Unregister ``name`` (no error when it is not registered)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> E:
        """The entry called ``name``.

        Raises:
            SpecError: no such entry (the message lists the registered names).
        """
        entry = self._entries.get(name)
        if entry is None:
            raise SpecError(
                f"unknown {self.kind} {name!r}",
                f"{self.option}= / {self.flag}",
                f"choose from {', '.join(self.names())}",
            )
        return entry

    def names(self, where: Callable[[E], bool] | None = None) -> tuple[str, ...]:
        """Registered names in registration order (those whose entry passes ``where``)."""
        return tuple(n for n, e in self._entries.items() if where is None or where(e))

    def describe(self, where: Callable[[E], bool] | None = None) -> str:
        """``name: help`` of every entry (that passes ``where``), ``;``-separated."""
        return "; ".join(
            f"{e.name}: {e.help}" for e in self._entries.values() if where is None or where(e)
        )

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
