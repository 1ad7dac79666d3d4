"""The preset catalogue: built-in dataset specs by name.

A dataset module registers its spec function with :func:`register_preset`; the spec file parser
(``data: {preset: NAME, ...}``), ``--preset`` and :func:`get_preset` look it up here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import SpecError
from ..remote import RemotePath
from ..spec import DatasetSpec

PresetFn = Callable[..., DatasetSpec]

#: Preset spec functions ``fn(root, **options) -> DatasetSpec`` by name.
PRESETS: dict[str, PresetFn] = {}


def register_preset(name: str) -> Callable[[PresetFn], PresetFn]:
    """Decorator: make ``fn(root, **options) -> DatasetSpec`` the preset called ``name``."""

    def register(fn: PresetFn) -> PresetFn:
        PRESETS[name] = fn
        return fn

    return register


def get_preset(name: str, root: str | Path | RemotePath, **options: Any) -> DatasetSpec:
    """A built-in spec by name, rooted at ``root``.

    Args:
        name: a registered preset (``mapinwild``, ``bigearthnet``).
        root: the dataset folder (or its URL).
        **options: keyword options of the preset function (e.g. ``target="mask"``).

    Raises:
        SpecError: unknown preset or option.
    """
    if name not in PRESETS:
        raise SpecError(
            f"unknown preset {name!r}", "preset", f"choose from {', '.join(sorted(PRESETS))}"
        )
    try:
        return PRESETS[name](root, **options)
    except TypeError as exc:
        raise SpecError(
            f"bad option for preset {name!r}: {exc}", "preset_options", "see the preset's options"
        ) from None
