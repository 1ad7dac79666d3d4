"""TODO docstring: data/spec.py"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SpecError

CONTINUOUS = "continuous"


CATEGORICAL = "categorical"


MODALITY_KINDS = (CONTINUOUS, CATEGORICAL)


NORM_TYPES = ("none", "scale", "standard", "ordinal", "onehot")


TARGET_KINDS = ("continuous", "classes", "scene_labels")


SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SourceFile:
    """One raster file of a modality: a path template and the 1-based bands read from it.

    ``bands=None`` reads every band of the file; the modality then checks that the file's band
    count equals the number of band names it declares.
    """

    template: str
    bands: tuple[int, ...] | None = None

    def path(self, root: Path, fields: Mapping[str, Any]) -> Path:
        try:
            rel = self.template.format(**fields)
        except KeyError as exc:
            raise SpecError(
                f"path template {self.template!r} uses {{{exc.args[0]}}} which the sample does "
                f"not have (sample id {fields.get('id')!r})",
                None,
                "use {id} or a column of the spec's index table",
            ) from None
        p = Path(rel)
        return p if p.is_absolute() else root / p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.template}
        if self.bands is not None:
            d["bands"] = list(self.bands)
        return d


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
        return self.kind == CATEGORICAL

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
            "nodata": _nodata_out(self.nodata),
        }
        if self.classes is not None:
            d["classes"] = list(self.classes)
        return d


def _nodata_out(v: float | None) -> float | str | None:
    if v is None:
        return None
    return "nan" if math.isnan(v) else v


@dataclass(frozen=True)
class TargetSpec:
    """What the model predicts.

    - ``continuous``: a raster (``source``), divided by ``scale`` (naturalness 0-100 -> /100).
    - ``classes``: a raster of class codes (``classes``) -> class indices for segmentation.
    - ``scene_labels``: one (multi-)label set per sample, read from a JSON file (``source`` is the
      JSON template and ``key`` the list of label names in it), ``classes`` the label names.
    Pixels equal to ``nodata`` (or NaN) are invalid and never reach loss or metrics.
    """

    kind: str = "continuous"
    source: SourceFile | None = None
    scale: float = 1.0
    nodata: float | None = None
    classes: tuple[Any, ...] | None = None
    key: str = "labels"
    multilabel: bool = True

    @property
    def bands(self) -> tuple[int, ...]:
        """1-based band(s) read from the target raster (the first band unless the spec says)."""
        if self.source is not None and self.source.bands:
            return self.source.bands
        return (1,)

    @property
    def n_outputs(self) -> int:
        if self.kind == "continuous":
            return 1
        assert self.classes is not None
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "source": None if self.source is None else self.source.to_dict(),
            "scale": self.scale,
            "nodata": _nodata_out(self.nodata),
        }
        if self.classes is not None:
            d["classes"] = list(self.classes)
        if self.kind == "scene_labels":
            d["key"] = self.key
            d["multilabel"] = self.multilabel
        return d


@dataclass(frozen=True)
class SplitSpec:
    """Where the train/val/test ids come from.

    ``file``: a CSV with one column per split (MapInWild's ``split_IDs.csv``: ``train``,
    ``validation``, ``test``, NaN-padded); ``columns`` maps our split names to its columns.
    Without a file, ids are split ``ratios`` (80/10/10) by ``seed``.
    """

    file: str | None = None
    columns: tuple[tuple[str, str], ...] = (
        ("train", "train"),
        ("val", "validation"),
        ("test", "test"),
    )
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def column(self, split: str) -> str:
        return dict(self.columns)[split]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "columns": dict(self.columns),
            "ratios": list(self.ratios),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class DatasetSpec:
    """An ordered list of modalities, a target and a split, rooted in a folder."""

    name: str
    root: Path
    modalities: tuple[Modality, ...]
    target: TargetSpec
    split: SplitSpec = field(default_factory=SplitSpec)
    index: str | None = None
    index_builder: str | None = None
    crop_size: int = 256
    source_file: str | None = None

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

    def with_root(self, root: str | Path) -> DatasetSpec:
        return replace(self, root=Path(root))

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": str(self.root),
            "crop_size": self.crop_size,
            "index": self.index,
            "index_builder": self.index_builder,
            "modalities": [m.to_dict() for m in self.modalities],
            "target": self.target.to_dict(),
            "split": self.split.to_dict(),
        }

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


def iter_source_files(spec: DatasetSpec) -> Iterable[tuple[Modality, SourceFile]]:
    for m in spec.modalities:
        for s in m.sources:
            yield m, s
