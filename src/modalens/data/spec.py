"""What a dataset is: ordered modalities, their bands and sources, the target(s) and the split.

A :class:`DatasetSpec` says where each modality of a sample lives on disk, how its bands are
normalised, what the model predicts and how samples are split. Everything downstream (reading,
statistics, training, occlusion) derives from it; in particular the channel slice of each
modality in the stacked input cube is *derived* from the ordered modalities, never typed by hand.

Specs are read from YAML or dicts by :mod:`modalens.data.specfile` (errors name the key and the
file). YAML example::

    name: my-data
    root: /data/mapinwild          # relative paths are resolved against the YAML file's folder
    crop_size: 256
    modalities:
      - name: s2
        bands: [B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12]
        source: s2_temporal_subset/{id}.tif          # one file, all its bands in order
        normalization: {type: scale, divisor: 10000}
      - name: s1
        bands: [VV, VH]
        source: {path: s1/{id}.tif, bands: [1, 2]}   # 1-based band indices in the file
        normalization: {type: standard, mean: [-11.0578, -18.3627], std: [3.7392, 4.6393]}
      - name: esa_wc
        bands: [landcover]
        source: ESA_WC/{id}.tif
        kind: categorical
        classes: [10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]
        normalization: {type: ordinal, offset: 10, divisor: 90}
    target: {kind: continuous, source: NI/{id}.tif, scale: 100, nodata: nan}
    split: {file: split_IDs.csv}

A spec may name several targets instead (``targets: {ni: {...}, mask: {...}}``, in order); the
first is the *main* target (:attr:`DatasetSpec.target`) that readers and training use. A single
``target:`` is the target named ``main``.

*Auxiliary* modalities (:attr:`DatasetSpec.auxiliary`, ``auxiliary: [...]`` in YAML, usually
made by :meth:`DatasetSpec.with_auxiliary` from a run config) are modalities the model does not
see but predicts from its shared encoder (:mod:`modalens.data.auxiliary` reads them as targets).
They are not part of the input layout (:attr:`~DatasetSpec.modalities`, channel slices,
``layout()``), so a model trained with them runs on data where they are absent.

Targets (:class:`~modalens.data.targets.TargetSpec`) and source files
(:class:`~modalens.data.sources.SourceFile`) live in their own modules and are re-exported here.

Path templates are formatted with ``{id}`` and, when the spec has an ``index`` table (a CSV with
an ``id`` column), with every other column of that table, so modalities whose file names differ
(BigEarthNet's S1 and S2 patch names) are paired through the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .remote import Location, RemotePath, as_location
from .sources import SourceFile, nodata_to_spec
from .targets import MAIN_TARGET, TargetSpec

CONTINUOUS = "continuous"


CATEGORICAL = "categorical"


MODALITY_KINDS = (CONTINUOUS, CATEGORICAL)


NORM_TYPES = ("none", "scale", "standard", "ordinal", "onehot")


SPLIT_NAMES = ("train", "val", "test")


def is_categorical_kind(kind: str) -> bool:
    """True for the modality kind whose values are class codes (``categorical``)."""
    return kind == CATEGORICAL


@dataclass(frozen=True)
class Normalization:
    """How raw band values become model input.

    - ``none``: as read.
    - ``scale``: ``(x - offset) / divisor`` (S2: divisor 10000).
    - ``standard``: ``(x - mean) / std`` per band; ``mean``/``std`` left empty are computed on the
      train split (:mod:`modalens.stats`) and filled in.
    - ``ordinal``: categorical codes mapped by ``(v - offset) / divisor`` (WorldCover: 10, 90).
    - ``onehot``: categorical codes to one channel per class.
    """

    type: str = "none"
    divisor: float = 1.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def needs_statistics(self) -> bool:
        return self.type == "standard" and (self.mean is None or self.std is None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.type in ("scale", "ordinal"):
            d["divisor"] = self.divisor
            d["offset"] = self.offset
        if self.type == "standard":
            d["mean"] = None if self.mean is None else list(self.mean)
            d["std"] = None if self.std is None else list(self.std)
        return d


@dataclass(frozen=True)
class Modality:
    """A named group of bands from one sensor or product."""

    name: str
    bands: tuple[str, ...]
    sources: tuple[SourceFile, ...]
    kind: str = CONTINUOUS
    classes: tuple[int, ...] | None = None
    normalization: Normalization = field(default_factory=Normalization)
    nodata: float | None = None

    @property
    def is_categorical(self) -> bool:
        """True when the modality holds class codes (``kind: categorical``)."""
        return is_categorical_kind(self.kind)

    @property
    def n_channels(self) -> int:
        """Channels this modality occupies in the stacked input cube."""
        if self.normalization.type == "onehot":
            assert self.classes is not None
            return len(self.classes)
        return len(self.bands)

    @property
    def channel_names(self) -> list[str]:
        if self.normalization.type == "onehot":
            assert self.classes is not None
            return [f"{self.name}:{c}" for c in self.classes]
        return [f"{self.name}:{b}" for b in self.bands]

    @property
    def resampling(self) -> str:
        """Resampling used when this modality is put onto another grid."""
        return "nearest" if self.is_categorical else "bilinear"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "bands": list(self.bands),
            "sources": [s.to_dict() for s in self.sources],
            "kind": self.kind,
            "normalization": self.normalization.to_dict(),
            "nodata": nodata_to_spec(self.nodata),
        }
        if self.classes is not None:
            d["classes"] = list(self.classes)
        return d


@dataclass(frozen=True)
class SplitSpec:
    """Where the train/val/test ids come from.

    An official split comes from one of (first given wins):

    - ``table``: a CSV or Parquet table with an id column (``table_id``) and a split column
      (``table_split``) whose values ``columns`` maps to our split names (BigEarthNet v2's
      ``metadata.parquet``: ``patch_id``, ``split`` = train/validation/test);
    - ``lists``: one headerless list file per split, ``((split, path), ...)``; the id is the
      first comma-separated field of each line, or the ``id`` group of ``list_pattern`` matched
      against that field (Sen1Floods11's ``flood_train_data.csv``: ``<chip>_S1Hand.tif,...``;
      BigEarthNet v1's ``train.csv``: one patch name per line);
    - ``file``: a CSV with one column per split (MapInWild's ``split_IDs.csv``: ``train``,
      ``validation``, ``test``, NaN-padded); ``columns`` maps our split names to its columns.

    Without any, ids are split ``ratios`` (80/10/10) by ``seed``. Paths are relative to the
    dataset root. ``allow_leakage``: ids of the train split may also be in val or test (an
    error in ``fit`` otherwise).
    """

    file: str | None = None
    columns: tuple[tuple[str, str], ...] = (
        ("train", "train"),
        ("val", "validation"),
        ("test", "test"),
    )
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    #: train ids may also be val/test ids (``fit`` refuses such leakage otherwise)
    allow_leakage: bool = False
    lists: tuple[tuple[str, str], ...] = ()
    list_pattern: str | None = None
    table: str | None = None
    table_id: str = "id"
    table_split: str = "split"

    def column(self, split: str) -> str:
        return dict(self.columns)[split]

    @property
    def kind(self) -> str:
        """Where the ids come from: ``table``, ``lists``, ``file`` or ``random``."""
        if self.table:
            return "table"
        if self.lists:
            return "lists"
        return "file" if self.file else "random"

    @property
    def files(self) -> tuple[str, ...]:
        """The split's own files (relative to the root unless absolute), none for random."""
        if self.table:
            return (self.table,)
        if self.lists:
            return tuple(path for _, path in self.lists)
        return (self.file,) if self.file else ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file": self.file,
            "columns": dict(self.columns),
            "ratios": list(self.ratios),
            "seed": self.seed,
        }
        if self.allow_leakage:
            d["allow_leakage"] = True
        if self.lists:
            d["lists"] = dict(self.lists)
            d["list_pattern"] = self.list_pattern
        if self.table:
            d.update(table=self.table, table_id=self.table_id, table_split=self.table_split)
        return d


@dataclass(frozen=True, init=False)
class DatasetSpec:
    """An ordered list of modalities, one or more named targets and a split, rooted in a folder.

    Build it with ``target=`` (one target, named ``main``) or ``targets=`` (an ordered mapping
    of names to targets; the first is the main one). :attr:`target` is the main target.
    """

    name: str
    root: Location
    modalities: tuple[Modality, ...]
    targets: dict[str, TargetSpec] = field(hash=False)
    split: SplitSpec
    index: str | None
    index_builder: str | None
    crop_size: int
    source_file: str | None
    auxiliary: tuple[Modality, ...]

    def __init__(
        self,
        name: str,
        root: str | Path | RemotePath,
        modalities: tuple[Modality, ...],
        target: TargetSpec | None = None,
        split: SplitSpec | None = None,
        index: str | None = None,
        index_builder: str | None = None,
        crop_size: int = 256,
        source_file: str | None = None,
        *,
        targets: Mapping[str, TargetSpec] | None = None,
        auxiliary: Sequence[Modality] = (),
    ) -> None:
        named = dict(targets or {})
        if target is not None:
            if named and next(iter(named.values())) != target:
                raise SpecError(
                    "a dataset spec got both 'target' and 'targets' and they disagree",
                    source_file,
                    "give only one of them",
                )
            named = named or {MAIN_TARGET: target}
        if not named:
            raise SpecError("a dataset spec needs a target", source_file, "say what to predict")
        for key, value in named.items():
            if not isinstance(key, str) or not key or not isinstance(value, TargetSpec):
                raise SpecError(
                    f"target {key!r} must be a non-empty name mapped to a TargetSpec",
                    source_file,
                    "name each target, e.g. targets: {ni: {kind: continuous, ...}}",
                )
        values: dict[str, Any] = {
            "name": name,
            "root": as_location(root),
            "modalities": tuple(modalities),
            "targets": named,
            "split": split if split is not None else SplitSpec(),
            "index": index,
            "index_builder": index_builder,
            "crop_size": crop_size,
            "source_file": source_file,
            "auxiliary": tuple(auxiliary),
        }
        for key, setting in values.items():
            object.__setattr__(self, key, setting)

    @property
    def target(self) -> TargetSpec:
        """The main (first) target: what readers and training use."""
        return next(iter(self.targets.values()))

    @property
    def target_names(self) -> list[str]:
        """The targets' names in order (the main one first)."""
        return list(self.targets)

    # ------------------------------------------------------------------ derived layout
    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def n_channels(self) -> int:
        return sum(m.n_channels for m in self.modalities)

    @property
    def channel_names(self) -> list[str]:
        return [c for m in self.modalities for c in m.channel_names]

    def channel_slices(self) -> dict[str, slice]:
        """Slice of each modality in the stacked channel axis, derived from the order."""
        out: dict[str, slice] = {}
        start = 0
        for m in self.modalities:
            out[m.name] = slice(start, start + m.n_channels)
            start += m.n_channels
        return out

    def modality(self, name: str) -> Modality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise SpecError(
            f"unknown modality {name!r}",
            self.source_file,
            f"choose from {', '.join(self.modality_names)}",
        )

    def select(
        self, use: Sequence[str] | None = None, drop: Sequence[str] | None = None
    ) -> DatasetSpec:
        """A spec with only some modalities (``use``) or without some (``drop``), order kept."""
        names = self.modality_names
        for n in list(use or []) + list(drop or []):
            if n not in names:
                raise SpecError(
                    f"unknown modality {n!r} in modality selection",
                    self.source_file,
                    f"choose from {', '.join(names)}",
                )
        keep = [m for m in self.modalities if (not use or m.name in use)]
        keep = [m for m in keep if m.name not in (drop or [])]
        if not keep:
            raise SpecError(
                "the modality selection leaves no modality",
                self.source_file,
                "keep at least one modality in use/drop",
            )
        return replace(self, modalities=tuple(keep))

    def with_modality(self, modality: Modality) -> DatasetSpec:
        """A spec where the modality of the same name is replaced."""
        return replace(
            self,
            modalities=tuple(modality if m.name == modality.name else m for m in self.modalities),
        )

    def with_root(self, root: str | Path | RemotePath) -> DatasetSpec:
        """The spec rooted in another folder or URL (:mod:`modalens.data.remote`)."""
        return replace(self, root=as_location(root))

    @property
    def auxiliary_names(self) -> list[str]:
        """The auxiliary modalities' names in order (empty for an ordinary spec)."""
        return [m.name for m in self.auxiliary]

    def with_auxiliary(self, names: Sequence[str], key: str = "auxiliary") -> DatasetSpec:
        """A spec where the modalities ``names`` are auxiliary targets instead of inputs.

        Args:
            names: modality names (inputs or already auxiliary), in the order wanted.
            key: the config key named in errors.

        Raises:
            SpecError: an unknown name, or no input modality left.
        """
        pool = {m.name: m for m in (*self.modalities, *self.auxiliary)}
        for n in names:
            if n not in pool:
                raise SpecError(
                    f"unknown modality {n!r} as auxiliary target",
                    f"key '{key}' in {self.source_file}" if self.source_file else f"key '{key}'",
                    f"choose from {', '.join(pool)}",
                )
        inputs = tuple(m for m in (*self.modalities, *self.auxiliary) if m.name not in names)
        if not inputs:
            raise SpecError(
                "every modality is auxiliary: the model has no input",
                f"key '{key}'",
                "keep at least one modality as input",
            )
        return replace(self, modalities=inputs, auxiliary=tuple(pool[n] for n in names))

    def flat(self) -> DatasetSpec:
        """The spec with the auxiliary modalities as ordinary modalities after the inputs (for
        statistics over every modality the run reads)."""
        if not self.auxiliary:
            return self
        return replace(self, modalities=(*self.modalities, *self.auxiliary), auxiliary=())

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": str(self.root),
            "crop_size": self.crop_size,
            "index": self.index,
            "index_builder": self.index_builder,
            "modalities": [m.to_dict() for m in self.modalities],
            **self.targets_to_dict(),
            "split": self.split.to_dict(),
            **({"auxiliary": [m.to_dict() for m in self.auxiliary]} if self.auxiliary else {}),
        }

    def targets_to_dict(self) -> dict[str, Any]:
        """``{"target": {...}}`` for a single target named ``main`` (the usual spec), else
        ``{"targets": {name: {...}, ...}}``: what :meth:`to_dict` writes for the targets."""
        if list(self.targets) == [MAIN_TARGET]:
            return {"target": self.target.to_dict()}
        return {"targets": {n: t.to_dict() for n, t in self.targets.items()}}

    def layout(self) -> list[dict[str, Any]]:
        """What a model trained on this spec expects as input: names, kinds, channels."""
        return [
            {
                "name": m.name,
                "kind": m.kind,
                "channels": m.channel_names,
                "normalization": m.normalization.type,
            }
            for m in self.modalities
        ]
