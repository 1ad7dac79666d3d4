"""The preset catalogue: built-in dataset specs by name, and the options every preset takes.

A dataset module registers its spec function with :func:`register_preset`; the spec file parser
(``data: {preset: NAME, ...}``), ``--preset`` and :func:`get_preset` look it up here.
:func:`get_preset` checks and converts the options first: a preset's options are the keyword
parameters of its function (their annotated types: a ``--option K=V`` string becomes an int,
float or bool) plus :data:`GENERIC_OPTIONS`, which every preset accepts and which are applied
to the spec it returns (unless its function takes them itself).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from ...errors import SpecError
from ...progress import say
from ..remote import RemotePath
from ..spec import DatasetSpec

PresetFn = Callable[..., DatasetSpec]

#: Preset spec functions ``fn(root, **options) -> DatasetSpec`` by name.
PRESETS: dict[str, PresetFn] = {}

#: options of every preset: train ids may also be val/test ids; the split (``official``: the
#: preset's own, ``random``: 80/10/10 by ``split_seed``); the training crop in pixels
GENERIC_OPTIONS: dict[str, type] = {
    "allow_leakage": bool,
    "split": str,
    "split_seed": int,
    "crop_size": int,
}

#: values of the generic ``split`` option
SPLIT_CHOICES = ("official", "random")

_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


#: Layout tests by preset name: ``detect(root) -> bool`` says a local folder has the preset's
#: layout (what ``data check ROOT`` without ``--preset`` uses to pick one)
PRESET_DETECTORS: dict[str, Callable[[Path], bool]] = {}


def register_preset(
    name: str, detect: Callable[[Path], bool] | None = None
) -> Callable[[PresetFn], PresetFn]:
    """Decorator: make ``fn(root, **options) -> DatasetSpec`` the preset called ``name``;
    ``detect(root)``, when given, recognises a local folder in the preset's layout."""

    def register(fn: PresetFn) -> PresetFn:
        PRESETS[name] = fn
        if detect is not None:
            PRESET_DETECTORS[name] = detect
        return fn

    return register


def detect_preset(root: Path) -> str | None:
    """The first registered preset whose layout test recognises ``root`` (None: none does)."""
    return next((name for name, test in PRESET_DETECTORS.items() if test(root)), None)


def _own_options(fn: PresetFn) -> dict[str, type]:
    """The keyword parameters of a preset function (after ``root``) and their value types."""
    out: dict[str, type] = {}
    params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        kinds = [t for t in (p.annotation, *get_args(p.annotation)) if t in _TYPE_WORDS]
        if not kinds and p.default not in (None, p.empty):
            kinds = [type(p.default)]
        out[p.name] = kinds[0] if kinds and kinds[0] in _TYPE_WORDS else str
    return out


def preset_options(name: str) -> dict[str, type]:
    """Every option of preset ``name`` (its function's and :data:`GENERIC_OPTIONS`) and its
    value type, sorted by name.

    Raises:
        SpecError: unknown preset.
    """
    fn = _preset_fn(name)
    return dict(sorted({**GENERIC_OPTIONS, **_own_options(fn)}.items()))


def _preset_fn(name: str) -> PresetFn:
    if name not in PRESETS:
        raise SpecError(
            f"unknown preset {name!r}", "preset", f"choose from {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[name]


def option_value(preset: str, key: str, value: Any, kind: type) -> Any:
    """``value`` of option ``key`` as ``kind`` (a ``--option`` string is converted: ``true``
    / ``false``, numbers); a value that is not one is a one-line SpecError naming the option,
    what it takes and the preset's options."""
    text = str(value).strip()
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            return {"true": True, "false": False}[text.lower()]
        if kind is int and not isinstance(value, bool | float):
            return int(text)
        if kind is float and not isinstance(value, bool):
            return float(text) if isinstance(value, str) else float(value)
        if kind is str and isinstance(value, str | int | float) and not isinstance(value, bool):
            return text
    except (KeyError, ValueError):
        pass
    raise SpecError(
        f"option {key!r} of preset {preset!r} must be {_TYPE_WORDS[kind]}, got {value!r}",
        f"preset_options.{key}",
        f"e.g. --option {key}={_example(kind)} ({key}: {_example(kind)} under preset_options); "
        f"the options of {preset} are {', '.join(preset_options(preset))}",
    )


def _example(kind: type) -> str:
    return {bool: "true", int: "8", float: "0.5", str: "VALUE"}[kind]


def get_preset(name: str, root: str | Path | RemotePath, **options: Any) -> DatasetSpec:
    """A built-in spec by name, rooted at ``root``.

    Args:
        name: a registered preset (:data:`PRESETS`: ``mapinwild``, ``bigearthnet``...).
        root: the dataset folder (or its URL).
        **options: keyword options of the preset function (e.g. ``target="mask"``) and the
            generic ones (:data:`GENERIC_OPTIONS`): ``allow_leakage`` (bool), ``split``
            (``official`` or ``random``), ``split_seed`` (int, with ``split=random``),
            ``crop_size`` (int). Strings (``--option K=V``) are converted to the option's type.

    Raises:
        SpecError: unknown preset or option (naming the preset's options), or a value of the
            wrong type (naming the option and what it takes).
    """
    fn = _preset_fn(name)
    own = _own_options(fn)
    allowed = preset_options(name)
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            raise SpecError(
                f"preset {name!r} has no option {key!r}",
                "preset_options",
                f"its options are {', '.join(allowed)}",
            )
        values[key] = option_value(name, key, value, allowed[key])
    spec = fn(root, **{k: v for k, v in values.items() if k in own})
    return _with_generic(name, spec, {k: v for k, v in values.items() if k not in own})


def _with_generic(name: str, spec: DatasetSpec, values: Mapping[str, Any]) -> DatasetSpec:
    """``spec`` with the generic options :data:`GENERIC_OPTIONS` applied."""
    split = spec.split
    choice = values.get("split", "official")
    if choice not in SPLIT_CHOICES:
        raise SpecError(
            f"option 'split' of preset {name!r} must be official or random, got {choice!r}",
            "preset_options.split",
            "official: the dataset's own split; random: 80/10/10 by split_seed",
        )
    if choice == "random":
        split = replace(split, file=None, lists=(), table=None)
    if "split_seed" in values:
        if split.kind != "random":
            raise SpecError(
                f"split_seed applies to a random split, but preset {name!r} uses its official "
                f"split ({', '.join(split.files)})",
                "preset_options.split_seed",
                "add --option split=random (split: random under preset_options)",
            )
        split = replace(split, seed=int(values["split_seed"]))
    if values.get("allow_leakage"):
        split = replace(split, allow_leakage=True)
    crop = values.get("crop_size", spec.crop_size)
    if crop < 8:
        raise SpecError(
            f"option 'crop_size' of preset {name!r} must be >= 8, got {crop}",
            "preset_options.crop_size",
            "e.g. --option crop_size=256",
        )
    return replace(spec, split=split, crop_size=crop)


#: the notes presets said in this process (:func:`say_once`)
_SAID: set[str] = set()


def say_once(line: str, key: str | None = None) -> None:
    """A preset's note (which layout, target or split it found), through the progress channel,
    once per process and ``key`` (default: the line itself)."""
    key = line if key is None else key
    if key not in _SAID:
        _SAID.add(key)
        say(line)
