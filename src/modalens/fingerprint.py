"""One rule for "may earlier work be reused?": settings are compared key by key.

Every long step writes the settings its result depends on beside the result (a run's
``config.yaml``, ``stats.json``, an attribution folder's ``parts/config.json``, a synthetic
dataset's ``metadata.json``). Before reusing or resuming, the step compares them with the
settings of the new request through :func:`differences`: nested mappings are flattened to dotted
keys (``train.lr``), values are compared in their JSON form (tuples equal lists, paths equal
strings), and keys that may legitimately change (``train.epochs`` when resuming) are ignored by
name or by prefix. :func:`require_same` turns the first difference into a one-line error that
names the key, both values, the file and the fix; :func:`settings_fingerprint` hashes settings
for names and quick equality checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModalensError, SpecError


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON-like data: mappings with string keys, lists, numbers, strings."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [plain(v) for v in obj]
        return sorted(items, key=repr) if isinstance(obj, (set, frozenset)) else items
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"train": {"lr": 1}}`` -> ``train.lr``)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = plain(value)
    return out


def _ignored(key: str, ignore: Iterable[str]) -> bool:
    return any(key == i or key.startswith(f"{i}.") for i in ignore)


def differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()
) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, current value)`` for every dotted key that differs, sorted by key;
    keys in ``ignore`` (and below them) are skipped. A key missing on one side is ``None``."""
    ignore = list(ignore)
    a, b = flatten(plain(saved)), flatten(plain(current))
    out = []
    for key in sorted(set(a) | set(b)):
        if _ignored(key, ignore):
            continue
        if json.dumps(a.get(key), sort_keys=True, default=str) != json.dumps(
            b.get(key), sort_keys=True, default=str
        ):
            out.append((key, a.get(key), b.get(key)))
    return out


def require_same(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    what: str,
    where: str,
    fix: str,
    ignore: Iterable[str] = (),
    error: type[ModalensError] = SpecError,
) -> None:
    """Raise ``error`` naming the first differing key (and how many others differ).

    Args:
        saved: the settings stored beside the earlier result.
        current: the settings of the new request.
        what: what cannot be done, e.g. ``"cannot resume"``.
        where: the settings file (named in the message).
        fix: how to get going, e.g. ``"start a new run with another --out"``.
        ignore: dotted keys (or prefixes) that may differ.
        error: the :class:`~modalens.errors.ModalensError` subclass raised.
    """
    diff = differences(saved, current, ignore)
    if not diff:
        return
    key, old, new = diff[0]
    more = f" (and {len(diff) - 1} other setting(s): {', '.join(k for k, _, _ in diff[1:4])})"
    raise error(
        f"{what}: {key!r} is {new!r} but the earlier result used {old!r}"
        + (more if len(diff) > 1 else ""),
        where,
        fix,
    )


def settings_fingerprint(
    settings: Mapping[str, Any], ignore: Iterable[str] = (), length: int = 16
) -> str:
    """A short stable hash of ``settings`` (without the ``ignore`` keys)."""
    flat = {k: v for k, v in flatten(plain(settings)).items() if not _ignored(k, list(ignore))}
    text = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
