"""Which samples a dataset has: ids, index tables and train/val/test splits.

- :func:`sample_ids` gives the train/val/test ids (the spec's split file, else 80/10/10 by seed);
  a dataset folder a writer left unfinished is refused first (:func:`require_finished`).
- :func:`discover_ids` lists the ids found on disk (path templates matched against files).
- :func:`index_table` / :func:`build_index`: a per-sample table (column ``id`` plus the fields the
  path templates use, e.g. ``{s1}``), from the spec's ``index`` CSV or a registered builder
  (:func:`register_index_builder`, e.g. BigEarthNet's S1/S2 pairing).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecError
from .remote import Location, RemotePath, needs_local
from .spec import SPLIT_NAMES, DatasetSpec
from .splits import listed_splits, read_csv, under_root

IndexBuilder = Callable[..., pd.DataFrame]


#: Index-table builders by name (``DatasetSpec.index_builder`` is ``"name"`` or ``"name:arg"``);
#: a dataset module registers its own with :func:`register_index_builder`.
INDEX_BUILDERS: dict[str, Callable[..., pd.DataFrame]] = {}


def register_index_builder(name: str) -> Callable[[IndexBuilder], IndexBuilder]:
    """Decorator: make ``fn(root[, arg]) -> DataFrame`` the index builder called ``name``."""

    def register(fn: IndexBuilder) -> IndexBuilder:
        INDEX_BUILDERS[name] = fn
        return fn

    return register


def build_index(spec: DatasetSpec) -> pd.DataFrame | None:
    """The spec's sample index table (id + template fields), or None when it has none."""
    if spec.index_builder:
        name, _, arg = spec.index_builder.partition(":")
        if name not in INDEX_BUILDERS:
            raise SpecError(
                f"unknown index builder {name!r}",
                spec.source_file,
                f"choose from {', '.join(INDEX_BUILDERS)}",
            )
        return INDEX_BUILDERS[name](spec.root, arg) if arg else INDEX_BUILDERS[name](spec.root)
    if spec.index:
        p = under_root(spec, spec.index)
        if not p.exists():
            raise DataError("index table not found", str(p), "check the spec's 'index' key")
        try:
            df = read_csv(p, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            raise DataError(
                "index table is not a readable CSV", str(p), "write it as CSV with an id column"
            ) from None
        if "id" not in df.columns:
            raise DataError("index table has no 'id' column", str(p), "add an id column")
        return df
    return None


_INDEX_CACHE: dict[tuple[str, ...], dict[str, dict[str, str]]] = {}


def _index_key(spec: DatasetSpec) -> tuple[str, ...] | None:
    """Cache key of a spec's index table: its source and that source's modification time."""
    if spec.index_builder:
        _, _, arg = spec.index_builder.partition(":")
        src = spec.root / arg if arg else spec.root
    elif spec.index:
        src = under_root(spec, spec.index)
    else:
        return None
    if isinstance(src, RemotePath):
        mtime = "remote"  # read once per process
    else:
        try:
            mtime = str(src.stat().st_mtime_ns)
        except OSError:
            return None
    return (str(spec.root), str(spec.index_builder), str(spec.index), str(src), mtime)


def index_table(spec: DatasetSpec) -> dict[str, dict[str, str]] | None:
    """Template fields per sample id from the spec's index table (None without one).

    Built once per process and source (an index builder scanning many JSONs is slow) and
    rebuilt when the source folder or file changes.
    """
    key = _index_key(spec)
    if key is not None and key in _INDEX_CACHE:
        return _INDEX_CACHE[key]
    df = build_index(spec)
    if df is None:
        return None
    out: dict[str, dict[str, str]] = {}
    for row in df.astype(str).to_dict(orient="records"):
        out[str(row["id"])] = row
    if key is not None:
        _INDEX_CACHE[key] = out
    return out


def _template_regex(template: str) -> tuple[str, re.Pattern[str]]:
    """Glob pattern and regex (capturing the id) for a template that uses only ``{id}``."""
    parts = re.split(r"(\{[^{}]*\})", template)
    glob_parts, rx_parts = [], []
    seen = False
    for part in parts:
        if part == "{id}":
            glob_parts.append("*")
            rx_parts.append("(?P=id)" if seen else "(?P<id>[^/]+?)")
            seen = True
        elif part.startswith("{") and part.endswith("}"):
            raise SpecError(
                f"cannot list sample ids: template {template!r} uses {part} and the spec has "
                "no index table",
                None,
                "add an index table (CSV with id and template columns) or a split file",
            )
        else:
            glob_parts.append(part)
            rx_parts.append(re.escape(part))
    return "".join(glob_parts), re.compile("".join(rx_parts) + r"\Z")


def discover_ids(spec: DatasetSpec, index: Mapping[str, Any] | None = None) -> list[str]:
    """All sample ids: the index table's, else the first modality's first template globbed."""
    if index is None:
        index = index_table(spec)
    if index is not None:
        return sorted(index)
    template = spec.modalities[0].sources[0].template
    if "{id}" not in template:
        raise SpecError(
            f"template {template!r} has no {{id}}",
            spec.source_file,
            "put {id} in the first modality's path template",
        )
    pattern, rx = _template_regex(template)
    root = spec.root
    if isinstance(root, RemotePath):
        raise needs_local("discovering sample ids without a split file or index table", str(root))
    ids = set()
    for p in root.glob(pattern):
        m = rx.match(p.relative_to(root).as_posix())
        if m:
            ids.add(m.group("id"))
    if not ids:
        raise DataError(
            f"no samples found matching {pattern!r}",
            str(root),
            "check the data root and the first modality's path template",
        )
    return sorted(ids)


def read_split_file(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split from the spec's official split source (:mod:`.splits`); an id listed
    twice in a split is used once (:func:`split_file_columns` keeps repeats)."""
    return {k: list(dict.fromkeys(v)) for k, v in split_file_columns(spec).items()}


def split_file_columns(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split as the official split source lists them, repeats kept (an unfinished
    dataset folder is refused first, :func:`require_finished`)."""
    require_finished(spec.root)
    return listed_splits(spec)


def split_by_ratio(ids: Sequence[str], ratios: Sequence[float], seed: int) -> dict[str, list[str]]:
    """Shuffle ``ids`` with ``seed`` and cut train/val/test by ``ratios`` (order-independent)."""
    ids = sorted(ids)
    n = len(ids)
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = [ids[i] for i in perm]
    n_val = int(round(n * ratios[1]))
    n_test = int(round(n * ratios[2]))
    if ratios[1] > 0:
        n_val = max(1, n_val)
    if ratios[2] > 0:
        n_test = max(1, n_test)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"only {n} sample(s): too few to split train/val/test",
            None,
            "add samples, give a split file, or cut the scenes into tiles (modalens data tile)",
        )
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


#: the file a dataset writer (``modalens synth``) keeps in the folder until its last step
UNFINISHED_FILE = "unfinished.json"


def restart_command(root: str | Path) -> str:
    """The command that restarts the unfinished dataset in ``root``, as its marker records it
    (``modalens synth ROOT --overwrite`` when it records none)."""
    default = shlex.join(["modalens", "synth", str(root), "--overwrite"])
    try:
        command = json.loads((Path(root) / UNFINISHED_FILE).read_text()).get("restart")
    except (OSError, ValueError, AttributeError):
        return default
    return command if isinstance(command, str) and command else default


def require_finished(root: Location) -> None:
    """Refuse a dataset folder whose writer did not finish (it holds :data:`UNFINISHED_FILE`).

    Raises:
        DataError: the folder holds an interrupted dataset; the message says how to restart it.
    """
    if isinstance(root, RemotePath) or not (Path(root) / UNFINISHED_FILE).is_file():
        return
    raise DataError(
        "the dataset is unfinished: modalens synth was interrupted while writing it",
        str(root),
        f"restart it with {restart_command(root)}",
    )


def sample_ids(spec: DatasetSpec, check_files: bool = True) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` from the split file or 80/10/10 by seed.

    With ``check_files`` every id must have its first modality's first file; otherwise a
    DataError names the first missing ids and the folder; an unfinished dataset folder is a
    DataError too (:func:`require_finished`).
    """
    require_finished(spec.root)
    index = index_table(spec)
    if spec.split.kind != "random":
        splits = read_split_file(spec)
    else:
        splits = split_by_ratio(discover_ids(spec, index), spec.split.ratios, spec.split.seed)
        for split, ids in splits.items():
            if not ids and spec.split.ratios[SPLIT_NAMES.index(split)] > 0:
                raise DataError(f"split {split!r} is empty", str(spec.root), "add samples")
    if check_files:
        _check_ids_have_files(spec, splits, index)
    return splits


def _check_ids_have_files(
    spec: DatasetSpec, splits: Mapping[str, list[str]], index: Mapping[str, Any] | None
) -> None:
    src = spec.modalities[0].sources[0]
    remote = isinstance(spec.root, RemotePath)
    for split, ids in splits.items():
        missing: list[tuple[str, Location | None]] = []
        # a URL root: one request per file is slow, so only the first id of each split is
        # checked here (a missing file of another sample fails when it is read)
        for i in ids[:1] if remote else ids:
            if index is not None and i not in index:
                missing.append((i, None))
                continue
            p = src.path(spec.root, template_fields(i, index))
            if not p.exists():
                missing.append((i, p))
        if missing:
            first = ", ".join(repr(i) for i, _ in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            path = next((p for _, p in missing if p is not None), None)
            where = str(path.parent) if path is not None else "the spec's index table"
            raise DataError(
                f"{len(missing)} {split} ids have no {spec.modalities[0].name} file: {first}{more}",
                where,
                "check the data root, the path template and the split file",
            )


def template_fields(
    sample_id: str, index: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any]:
    if index is None:
        return {"id": sample_id}
    row = index.get(sample_id)
    if row is None:
        raise DataError(
            f"sample {sample_id!r} is not in the index table",
            None,
            "check the split file ids against the data",
        )
    return {**row, "id": sample_id}
