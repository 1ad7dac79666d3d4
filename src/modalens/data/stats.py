"""Train-split statistics: per-band mean/std/min/max, class frequencies and the target mean.

Statistics are computed over the *train* split only, on the sample grid (every modality
resampled as it is fed to the model), excluding no-data, with streaming float64 accumulators
(per-sample count/mean/M2 merged with Chan's formula, so nothing is held in memory but one
modality of one scene). They are saved as JSON and reused while they match the spec:

    stats = load_or_compute(spec, run_dir / "statistics.json")
    spec = apply_statistics(spec, stats)   # fills standard mean/std left empty in the spec

Version 2 added the per-band ``min``/``max`` of the raw values (the train range that
:func:`normalized_range` maps into the model's input space); a version-1 file still loads (its
range is None) and is recomputed where statistics are computed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..fingerprint import differences
from ..io import atomic_write_json
from ..progress import bar
from .identity import data_identity, ids_digest
from .reader import SampleReader, normalize
from .samples import sample_ids
from .spec import DatasetSpec, Modality, TargetSpec

STATS_VERSION = 2


class _Running:
    """Streaming count / mean / M2 / min / max per band in float64 (Chan et al. parallel
    merge for the moments)."""

    def __init__(self, n_bands: int, categorical: bool = False) -> None:
        self.n = np.zeros(n_bands, np.float64)
        self.mean = np.zeros(n_bands, np.float64)
        self.m2 = np.zeros(n_bands, np.float64)
        self.min = np.full(n_bands, np.inf)
        self.max = np.full(n_bands, -np.inf)
        #: a categorical modality's pixel count per class code (None: not categorical)
        self.classes: dict[int, int] | None = {} if categorical else None

    def add_raster(self, raw: np.ndarray) -> None:
        """Add a ``[bands, H, W]`` raster (NaN = no value) and, if categorical, its codes."""
        for b in range(raw.shape[0]):
            self.add(b, raw[b])
        if self.classes is not None:
            codes = raw[0][~np.isnan(raw[0])].astype(np.int64)
            vals, counts = np.unique(codes, return_counts=True)
            for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
                self.classes[v] = self.classes.get(v, 0) + c

    def add(self, band: int, values: np.ndarray) -> None:
        x = values[~np.isnan(values)].astype(np.float64)
        nb = x.size
        if nb == 0:
            return
        mb = float(x.mean())
        self.min[band] = min(self.min[band], float(x.min()))
        self.max[band] = max(self.max[band], float(x.max()))
        m2b = float(np.square(x - mb).sum())
        na, ma = self.n[band], self.mean[band]
        n = na + nb
        delta = mb - ma
        self.mean[band] = ma + delta * nb / n
        self.m2[band] = self.m2[band] + m2b + delta * delta * na * nb / n
        self.n[band] = n

    @property
    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.where(self.n > 0, self.m2 / np.maximum(self.n, 1), np.nan))

    @property
    def range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(min, max)`` per band (NaN for a band without values)."""
        seen = self.n > 0
        return np.where(seen, self.min, np.nan), np.where(seen, self.max, np.nan)

    def stats(self, m: Modality) -> ModalityStats:
        """The :class:`ModalityStats` of modality ``m`` from what was added."""
        freq = None
        if self.classes is not None:
            total = sum(self.classes.values()) or 1
            freq = {str(k): v / total for k, v in sorted(self.classes.items())}
        lo, hi = self.range
        return ModalityStats(
            bands=list(m.bands),
            kind=m.kind,
            mean=[float(v) for v in self.mean],
            std=[float(v) for v in self.std],
            count=[int(v) for v in self.n],
            class_frequencies=freq,
            source=source_fingerprint(m),
            min=[float(v) for v in lo],
            max=[float(v) for v in hi],
        )


class _TargetTally:
    """Streaming target statistics: the mean of a continuous target, class frequencies of a
    dense (per pixel) or scene (multi-hot) target."""

    def __init__(self, target: TargetSpec) -> None:
        self.target = target
        self.sum, self.n = 0.0, 0
        self.counts = np.zeros(len(target.classes) if target.classes else 0, np.float64)

    def add(self, target: np.ndarray, valid: np.ndarray) -> None:
        """Add one sample's target and valid mask (as :meth:`SampleReader.read_target`)."""
        if self.target.is_continuous:
            v = target[0][valid].astype(np.float64)
            self.sum += float(v.sum())
            self.n += int(v.size)
        elif self.target.is_dense:  # class indices
            self.counts += np.bincount(target[valid], minlength=len(self.counts))[
                : len(self.counts)
            ]
            self.n += int(valid.sum())
        else:
            self.counts += target
            self.n += 1

    def to_dict(self) -> dict[str, Any]:
        """The ``target`` entry of :class:`Statistics`."""
        out: dict[str, Any] = {"kind": self.target.kind, "count": self.n}
        if self.target.is_continuous:
            out["mean"] = self.sum / self.n if self.n else None
        else:
            denom = self.n or 1
            classes = self.target.classes or ()
            out["frequencies"] = {
                str(c): float(v / denom) for c, v in zip(classes, self.counts, strict=True)
            }
        return out


@dataclass
class ModalityStats:
    """Statistics of one modality's bands (raw values, on the sample grid)."""

    bands: list[str]
    kind: str
    mean: list[float]
    std: list[float]
    count: list[int]
    class_frequencies: dict[str, float] | None = None  # categorical: code -> share of pixels
    source: str = ""  # fingerprint of the files and no-data the values were read with
    min: list[float] | None = None  # raw per-band minimum (None: version-1 statistics)
    max: list[float] | None = None  # raw per-band maximum

    def settings(self) -> dict[str, Any]:
        """The part of :func:`statistics_settings` these statistics were computed with."""
        return {"bands": list(self.bands), "kind": self.kind, "source": self.source}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "bands": list(self.bands),
            "kind": self.kind,
            "mean": [_num(v) for v in self.mean],
            "std": [_num(v) for v in self.std],
            "count": [int(c) for c in self.count],
        }
        if self.min is not None and self.max is not None:
            d["min"] = [_num(v) for v in self.min]
            d["max"] = [_num(v) for v in self.max]
        if self.class_frequencies is not None:
            d["class_frequencies"] = dict(self.class_frequencies)
        d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModalityStats:
        return cls(
            bands=[str(b) for b in d["bands"]],
            kind=str(d.get("kind", "continuous")),
            mean=[_float(v) for v in d["mean"]],
            std=[_float(v) for v in d["std"]],
            count=[int(c) for c in d.get("count", [0] * len(d["mean"]))],
            class_frequencies=d.get("class_frequencies"),
            source=str(d.get("source", "")),
            min=None if d.get("min") is None else [_float(v) for v in d["min"]],
            max=None if d.get("max") is None else [_float(v) for v in d["max"]],
        )

    @property
    def has_range(self) -> bool:
        """True when the statistics hold the per-band min/max (version 2 and later)."""
        return self.min is not None and self.max is not None


def statistics_settings(spec: DatasetSpec, ids: Sequence[str] | None = None) -> dict[str, Any]:
    """What statistics of ``spec`` (over ``ids``) depend on: compared with a cache's
    :meth:`Statistics.matches` by the common rule of :mod:`modalens.fingerprint`. Other files
    or another no-data value change a modality's ``source``, and (with ``ids``) a rewritten,
    added or removed file its ``files`` digest (:func:`~.identity.data_identity`): either forces
    a recomputation."""
    return {
        "version": STATS_VERSION,
        "ids_digest": ids_digest(ids) if ids is not None else None,
        "files": data_identity(spec, ids)["files"] if ids is not None else None,
        "modalities": {
            m.name: {"bands": list(m.bands), "kind": m.kind, "source": source_fingerprint(m)}
            for m in spec.modalities
        },
        "target_kind": spec.target.kind,
    }


def source_fingerprint(m: Modality) -> str:
    """What a modality's raw values depend on besides its bands: its files and no-data value."""
    text = repr(([(s.template, s.bands) for s in m.sources], repr(m.nodata)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass
class Statistics:
    """Train-split statistics of a dataset spec."""

    modalities: dict[str, ModalityStats]
    target: dict[str, Any] = field(default_factory=dict)
    n_samples: int = 0
    ids_digest: str = ""
    dataset: str = ""
    version: int = STATS_VERSION
    #: standardised modality -> where its mean/std came from (:func:`normalization_sources`)
    normalization: dict[str, str] = field(default_factory=dict)
    #: the files' digests per modality (:func:`~.identity.data_identity`; empty: not recorded)
    files: dict[str, str] = field(default_factory=dict)

    def mean(self, modality: str) -> tuple[float, ...]:
        return tuple(self.modalities[modality].mean)

    def std(self, modality: str) -> tuple[float, ...]:
        return tuple(self.modalities[modality].std)

    def matches(self, spec: DatasetSpec, ids: Sequence[str] | None = None) -> bool:
        """True when every modality of ``spec`` is here with the same bands and kind (and,
        with ``ids``, the statistics were computed over exactly those ids and files)."""
        saved = {
            "version": self.version,
            "ids_digest": self.ids_digest if ids is not None else None,
            "files": (self.files or None) if ids is not None else None,
            "modalities": {
                m.name: self.modalities[m.name].settings() if m.name in self.modalities else None
                for m in spec.modalities
            },
            "target_kind": self.target.get("kind", spec.target.kind),
        }
        return not differences(saved, statistics_settings(spec, ids))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "dataset": self.dataset,
            "n_samples": self.n_samples,
            "ids_digest": self.ids_digest,
            "modalities": {k: v.to_dict() for k, v in self.modalities.items()},
            "target": self.target,
            **({"normalization": dict(self.normalization)} if self.normalization else {}),
            **({"files": dict(self.files)} if self.files else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Statistics:
        return cls(
            modalities={
                k: ModalityStats.from_dict(v) for k, v in (d.get("modalities") or {}).items()
            },
            target=dict(d.get("target") or {}),
            n_samples=int(d.get("n_samples", 0)),
            ids_digest=str(d.get("ids_digest", "")),
            dataset=str(d.get("dataset", "")),
            version=int(d.get("version", 0)),
            normalization={str(k): str(v) for k, v in (d.get("normalization") or {}).items()},
            files={str(k): str(v) for k, v in (d.get("files") or {}).items()},
        )

    def save(self, path: str | Path) -> Path:
        """Write as JSON, atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Statistics:
        path = Path(path)
        if not path.exists():
            raise DataError("statistics file not found", str(path), "compute statistics first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DataError(
                "statistics file is not valid", str(path), "delete it so it is recomputed"
            ) from None


def compute_statistics(
    spec: DatasetSpec,
    ids: Sequence[str],
    cache: str | Path | None = None,
    progress: bool = True,
    decimate: int = 1,
) -> Statistics:
    """Statistics over ``ids`` (pass the train split). ``cache``: a JSON path reused when it
    matches the spec and ids, written otherwise. ``decimate > 1`` reads every scene on a grid
    ``decimate`` times coarser (nearest/bilinear as for the model input) for speed."""

    ids = [str(i) for i in ids]
    if not ids:
        raise DataError("no samples to compute statistics on", str(spec.root), "check the split")
    if cache is not None and Path(cache).exists():
        try:
            cached = Statistics.load(cache)
        except DataError:
            cached = None
        if cached is not None and cached.matches(spec, ids):
            return cached
    reader = SampleReader(spec)
    running = {m.name: _Running(len(m.bands), m.is_categorical) for m in spec.modalities}
    target = _TargetTally(spec.target)
    iterator = bar(ids, progress, desc="statistics", unit="sample")
    try:
        for sid in iterator:
            grid = reader.grid(sid)
            g = grid.scaled(decimate) if decimate > 1 else grid
            for m in spec.modalities:
                running[m.name].add_raster(
                    reader.read_raw(sid, modalities=[m.name], grid=g)[m.name]
                )
            target.add(*reader.read_target(sid, grid=g))
    finally:
        reader.close()
    stats = Statistics(
        modalities={m.name: running[m.name].stats(m) for m in spec.modalities},
        target=target.to_dict(),
        n_samples=len(ids),
        ids_digest=ids_digest(ids),
        dataset=spec.name,
        files=data_identity(spec, ids)["files"],
    )
    if cache is not None:
        stats.save(cache)
    return stats


def load_or_compute(
    spec: DatasetSpec, cache_path: str | Path, progress: bool = True, decimate: int = 1
) -> Statistics:
    """Train-split statistics of ``spec``: the cache at ``cache_path`` when it matches the
    spec's modalities/bands and train ids, else computed and written there (atomically).
    A folder as ``cache_path`` means ``<folder>/statistics.json``."""

    path = Path(cache_path)
    if path.is_dir():
        path = path / "statistics.json"
    train = sample_ids(spec)["train"]
    return compute_statistics(spec, train, cache=path, progress=progress, decimate=decimate)


def apply_statistics(spec: DatasetSpec, stats: Statistics) -> DatasetSpec:
    """A spec whose ``standard`` normalisations have mean/std filled from ``stats`` where the
    spec left them empty (constants given in the spec or preset are kept). A zero std (a
    constant band) becomes 1 so the band normalises to ``x - mean``."""
    for m in spec.modalities:
        n = m.normalization
        if n.type != "standard" or not n.needs_statistics:
            continue
        ms = stats.modalities.get(m.name)
        if ms is None or ms.bands != list(m.bands):
            raise DataError(
                f"statistics have no entry for modality {m.name!r} with bands {', '.join(m.bands)}",
                stats.dataset or None,
                "recompute them (delete the statistics JSON)",
            )
        mean = n.mean if n.mean is not None else tuple(ms.mean)
        std = n.std if n.std is not None else tuple(ms.std)
        if any(math.isnan(v) for v in (*mean, *std)):
            raise DataError(
                f"modality {m.name!r} has no valid pixels in the train split, so no mean/std",
                stats.dataset or None,
                "check its no-data value or give mean/std in the spec",
            )
        std = tuple(s if s > 0 else 1.0 for s in std)
        spec = spec.with_modality(replace(m, normalization=replace(n, mean=mean, std=std)))
    return spec


#: values of :func:`normalization_sources`
TRAIN_SPLIT, GIVEN = "train split", "given constants"


def normalization_sources(spec: DatasetSpec) -> dict[str, str]:
    """Where each standardised modality's mean/std come from: ``"train split"`` (left empty in
    the spec, computed here) or ``"given constants"`` (written in the spec, e.g. the
    ``mapinwild`` preset's ``stats=published``)."""
    return {
        m.name: TRAIN_SPLIT if m.normalization.needs_statistics else GIVEN
        for m in spec.modalities
        if m.normalization.type == "standard"
    }


def with_statistics(
    spec: DatasetSpec, cache: str | Path, compute: bool = True, progress: bool = True
) -> tuple[DatasetSpec, dict[str, Any]]:
    """``spec`` with the train-split statistics cached at ``cache`` applied, and the content of
    that file (what a run's checkpoint and the ``mean`` occlusion strategy keep).

    Statistics cover the spec's auxiliary modalities too (:meth:`DatasetSpec.flat`). When
    computing, the file also records which standardisation each modality used
    (``normalization``: :func:`normalization_sources`).

    Args:
        spec: the dataset spec.
        cache: the statistics JSON (a run's ``stats.json``).
        compute: compute (and cache) the statistics when the file does not match the spec
            (:func:`load_or_compute`); without, a missing file leaves ``spec`` as it is.
        progress: show a progress bar while computing.

    Returns:
        ``(spec, statistics dict)``; the dict is empty when there is no readable file.

    Raises:
        DataError: the statistics do not fit the spec or the file is invalid.
    """
    cache = Path(cache)
    auxiliary = spec.auxiliary_names  # statistics cover them too (their normalised values)
    flat = spec.flat()
    if compute:
        statistics = load_or_compute(flat, cache, progress=progress)
        sources = normalization_sources(flat)
        if statistics.normalization != sources:
            statistics.normalization = sources
            statistics.save(cache)
    elif cache.exists():
        statistics = Statistics.load(cache)
    else:
        return spec, {}
    spec = apply_statistics(flat, statistics)
    if auxiliary:
        spec = spec.with_auxiliary(auxiliary)
    try:
        raw = json.loads(cache.read_text()) if cache.exists() else {}
    except json.JSONDecodeError:
        raw = {}
    return spec, raw


def normalized_range(m: Modality, ms: ModalityStats) -> tuple[np.ndarray, np.ndarray]:
    """The train range of modality ``m`` per input channel, in the model's normalised space.

    The raw per-band min/max are normalised as the reader normalises values (``m`` must carry
    the statistics' mean/std where its normalisation is ``standard``: use the spec of a loaded
    run or :func:`apply_statistics`); a one-hot modality's channels range over [0, 1].

    Args:
        m: the modality (with its normalisation complete).
        ms: its statistics (version 2: with min/max).

    Returns:
        ``(low, high)``, float64 arrays of one value per channel (NaN where a band had no
        valid pixel).

    Raises:
        DataError: the statistics have no range (version 1).
    """
    if m.normalization.type == "onehot":
        n = m.n_channels
        return np.zeros(n), np.ones(n)
    if ms.min is None or ms.max is None:
        raise DataError(
            f"the statistics of modality {m.name!r} hold no min/max (an older statistics file)",
            m.name,
            "recompute them (delete the statistics JSON)",
        )
    raw = np.asarray([ms.min, ms.max], dtype=np.float32).T[:, :, None]  # [bands, 2, 1]
    ends = np.asarray(normalize(m, raw.copy()), dtype=np.float64)[:, :, 0]
    return ends.min(axis=1), ends.max(axis=1)
