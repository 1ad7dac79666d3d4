"""Reading one sample: every modality onto the sample grid, normalised, and its target.

:class:`SampleReader` reads every modality of a sample onto the *sample grid* (the
finest-resolution source of the first modality) by windowed GeoTIFF reads, normalises each
modality per its :class:`~modalens.data.spec.Normalization` (:func:`normalize`) and reads the
spec's main target: a continuous raster divided by its scale, a class raster looked up to class
indices (:class:`ClassLookup`, codes outside the class list are a one-line DataError) or a
scene's label set from JSON. :func:`assemble` combines inputs and target into the sample dict:

- ``image``: float32 [C,H,W], normalised; an invalid value (no-data, NaN, +-inf, outside the
  source) is filled *per channel* with 0 *after* normalisation (:data:`INPUT_FILL`: the train
  mean of a standardised band, 0 of a scaled one, "no class" of a one-hot modality); the pixel's
  other channels keep their values;
- ``valid``: bool [H,W], target valid AND at least one input channel valid (a pixel leaves the
  loss and the metrics only where the target is invalid or *every* input channel is);
- ``target``: continuous float32 [1,H,W] = value/scale (invalid -> 0); classes int64 [H,W]
  class index (invalid -> -1); scene labels float32 [K] multi-hot;
- ``id`` and ``window`` (row_off, col_off, height, width) on the sample grid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, SpecError
from .rasters import (
    RasterCache,
    RasterGrid,
    ReadPlan,
    WindowTuple,
    check_band_indices,
    plan_read,
    read_onto,
)
from .remote import Location
from .samples import index_table, template_fields
from .spec import DatasetSpec, Modality, SourceFile

#: the value (in normalised space) that replaces an invalid input value, channel by channel
INPUT_FILL = 0.0


def fill_invalid(image: np.ndarray) -> np.ndarray:
    """Fill the invalid (non-finite) values of a normalised image [C,h,w] with
    :data:`INPUT_FILL` in place, channel by channel, and return the input validity [h,w]:
    True where at least one channel was valid."""
    invalid = ~np.isfinite(image)
    if not invalid.any():
        return np.ones(image.shape[1:], bool)
    image[invalid] = INPUT_FILL
    return ~invalid.all(axis=0)


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
    path: Location
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
        self._grids: dict[str, tuple[RasterGrid, Location]] = {}
        #: modalities not read (absent at deployment): their normalised per-channel fill
        self.missing: dict[str, np.ndarray] = {}
        self._plans: dict[tuple[str, str], ReadPlan] = {}
        self._checked: set[str] = set()
        self._sources: dict[str, list[_Source]] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._slices = spec.channel_slices()
        self._luts = {
            m.name: ClassLookup(m.classes) for m in spec.modalities if m.classes is not None
        }
        codes = spec.target.class_codes
        self._target_lut = ClassLookup(codes) if codes else None

    # ------------------------------------------------------------------ paths and grids
    @property
    def index(self) -> dict[str, dict[str, str]] | None:
        if not self._index_loaded:
            self._index = index_table(self.spec)
            self._index_loaded = True
        return self._index

    def fields(self, sample_id: str) -> dict[str, Any]:
        return template_fields(sample_id, self.index)

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
                    _Source(m, s, s.path(self.spec.root, fields), bands, slice(start, start + n))
                )
                start += n
        self._sources[sample_id] = out
        return out

    def paths(self, sample_id: str) -> dict[str, list[Location]]:
        """Input file paths per modality."""
        out: dict[str, list[Location]] = {}
        for src in self.sources(sample_id):
            out.setdefault(src.modality.name, []).append(src.path)
        return out

    def target_path(self, sample_id: str) -> Location | None:
        t = self.spec.target
        if t.source is None:
            return None
        return t.source.path(self.spec.root, self.fields(sample_id))

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

    def _grid(self, sample_id: str) -> tuple[RasterGrid, Location]:
        got = self._grids.get(sample_id)
        if got is not None:
            return got
        first = next(m.name for m in self.spec.modalities if m.name not in self.missing)
        best: tuple[float, RasterGrid, Location] | None = None
        for src in self.sources(sample_id):
            if src.modality.name != first:
                continue
            g = RasterGrid.of(self._open(src))
            area = g.res[0] * g.res[1]
            if best is None or area < best[0] * (1 - 1e-9):
                best = (area, g, src.path)
        assert best is not None
        self._grids[sample_id] = (best[1], best[2])
        return best[1], best[2]

    def _plan(self, sample_id: str, path: Location, ds: Any) -> ReadPlan:
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
        """Normalised image float32 [C,h,w] (invalid values filled per channel, see
        :func:`fill_invalid`) and input validity bool [h,w] (any channel valid)."""
        grid = self.grid(sample_id)
        win = window if window is not None else grid.full_window
        image = np.empty((self.spec.n_channels, win[2], win[3]), np.float32)
        for m in self.spec.modalities:
            sl = self._slices[m.name]
            if m.name in self.missing:  # absent: its files are never opened
                image[sl] = self.missing[m.name].reshape(-1, 1, 1)
                continue
            onehot = m.normalization.type == "onehot"
            raw = np.empty((len(m.bands), win[2], win[3]), np.float32) if onehot else image[sl]
            for src in self.sources(sample_id):
                if src.modality is m:
                    self._read_source(sample_id, src, grid, win, raw[src.channels])
            normalize(m, raw, out=image[sl] if onehot else None)
        return image, fill_invalid(image)

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
        if not t.is_dense:
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
        arr = read_onto(ds, g, band, plan, win, t.resampling, nodata=t.nodata)
        if t.is_continuous:
            if t.scale != 1:
                arr *= np.float32(1.0 / t.scale)
            return arr, ~np.isnan(arr[0])
        assert self._target_lut is not None
        idx = self._target_lut.index(t.map_codes(arr[0]), sample_id, path, "the target")
        return idx, idx >= 0

    def scene_labels(self, sample_id: str) -> np.ndarray:
        """Multi-hot float32 [K] from the target JSON's ``key`` list, or from the index
        table's ``column`` (labels joined by ``separator``) when the target names one."""
        got = self._labels.get(sample_id)
        if got is not None:
            return got.copy()
        t = self.spec.target
        assert t.classes is not None
        if t.column is not None:
            labels, where, what = self._column_labels(sample_id), "the index table", t.column
        else:
            labels, where, what = (
                self._json_labels(sample_id),
                str(self.target_path(sample_id)),
                t.key,
            )
        if t.label_map:
            labels = _mapped_labels(labels, dict(t.label_map), sample_id, where)
        lookup = {str(c): k for k, c in enumerate(t.classes)}
        vec = np.zeros(len(t.classes), np.float32)
        for lab in labels:
            k = lookup.get(str(lab))
            if k is None:
                raise DataError(
                    f"unknown label {str(lab)!r} in {what!r} of sample {sample_id!r}",
                    where,
                    "add it to target.classes",
                )
            vec[k] = 1.0
        self._labels[sample_id] = vec
        return vec.copy()

    def _column_labels(self, sample_id: str) -> list[str]:
        """The labels of ``sample_id`` in the index table's target column."""
        t = self.spec.target
        assert t.column is not None
        value = self.fields(sample_id).get(t.column)
        if value is None:
            raise DataError(
                f"the index table has no column {t.column!r} (sample {sample_id!r})",
                self.spec.index_builder or "index table",
                "set target.column to the index column holding the labels",
            )
        return [lab.strip() for lab in str(value).split(t.separator) if lab.strip()]

    def _json_labels(self, sample_id: str) -> list[Any]:
        """The ``key`` list of ``sample_id``'s label JSON."""
        t = self.spec.target
        path = self.target_path(sample_id)
        assert path is not None
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
        return [labels] if isinstance(labels, (str, int)) else list(labels)

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
    t = spec.target
    if t.is_dense:  # continuous [1,h,w] -> 0, class indices [h,w] -> -1 where invalid
        target = target.astype(t.dtype, copy=False)
        target[..., ~valid] = t.fill
    return {"image": image, "valid": valid, "target": target, "id": sample_id, "window": window}


class ClassLookup:
    """Class code -> index lookup with a one-line error for codes outside the class list."""

    def __init__(self, classes: Sequence[Any]) -> None:
        self.classes = np.asarray([int(c) for c in classes], np.int64)
        lo, hi = int(self.classes.min()), int(self.classes.max())
        self.small = lo >= 0 and hi < 65536
        if self.small:
            self.table = np.full(hi + 1, -1, np.int64)
            self.table[self.classes] = np.arange(len(self.classes))

    def index(self, codes: np.ndarray, sample_id: str, path: Location, what: str) -> np.ndarray:
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

    def check(self, codes: np.ndarray, sample_id: str, path: Location, what: str) -> None:
        finite = codes[~np.isnan(codes)] if codes.dtype.kind == "f" else codes.ravel()
        if finite.size == 0:
            return
        uniq = np.unique(finite)
        if uniq.size and not np.isin(uniq, self.classes).all():
            self._raise(uniq[~np.isin(uniq, self.classes)], sample_id, path, what)

    def _raise(self, values: np.ndarray, sample_id: str, path: Location, what: str) -> None:
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


def _mapped_labels(
    labels: list[Any], mapping: dict[str, str], sample_id: str, where: str
) -> list[str]:
    """``labels`` through a target's ``label_map`` (labels mapped to ``""`` left out)."""
    unknown = [str(lab) for lab in labels if str(lab) not in mapping]
    if unknown:
        raise DataError(
            f"label {unknown[0]!r} of sample {sample_id!r} is not in target.label_map",
            where,
            "add it to the label map (an empty class leaves it out)",
        )
    return [mapping[str(lab)] for lab in labels if mapping[str(lab)]]
