"""Samples: splits, reading a sample onto one grid, normalisation, crops and sample weights.

- :func:`sample_ids` gives the train/val/test ids (the spec's split file, else 80/10/10 by seed).
- :class:`SampleReader` reads every modality of a sample onto the sample grid (the
  finest-resolution source of the *first* modality), normalises it per
  :class:`~modalens.modalities.Normalization` and reads the target.
- :class:`MultimodalDataset` is the torch ``Dataset`` of (random or centre) crops.
- :func:`make_weighted_sampler` draws patches with probability ~ 1 / mean target.

A sample dict holds ``image`` (float32 [C,H,W], normalised, NaN/no-data -> 0 *after*
normalisation), ``valid`` (bool [H,W]: target valid AND every input channel valid), ``target``
(continuous: float32 [1,H,W] = value/scale, invalid -> 0; classes: int64 [H,W] class index,
invalid -> -1; scene_labels: float32 [K] multi-hot), ``id`` and ``window``
(row_off, col_off, height, width) on the sample grid.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from . import presets
from .errors import DataError, SpecError
from .modalities import SPLIT_NAMES, DatasetSpec, Modality, SourceFile
from .rasters import (
    RasterCache,
    RasterGrid,
    ReadPlan,
    WindowTuple,
    check_band_indices,
    plan_read,
    read_onto,
)

MAX_CROP_TRIES = 20


# ============================================================================ ids and splits
_INDEX_CACHE: dict[tuple[str, ...], dict[str, dict[str, str]]] = {}


def _index_key(spec: DatasetSpec) -> tuple[str, ...] | None:
    """Cache key of a spec's index table: its source and that source's modification time."""
    if spec.index_builder:
        _, _, arg = spec.index_builder.partition(":")
        src = Path(spec.root) / arg if arg else Path(spec.root)
    elif spec.index:
        p = Path(spec.index)
        src = p if p.is_absolute() else Path(spec.root) / p
    else:
        return None
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
    df = presets.build_index(spec)
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
    root = Path(spec.root)
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


def _clean_id(value: Any) -> str | None:
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


def read_split_file(spec: DatasetSpec) -> dict[str, list[str]]:
    """Ids per split from the spec's split CSV (one column per split, NaN-padded)."""
    assert spec.split.file is not None
    path = Path(spec.split.file)
    path = path if path.is_absolute() else Path(spec.root) / path
    if not path.exists():
        raise DataError(
            "split file not found", str(path), "check split.file or remove it to split 80/10/10"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=True)
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
        ids = [i for i in (_clean_id(v) for v in df[col].tolist()) if i is not None]
        if not ids:
            raise DataError(
                f"split {split!r} is empty",
                f"column {col!r} of {path}",
                "put sample ids in it or remove split.file to split 80/10/10 by seed",
            )
        out[split] = list(dict.fromkeys(ids))
    return out


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
            f"only {n} samples: too few to split train/val/test",
            None,
            "add samples or give a split file",
        )
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def sample_ids(spec: DatasetSpec, check_files: bool = True) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` from the split file or 80/10/10 by seed.

    With ``check_files`` every id must have its first modality's first file; otherwise a
    DataError names the first missing ids and the folder.
    """
    index = index_table(spec)
    if spec.split.file:
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
    for split, ids in splits.items():
        missing: list[tuple[str, Path | None]] = []
        for i in ids:
            if index is not None and i not in index:
                missing.append((i, None))
                continue
            p = src.path(Path(spec.root), _fields(i, index))
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


def _fields(sample_id: str, index: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
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


# ============================================================================ reading samples
def source_band_counts(m: Modality) -> list[int]:
    """Number of the modality's bands each source file provides (in order)."""
    given = [len(s.bands) if s.bands is not None else None for s in m.sources]
    n_none = sum(g is None for g in given)
    rest = len(m.bands) - sum(g for g in given if g is not None)
    each = rest // n_none if n_none else 0
    return [g if g is not None else each for g in given]


@dataclass
class _Source:
    modality: Modality
    source: SourceFile
    path: Path
    bands: list[int]
    channels: slice  # raw band slice within the modality


def normalize(m: Modality, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Normalise raw float values [B,h,w] (NaN = no-data) to [n_channels,h,w]; NaN kept.

    ``raw`` may be modified in place and returned.
    """
    n = m.normalization
    if n.type == "onehot":
        assert m.classes is not None
        codes = raw[0]
        res = out if out is not None else np.empty((len(m.classes),) + codes.shape, np.float32)
        nan = np.isnan(codes)
        for k, c in enumerate(m.classes):
            np.equal(codes, c, out=res[k], casting="unsafe")
        if nan.any():
            res[:, nan] = np.nan
        return res
    x = raw if out is None else out
    if out is not None and out is not raw:
        out[...] = raw
    if n.type in ("scale", "ordinal"):
        if n.offset:
            x -= np.float32(n.offset)
        if n.divisor != 1:
            x *= np.float32(1.0 / n.divisor)
    elif n.type == "standard":
        if n.mean is None or n.std is None:
            raise SpecError(
                f"modality {m.name!r} uses standard normalisation but has no mean/std",
                None,
                "compute statistics first (modalens.stats.load_or_compute + apply_statistics)",
            )
        mean = np.asarray(n.mean, np.float32)[:, None, None]
        std = np.asarray(n.std, np.float32)[:, None, None]
        x -= mean
        x /= std
    return x


class SampleReader:
    """Reads samples of a spec onto their sample grid (see the module docstring).

    Open files are cached (LRU, per process), as are each sample's grid and read plans, so
    repeated windowed reads of the same scene cost one GDAL read per file.
    """

    def __init__(self, spec: DatasetSpec, cache_size: int = 64, check_values: bool = True) -> None:
        self.spec = spec
        self.check_values = check_values
        self._files = RasterCache(cache_size)
        self._index: dict[str, dict[str, str]] | None = None
        self._index_loaded = False
        self._grids: dict[str, tuple[RasterGrid, Path]] = {}
        self._plans: dict[tuple[str, str], ReadPlan] = {}
        self._checked: set[str] = set()
        self._sources: dict[str, list[_Source]] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._slices = spec.channel_slices()
        self._luts = {m.name: _Lut(m.classes) for m in spec.modalities if m.classes is not None}
        t = spec.target
        self._target_lut = _Lut(t.classes) if t.kind == "classes" and t.classes else None

    # ------------------------------------------------------------------ paths and grids
    @property
    def index(self) -> dict[str, dict[str, str]] | None:
        if not self._index_loaded:
            self._index = index_table(self.spec)
            self._index_loaded = True
        return self._index

    def fields(self, sample_id: str) -> dict[str, Any]:
        return _fields(sample_id, self.index)

    def sources(self, sample_id: str) -> list[_Source]:
        """Every input source file of a sample, in channel order."""
        got = self._sources.get(sample_id)
        if got is not None:
            return got
        fields = self.fields(sample_id)
        out: list[_Source] = []
        for m in self.spec.modalities:
            start = 0
            for s, n in zip(m.sources, source_band_counts(m), strict=True):
                bands = list(s.bands) if s.bands is not None else list(range(1, n + 1))
                out.append(
                    _Source(
                        m, s, s.path(Path(self.spec.root), fields), bands, slice(start, start + n)
                    )
                )
                start += n
        self._sources[sample_id] = out
        return out

    def paths(self, sample_id: str) -> dict[str, list[Path]]:
        """Input file paths per modality."""
        out: dict[str, list[Path]] = {}
        for src in self.sources(sample_id):
            out.setdefault(src.modality.name, []).append(src.path)
        return out

    def target_path(self, sample_id: str) -> Path | None:
        t = self.spec.target
        if t.source is None:
            return None
        return t.source.path(Path(self.spec.root), self.fields(sample_id))

    def _open(self, src: _Source) -> Any:
        ds = self._files.get(src.path)
        key = str(src.path)
        if key not in self._checked:
            check_band_indices(
                ds, src.source.bands, len(src.bands), what=f"modality {src.modality.name!r}"
            )
            self._checked.add(key)
        return ds

    def grid(self, sample_id: str) -> RasterGrid:
        """The sample grid: the finest-resolution source of the first modality."""
        return self._grid(sample_id)[0]

    def _grid(self, sample_id: str) -> tuple[RasterGrid, Path]:
        got = self._grids.get(sample_id)
        if got is not None:
            return got
        first = self.spec.modalities[0].name
        best: tuple[float, RasterGrid, Path] | None = None
        for src in self.sources(sample_id):
            if src.modality.name != first:
                break
            g = RasterGrid.of(self._open(src))
            area = g.res[0] * g.res[1]
            if best is None or area < best[0] * (1 - 1e-9):
                best = (area, g, src.path)
        assert best is not None
        self._grids[sample_id] = (best[1], best[2])
        return best[1], best[2]

    def _plan(self, sample_id: str, path: Path, ds: Any) -> ReadPlan:
        key = (sample_id, str(path))
        plan = self._plans.get(key)
        if plan is None:
            grid, ref = self._grid(sample_id)
            plan = plan_read(ds, grid, str(ref))
            self._plans[key] = plan
        return plan

    # ------------------------------------------------------------------ inputs
    def read_raw(
        self,
        sample_id: str,
        window: WindowTuple | None = None,
        modalities: Sequence[str] | None = None,
        grid: RasterGrid | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw band values per modality, float32 [B,h,w] on the sample grid, no-data = NaN.

        Categorical codes are checked against the class list. ``grid`` replaces the sample
        grid (e.g. a decimated one: ``reader.grid(i).scaled(4)``).
        """
        sample_grid = self.grid(sample_id)
        g = grid if grid is not None else sample_grid
        win = window if window is not None else g.full_window
        out: dict[str, np.ndarray] = {}
        for m in self.spec.modalities:
            if modalities is not None and m.name not in modalities:
                continue
            out[m.name] = np.empty((len(m.bands), win[2], win[3]), np.float32)
        for src in self.sources(sample_id):
            m = src.modality
            if m.name not in out:
                continue
            self._read_source(sample_id, src, g, win, out[m.name][src.channels])
        return out

    def _read_source(
        self, sample_id: str, src: _Source, grid: RasterGrid, win: WindowTuple, out: np.ndarray
    ) -> np.ndarray:
        m = src.modality
        ds = self._open(src)
        plan = (
            self._plan(sample_id, src.path, ds)
            if grid is self.grid(sample_id)
            else plan_read(ds, grid, str(self._grid(sample_id)[1]))
        )
        arr = read_onto(ds, grid, src.bands, plan, win, m.resampling, nodata=m.nodata, out=out)
        if m.is_categorical and self.check_values:
            self._luts[m.name].check(arr, sample_id, src.path, f"modality {m.name!r}")
        return arr

    def read_inputs(
        self, sample_id: str, window: WindowTuple | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image float32 [C,h,w] (no-data -> 0) and input validity bool [h,w]."""
        grid = self.grid(sample_id)
        win = window if window is not None else grid.full_window
        image = np.empty((self.spec.n_channels, win[2], win[3]), np.float32)
        for m in self.spec.modalities:
            sl = self._slices[m.name]
            onehot = m.normalization.type == "onehot"
            raw = np.empty((len(m.bands), win[2], win[3]), np.float32) if onehot else image[sl]
            for src in self.sources(sample_id):
                if src.modality is m:
                    self._read_source(sample_id, src, grid, win, raw[src.channels])
            normalize(m, raw, out=image[sl] if onehot else None)
        invalid = np.isnan(image)
        bad_pixels = invalid.any(axis=0)
        if bad_pixels.any():
            image[invalid] = 0.0
        return image, ~bad_pixels

    # ------------------------------------------------------------------ target
    def read_target(
        self, sample_id: str, window: WindowTuple | None = None, grid: RasterGrid | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Target and its validity on the window: continuous float32 [1,h,w] (value/scale,
        NaN where invalid), classes int64 [h,w] (-1 where invalid), scene_labels float32 [K]
        with validity all True [h,w]."""
        t = self.spec.target
        g = grid if grid is not None else self.grid(sample_id)
        win = window if window is not None else g.full_window
        if t.kind == "scene_labels":
            return self.scene_labels(sample_id), np.ones((win[2], win[3]), bool)
        path = self.target_path(sample_id)
        assert path is not None and t.source is not None
        ds = self._files.get(path)
        key = str(path)
        if key not in self._checked:
            check_band_indices(ds, t.bands, 1, what="the target")
            self._checked.add(key)
        band = [t.bands[0]]
        if g is self.grid(sample_id):
            plan = self._plan(sample_id, path, ds)
        else:
            plan = plan_read(ds, g, str(self._grid(sample_id)[1]))
        resampling = "bilinear" if t.kind == "continuous" else "nearest"
        arr = read_onto(ds, g, band, plan, win, resampling, nodata=t.nodata)
        if t.kind == "continuous":
            if t.scale != 1:
                arr *= np.float32(1.0 / t.scale)
            return arr, ~np.isnan(arr[0])
        assert self._target_lut is not None
        idx = self._target_lut.index(arr[0], sample_id, path, "the target")
        return idx, idx >= 0

    def scene_labels(self, sample_id: str) -> np.ndarray:
        """Multi-hot float32 [K] from the target JSON's ``key`` list."""
        got = self._labels.get(sample_id)
        if got is not None:
            return got.copy()
        t = self.spec.target
        path = self.target_path(sample_id)
        assert path is not None and t.classes is not None
        if not path.exists():
            raise DataError(
                f"label file of sample {sample_id!r} not found",
                str(path),
                "check the target's path template",
            )
        try:
            info = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DataError(
                f"cannot parse the label JSON of sample {sample_id!r}", str(path), "fix the JSON"
            ) from None
        labels = info.get(t.key) if isinstance(info, dict) else None
        if labels is None:
            raise DataError(
                f"label JSON has no key {t.key!r} (sample {sample_id!r})",
                str(path),
                "set target.key to the JSON key holding the labels",
            )
        if isinstance(labels, (str, int)):
            labels = [labels]
        lookup = {str(c): k for k, c in enumerate(t.classes)}
        vec = np.zeros(len(t.classes), np.float32)
        for lab in labels:
            k = lookup.get(str(lab))
            if k is None:
                raise DataError(
                    f"unknown label {str(lab)!r} in key {t.key!r} of sample {sample_id!r}",
                    str(path),
                    "add it to target.classes",
                )
            vec[k] = 1.0
        self._labels[sample_id] = vec
        return vec.copy()

    # ------------------------------------------------------------------ whole samples
    def read(self, sample_id: str, window: WindowTuple | None = None) -> dict[str, Any]:
        """The sample dict for ``window`` (whole scene when None); arrays are numpy."""
        grid = self.grid(sample_id)
        win = tuple(int(v) for v in (window if window is not None else grid.full_window))
        target, tvalid = self.read_target(sample_id, win)  # type: ignore[arg-type]
        image, ivalid = self.read_inputs(sample_id, win)  # type: ignore[arg-type]
        return assemble(self.spec, sample_id, win, image, ivalid, target, tvalid)  # type: ignore[arg-type]

    def close(self) -> None:
        self._files.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = RasterCache(self._files.size)
        return state


def assemble(
    spec: DatasetSpec,
    sample_id: str,
    window: WindowTuple,
    image: np.ndarray,
    input_valid: np.ndarray,
    target: np.ndarray,
    target_valid: np.ndarray,
) -> dict[str, Any]:
    """Combine inputs and target into the sample dict (invalid target pixels filled)."""
    valid = input_valid & target_valid
    kind = spec.target.kind
    if kind == "continuous":
        target = target.astype(np.float32, copy=False)
        target[:, ~valid] = 0.0
    elif kind == "classes":
        target = target.astype(np.int64, copy=False)
        target[~valid] = -1
    return {"image": image, "valid": valid, "target": target, "id": sample_id, "window": window}


class _Lut:
    """Class code -> index lookup with a one-line error for codes outside the class list."""

    def __init__(self, classes: Sequence[Any]) -> None:
        self.classes = np.asarray([int(c) for c in classes], np.int64)
        lo, hi = int(self.classes.min()), int(self.classes.max())
        self.small = lo >= 0 and hi < 65536
        if self.small:
            self.table = np.full(hi + 1, -1, np.int64)
            self.table[self.classes] = np.arange(len(self.classes))

    def index(self, codes: np.ndarray, sample_id: str, path: Path, what: str) -> np.ndarray:
        """Class index per pixel (-1 where NaN); codes outside the list raise a DataError."""
        if codes.dtype.kind == "f":
            nan = np.isnan(codes)
            ints = np.where(nan, -1, codes).astype(np.int64)
            fractional = (ints != codes) & ~nan
        else:
            nan = np.zeros(codes.shape, bool)
            ints = codes.astype(np.int64)
            fractional = None
        if self.small:
            inside = (ints >= 0) & (ints < len(self.table))
            idx = np.where(inside, self.table[np.clip(ints, 0, len(self.table) - 1)], -1)
        else:
            pos = np.clip(np.searchsorted(self.classes, ints), 0, len(self.classes) - 1)
            idx = np.where(self.classes[pos] == ints, pos, -1)
        bad = (idx < 0) & ~nan
        if fractional is not None:
            bad |= fractional
            idx[fractional] = -1
        if bad.any():
            self._raise(codes[bad], sample_id, path, what)
        return idx

    def check(self, codes: np.ndarray, sample_id: str, path: Path, what: str) -> None:
        finite = codes[~np.isnan(codes)] if codes.dtype.kind == "f" else codes.ravel()
        if finite.size == 0:
            return
        uniq = np.unique(finite)
        if uniq.size and not np.isin(uniq, self.classes).all():
            self._raise(uniq[~np.isin(uniq, self.classes)], sample_id, path, what)

    def _raise(self, values: np.ndarray, sample_id: str, path: Path, what: str) -> None:
        bad = np.unique(values)
        shown = ", ".join(_fmt_code(v) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DataError(
            f"values {shown} of {what} in sample {sample_id!r} are not in the class list "
            f"({', '.join(str(int(c)) for c in self.classes)})",
            str(path),
            "add them to the classes or declare them as nodata",
        )


def _fmt_code(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


# ============================================================================ dataset
def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


class MultimodalDataset(Dataset):
    """Crops of samples as torch tensors (see the module docstring for the item dict).

    ``crop_size=None`` takes ``spec.crop_size``; ``0`` or larger than the scene means the whole
    scene. ``random_crop=None`` means random crops for ``split='train'`` and centre crops
    otherwise. Random windows come from an RNG seeded by ``(seed, epoch, index)`` (call
    :meth:`set_epoch` every epoch). Crops whose target is all no-data are redrawn up to
    ``max_tries`` times, then a DataError names the sample. ``augment`` is an
    :class:`~modalens.augment.Augmentation` or its config dict, applied per item with a seed
    derived the same way.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        split: str = "train",
        ids: Sequence[str] | None = None,
        crop_size: int | None = None,
        random_crop: bool | None = None,
        augment: Any = None,
        seed: int = 0,
        max_tries: int = MAX_CROP_TRIES,
    ) -> None:
        if split not in SPLIT_NAMES:
            raise SpecError(f"unknown split {split!r}", None, f"use {', '.join(SPLIT_NAMES)}")
        for m in spec.modalities:
            if m.normalization.needs_statistics:
                raise SpecError(
                    f"modality {m.name!r} needs train statistics (standard normalisation "
                    "without mean/std)",
                    spec.source_file,
                    "call modalens.stats.apply_statistics(spec, stats) first",
                )
        self.spec = spec
        self.split = split
        self.ids = [str(i) for i in ids] if ids is not None else sample_ids(spec)[split]
        self.crop_size = spec.crop_size if crop_size is None else int(crop_size)
        self.random_crop = (split == "train") if random_crop is None else bool(random_crop)
        if isinstance(augment, Mapping):
            from .augment import Augmentation

            augment = Augmentation(augment)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.draw = 0
        self.max_tries = max(1, int(max_tries))
        self.reader = SampleReader(spec)

    def set_epoch(self, epoch: int, draw: int = 0) -> None:
        """Select the crops and augmentations of ``epoch``; ``draw`` counts repeated draws of
        the same item within the epoch (weighted sampling with replacement), so each draw of a
        scene gets its own random window."""
        self.epoch = int(epoch)
        self.draw = int(draw)

    def __len__(self) -> int:
        return len(self.ids)

    def _size(self, grid: RasterGrid) -> tuple[int, int]:
        c = self.crop_size
        if c <= 0:
            return grid.height, grid.width
        return min(c, grid.height), min(c, grid.width)

    def windows(self, index: int) -> list[WindowTuple]:
        """The candidate windows of item ``index`` in order (first is used unless redrawn)."""
        sid = self.ids[index]
        grid = self.reader.grid(sid)
        h, w = self._size(grid)
        if (h, w) == (grid.height, grid.width):
            return [(0, 0, h, w)]
        out: list[WindowTuple] = []
        if self.random_crop:
            rng = _rng(self.seed, self.epoch, self.draw, index)
        else:
            out.append(((grid.height - h) // 2, (grid.width - w) // 2, h, w))
            rng = _rng(self.seed, 0x5EED, index)
        while len(out) < self.max_tries:
            r = int(rng.integers(0, grid.height - h + 1))
            c = int(rng.integers(0, grid.width - w + 1))
            out.append((r, c, h, w))
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        sid = self.ids[index]
        reader = self.reader
        check = self.spec.target.kind != "scene_labels"
        tried = 0
        for win in self.windows(index):
            tried += 1
            target, tvalid = reader.read_target(sid, win)
            if not check or tvalid.any():
                break
        else:
            raise DataError(
                f"target of sample {sid!r} is all no-data in {tried} crops",
                str(reader.target_path(sid)),
                "remove the sample from the split or check the target's nodata value",
            )
        image, ivalid = reader.read_inputs(sid, win)
        item = assemble(self.spec, sid, win, image, ivalid, target, tvalid)
        img = torch.from_numpy(item["image"])
        tgt = torch.from_numpy(item["target"])
        valid = torch.from_numpy(item["valid"])
        if self.augment is not None:
            seed = int(_rng(self.seed, self.epoch, self.draw, index, 0xA06).integers(0, 2**62))
            a_img, a_tgt, a_valid = self.augment(img[None], tgt[None], valid[None], seed=seed)
            img, tgt, valid = a_img[0], a_tgt[0], a_valid[0]
        return {"image": img, "target": tgt, "valid": valid, "id": sid, "window": tuple(win)}


# ============================================================================ sample weights
def target_means(reader: SampleReader, ids: Sequence[str], max_size: int = 128) -> np.ndarray:
    """Mean scaled target per sample over valid pixels, from a decimated whole-scene read
    (nearest, at most ``max_size`` pixels per side): cheap and close to the full mean.
    NaN for samples whose target is all no-data."""
    out = np.full(len(ids), np.nan)
    for k, sid in enumerate(ids):
        grid = reader.grid(sid)
        factor = max(1.0, max(grid.width, grid.height) / max_size)
        g = grid.scaled(factor) if factor > 1 else grid
        target, tvalid = reader.read_target(sid, None, grid=g)
        if tvalid.any():
            out[k] = float(
                np.asarray(target, np.float64).reshape(-1, *tvalid.shape)[:, tvalid].mean()
            )
    return out


def make_weighted_sampler(
    dataset: MultimodalDataset,
    seed: int = 0,
    eps: float = 1e-3,
    num_samples: int | None = None,
    max_size: int = 128,
) -> WeightedRandomSampler:
    """WeightedRandomSampler with weight ``1 / max(mean target, eps)`` per patch.

    The mean is over the valid pixels of the sample's whole target read at a decimated
    resolution (see :func:`target_means`), so building the sampler costs one small read per
    sample. Samples whose target is all no-data get weight 0. Targets other than continuous
    (classes, scene labels) get uniform weights. Sampling is reproducible through a torch
    generator seeded with ``seed``.
    """
    n = len(dataset)
    if dataset.spec.target.kind == "continuous":
        means = target_means(dataset.reader, dataset.ids, max_size=max_size)
        weights = np.where(np.isnan(means), 0.0, 1.0 / np.maximum(np.nan_to_num(means), eps))
        if not (weights > 0).any():
            weights = np.ones(n)
    else:
        weights = np.ones(n)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=n if num_samples is None else int(num_samples),
        replacement=True,
        generator=gen,
    )
