"""The identity of the data a result was computed from: its sample ids and its files.

:func:`data_identity` is what every reuse records and compares for its data
(:func:`modalens.fingerprint.provenance`): a digest of the sample ids and, per modality and for
the target, a digest of the files' names (relative to the dataset root), sizes and modification
times (:func:`modalens.fingerprint.files_digest`). Rewriting, replacing, adding or removing a
file changes it; moving the whole dataset with its times kept (``cp -a``, ``rsync -a``) does
not. Remote files (URLs) count by their names only: their listings are not fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from ..fingerprint import files_digest
from .reader import SampleReader
from .spec import DatasetSpec


def ids_digest(ids: Iterable[str]) -> str:
    """A short digest of a list of sample ids (order-independent)."""
    h = hashlib.sha1()
    for i in sorted(str(x) for x in ids):
        h.update(i.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def data_identity(spec: DatasetSpec, ids: Sequence[str]) -> dict[str, Any]:
    """The identity of samples ``ids`` of ``spec`` (see the module docstring).

    Args:
        spec: the dataset spec (its root locates the files).
        ids: the sample ids.

    Returns:
        ``{"ids": digest, "n": count, "files": {modality: digest, ..., "target": digest}}``.

    Raises:
        DataError: a sample's fields cannot be resolved (e.g. not in the index table).
    """
    reader = SampleReader(spec, check_values=False)
    files: dict[str, list[Any]] = {m.name: [] for m in spec.modalities}
    target: list[Any] = []
    for sid in ids:
        for name, paths in reader.paths(str(sid)).items():
            files.setdefault(name, []).extend(paths)
        path = reader.target_path(str(sid))
        if path is not None:
            target.append(path)
    digests = {name: files_digest(paths, spec.root) for name, paths in files.items()}
    if target:
        digests["target"] = files_digest(target, spec.root)
    return {"ids": ids_digest(ids), "n": len(ids), "files": digests}
