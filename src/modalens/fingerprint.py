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

What produced a result besides its settings is one record, :func:`provenance`, kept under the
key ``provenance``: the package version, torch's thread count and, where they apply, the
checkpoint's sha256 (:func:`file_digest`, cached in memory by size and modification time) and
the data identity (:func:`modalens.data.identity.data_identity`: sample ids, files' sizes and
modification times, :func:`files_digest`). :func:`check_provenance` compares it: any difference
refuses, except the thread count, which warns (:func:`note_threads`) -- on CPU the same seed
gives the same numbers only at the same thread count, but a result at another count is not
wrong -- and is kept as ``earlier_threads`` (:func:`continued`) in the record of the continued
result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModalensError, SpecError
from .progress import warn


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
    # a setting first, what follows from it (another split: other data) after
    diff.sort(key=lambda d: d[0].startswith(f"{PROVENANCE}."))
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


# ---------------------------------------------------------------------- what produced a result
#: the key of :func:`provenance` in a settings record, and its thread count below it
PROVENANCE = "provenance"
THREADS_KEY = f"{PROVENANCE}.threads"
#: the thread counts of the earlier parts of a continued result (:func:`continued`)
EARLIER_KEY = f"{PROVENANCE}.earlier_threads"
#: keys of a settings record that never refuse reuse (they warn: :func:`note_threads`)
THREAD_KEYS = (THREADS_KEY, EARLIER_KEY)

#: ``resolved path -> (size, mtime_ns, sha256)`` of the files :func:`file_digest` has read
_DIGESTS: dict[str, tuple[int, int, str]] = {}


def package_version() -> str:
    """The installed modalens version (``unknown`` when the package is not installed)."""
    try:
        return metadata.version("modalens")
    except metadata.PackageNotFoundError:
        return "unknown"


def torch_threads() -> int:
    """The torch CPU thread count of this process (``torch.get_num_threads()``)."""
    import torch  # here: reading settings records needs no torch

    return int(torch.get_num_threads())


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's content; kept in memory (for this process only) while the file's
    size and modification time are unchanged, so asking again is a ``stat``."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    known = _DIGESTS.get(key)
    if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
        return known[2]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    _DIGESTS[key] = (st.st_size, st.st_mtime_ns, h.hexdigest())
    return h.hexdigest()


def file_stamp(path: Any) -> list[int] | None:
    """``[size, mtime_ns]`` of a local file (None: missing, or a remote location, whose
    listing is not fetched)."""
    if not isinstance(path, (str, Path)) or "://" in str(path):
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def files_digest(paths: Iterable[Any], root: Any = None) -> str:
    """A short digest of files' names (relative to ``root`` when below it), sizes and
    modification times (:func:`file_stamp`): it changes when a file is rewritten, replaced,
    added or removed, but not when the whole folder moves with its times kept."""
    h = hashlib.sha256()
    base = str(root).rstrip("/") + "/" if root is not None else None
    for p in paths:
        name = str(p)
        if base is not None and name.startswith(base):
            name = name[len(base) :]
        h.update(json.dumps([name, file_stamp(p)]).encode())
    return h.hexdigest()[:16]


def provenance(
    *, checkpoint: str | Path | None = None, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What produced a result besides its options, recorded beside it under ``provenance``.

    Args:
        checkpoint: the checkpoint file the model was loaded from (its content hash,
            :func:`file_digest`, is recorded).
        data: the data identity (:func:`modalens.data.identity.data_identity`).

    Returns:
        ``{"version", "threads"[, "checkpoint"][, "data"]}``: the package version, the torch
        thread count (compared apart: :func:`note_threads`), the checkpoint's sha256 and the
        data identity.
    """
    out: dict[str, Any] = {"version": package_version(), "threads": torch_threads()}
    if checkpoint is not None:
        out["checkpoint"] = file_digest(checkpoint)
    if data is not None:
        out["data"] = plain(data)
    return out


def threads_of(saved: Mapping[str, Any]) -> int | None:
    """The thread count recorded in a settings record (None: not recorded)."""
    value = flatten(plain(saved)).get(THREADS_KEY)
    return value if isinstance(value, int) else None


def note_threads(saved: Mapping[str, Any], current: Mapping[str, Any], what: str) -> str | None:
    """Warn in one line (:func:`modalens.progress.warn`: ``modalens: warning: ...`` from the
    command) when two settings records name different thread counts; returns the line (None
    when they agree or one does not say).

    The thread count never refuses reuse: results at another count differ in the last bits on
    CPU, so a continued result is reproducible only at the counts it names.

    Args:
        saved: the record beside the earlier result.
        current: the record of the new request.
        what: the earlier result, e.g. ``"the run folder runs/a"``.
    """
    old, new = threads_of(saved), threads_of(current)
    if old is None or new is None or old == new:
        return None
    line = (
        f"{what}: made with {old} torch thread(s), this call uses {new}: on CPU the "
        f"numbers are not bit-identical across thread counts (set OMP_NUM_THREADS={old} to match)"
    )
    warn(line)
    return line


def continued(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` (a settings record with :func:`provenance` under ``provenance``) to write
    beside a result that continues the one ``saved`` describes: the thread counts the earlier
    part used, where they differ from this call's, are kept as ``earlier_threads``."""
    out = plain(current)
    prov = out.get(PROVENANCE)
    if not isinstance(prov, dict):
        return out
    old = flatten(plain(saved))
    earlier = old.get(EARLIER_KEY)
    seen = [*(earlier if isinstance(earlier, list) else []), old.get(THREADS_KEY)]
    counts = {int(c) for c in seen if isinstance(c, int)}
    counts.discard(prov.get("threads"))
    if counts:
        prov["earlier_threads"] = sorted(counts)
    return out


def check_provenance(
    saved: Any,
    current: Mapping[str, Any],
    *,
    what: str,
    where: str,
    fix: str,
    about: str,
    error: type[ModalensError] = SpecError,
) -> dict[str, Any]:
    """Compare the :func:`provenance` kept beside earlier work with this call's: any difference
    but the thread count refuses (:func:`require_same`), another thread count warns
    (:func:`note_threads`). Work from before provenance was kept (``saved`` not a mapping) is
    not compared.

    Args:
        saved: the earlier provenance (None or anything else: not recorded).
        current: this call's :func:`provenance`.
        what: what cannot be done, e.g. ``"cannot resume"``.
        where: the file that holds ``saved``.
        fix: how to get going.
        about: the earlier work in the thread-count warning, e.g. ``"the run runs/a"``.
        error: the error raised.

    Returns:
        The provenance to record beside the continued work (:func:`continued`).
    """
    record = {PROVENANCE: plain(current)}
    if not isinstance(saved, Mapping):
        return record[PROVENANCE]
    earlier = {PROVENANCE: plain(saved)}
    require_same(earlier, record, what=what, where=where, fix=fix, ignore=THREAD_KEYS, error=error)
    note_threads(earlier, record, about)
    return continued(earlier, record)[PROVENANCE]
