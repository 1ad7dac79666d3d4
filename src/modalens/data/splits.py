"""Official train/val/test splits: the ``split`` entry of a spec and the files it names.

:func:`parse_split` reads the ``split`` mapping of a spec file into a
:class:`~modalens.data.spec.SplitSpec`; :func:`listed_splits` reads the ids of each split from
whichever official source the split names (a table with a split column, one list file per
split, or one CSV with a column per split), repeats kept. Which samples exist and the seeded
80/10/10 split live in :mod:`.samples`, which dedups these lists.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import DataError, SpecError
from .remote import Location, RemotePath, as_location
from .spec import SPLIT_NAMES, DatasetSpec, SplitSpec
from .specparts import as_flag, as_number, check_keys, where_key

_SPLIT_KEYS = {
    "file",
    "columns",
    "ratios",
    "seed",
    "allow_leakage",
    "lists",
    "list_pattern",
    "table",
    "table_id",
    "table_split",
}


def parse_split(d: Any, source: str | None) -> SplitSpec:
    """The ``split`` entry (a mapping, a split file path or None) as a :class:`SplitSpec`."""
    if d is None:
        return SplitSpec()
    if isinstance(d, str):
        d = {"file": d}
    if not isinstance(d, Mapping):
        raise SpecError(
            "split must be a mapping", where_key("split", source), "e.g. split: {file: x.csv}"
        )
    check_keys(d, _SPLIT_KEYS, "split", source)
    columns = dict(SplitSpec().columns)
    user_cols = d.get("columns") or {}
    if not isinstance(user_cols, Mapping):
        raise SpecError("split.columns must be a mapping", where_key("split.columns", source), "")
    for k, v in user_cols.items():
        if k not in SPLIT_NAMES:
            raise SpecError(
                f"unknown split {k!r}",
                where_key("split.columns", source),
                f"use {', '.join(SPLIT_NAMES)}",
            )
        columns[k] = str(v)
    ratios = d.get("ratios", [0.8, 0.1, 0.1])
    if isinstance(ratios, list):
        ratios = [as_number(r, "split.ratios", source) for r in ratios]
    if not isinstance(ratios, list) or len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-6:
        raise SpecError(
            "split ratios must be three numbers summing to 1",
            where_key("split.ratios", source),
            "e.g. ratios: [0.8, 0.1, 0.1]",
        )
    r_train, r_val, r_test = (float(r) for r in ratios)
    return SplitSpec(
        file=d.get("file"),
        columns=tuple((k, columns[k]) for k in SPLIT_NAMES),
        ratios=(r_train, r_val, r_test),
        seed=as_number(d.get("seed", 0), "split.seed", source, int),
        allow_leakage=as_flag(d.get("allow_leakage", False), "split.allow_leakage", source),
        lists=_split_lists(d.get("lists"), source),
        list_pattern=_list_pattern(d.get("list_pattern"), source),
        table=None if d.get("table") is None else str(d["table"]),
        table_id=str(d.get("table_id", "id")),
        table_split=str(d.get("table_split", "split")),
    )


def _split_lists(lists: Any, source: str | None) -> tuple[tuple[str, str], ...]:
    """``split.lists``: a mapping of every split name to its list file (or nothing)."""
    if lists is None:
        return ()
    where = where_key("split.lists", source)
    if not isinstance(lists, Mapping) or set(lists) != set(SPLIT_NAMES):
        raise SpecError(
            "split.lists must map train, val and test to their list files",
            where,
            "e.g. lists: {train: train.csv, val: val.csv, test: test.csv}",
        )
    return tuple((k, str(lists[k])) for k in SPLIT_NAMES)


def _list_pattern(pattern: Any, source: str | None) -> str | None:
    """``split.list_pattern``: a regular expression with an ``id`` group (or nothing)."""
    if pattern is None:
        return None
    try:
        rx = re.compile(str(pattern))
    except re.error as exc:
        raise SpecError(
            f"split.list_pattern is not a regular expression ({exc})",
            where_key("split.list_pattern", source),
            "e.g. '(?P<id>.+)_S1Hand\\.tif'",
        ) from None
    if "id" not in rx.groupindex:
        raise SpecError(
            "split.list_pattern has no (?P<id>...) group",
            where_key("split.list_pattern", source),
            "e.g. '(?P<id>.+)_S1Hand\\.tif'",
        )
    return str(pattern)


def clean_id(value: Any) -> str | None:
    """A sample id as text (``12.0`` -> ``12``), or None for an empty or NaN cell."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    if re.fullmatch(r"-?\d+\.0*", text):
        return text.split(".")[0]
    return text


def under_root(spec: DatasetSpec, name: str) -> Location:
    """A file the spec names (split file, index table): absolute, a URL, or under the root."""
    p = as_location(name)
    return p if p.is_absolute() else spec.root / name


def read_csv(path: Location, **kwargs: Any) -> pd.DataFrame:
    """:func:`pandas.read_csv` of a local file or a URL (read whole, :mod:`.remote`)."""
    if isinstance(path, RemotePath):
        return pd.read_csv(io.BytesIO(path.read_bytes()), **kwargs)
    return pd.read_csv(path, **kwargs)


def read_table(path: Location) -> pd.DataFrame:
    """A CSV or Parquet (``.parquet``) table, local or a URL; a one-line DataError when it
    cannot be parsed."""
    try:
        if str(path).endswith(".parquet"):
            data = path.read_bytes() if isinstance(path, RemotePath) else path
            return pd.read_parquet(io.BytesIO(data) if isinstance(data, bytes) else data)
        return read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"cannot parse split table ({' '.join(str(exc).split())[:80]})",
            str(path),
            "give a CSV or Parquet table with an id and a split column",
        ) from None


def _existing(spec: DatasetSpec, name: str, key: str) -> Location:
    """The split file ``name`` under the root, or a one-line DataError naming it and ``key``."""
    path = under_root(spec, name)
    if not path.exists():
        raise DataError(
            "split file not found",
            str(path),
            f"check the data root (--data, if the data has moved) or the spec's {key}",
        )
    return path


def listed_splits(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split as the spec's official split source lists them, repeats kept.

    Raises:
        DataError: a split file is missing, unreadable, lacks a column, or leaves a split empty.
    """
    kind = spec.split.kind
    if kind == "table":
        out = _table_splits(spec)
    elif kind == "lists":
        out = {split: _list_ids(spec, path) for split, path in spec.split.lists}
    elif kind == "file":
        out = _column_splits(spec)
    else:
        raise ValueError("a random split lists no ids")
    for split, ids in out.items():
        if not ids:
            raise DataError(
                f"split {split!r} is empty",
                str(under_root(spec, spec.split.files[0])),
                "list sample ids for it, or use a random split (split: {ratios: [...]})",
            )
    return out


def _list_ids(spec: DatasetSpec, name: str) -> list[str]:
    """The ids one headerless list file names (first field, or ``list_pattern``'s id group)."""
    path = _existing(spec, name, "split.lists")
    rx = re.compile(spec.split.list_pattern) if spec.split.list_pattern else None
    text = path.read_bytes().decode("utf-8", errors="replace")
    ids = []
    for n, line in enumerate(text.splitlines(), 1):
        field = line.split(",")[0].strip()
        if not field:
            continue
        if rx is None:
            ids.append(field)
            continue
        m = rx.fullmatch(field)
        if m is None:
            raise DataError(
                f"line {n} ({field!r}) does not match split.list_pattern",
                str(path),
                f"fix the line or the pattern {spec.split.list_pattern!r}",
            )
        ids.append(m.group("id"))
    return ids


def _table_splits(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split from a table's id and split columns (values mapped by ``columns``)."""
    assert spec.split.table is not None
    path = _existing(spec, spec.split.table, "split.table")
    df = read_table(path)
    for col, key in ((spec.split.table_id, "table_id"), (spec.split.table_split, "table_split")):
        if col not in df.columns:
            raise DataError(
                f"split table has no column {col!r} (columns: {', '.join(map(str, df.columns))})",
                str(path),
                f"name the column with split.{key}",
            )
    values = df[spec.split.table_split].astype(str)
    out = {}
    for split in SPLIT_NAMES:
        picked = df.loc[values == spec.split.column(split), spec.split.table_id].tolist()
        out[split] = [i for i in (clean_id(v) for v in picked) if i is not None]
    return out


def _column_splits(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split from one CSV with a column per split (NaN-padded)."""
    assert spec.split.file is not None
    path = _existing(spec, spec.split.file, "split.file")
    try:
        df = read_csv(path, dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot parse split file ({' '.join(str(exc).split())[:80]})",
            str(path),
            "write a CSV with columns train, validation, test",
        ) from None
    out: dict[str, list[str]] = {}
    for split in SPLIT_NAMES:
        col = spec.split.column(split)
        if col not in df.columns:
            raise DataError(
                f"split file has no column {col!r} (columns: {', '.join(map(str, df.columns))})",
                str(path),
                f"add the column or map it with split.columns.{split}",
            )
        out[split] = [i for i in (clean_id(v) for v in df[col].tolist()) if i is not None]
    return out
