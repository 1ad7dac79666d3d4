"""What a model predicts: target kinds and :class:`TargetSpec`.

A target is ``continuous`` (a raster of values, divided by ``scale``), ``classes`` (a raster of
class codes, looked up to class indices) or ``scene_labels`` (one label set per sample, read
from a JSON file). What a kind implies -- a dense raster or one label set per scene, values or
classes, how the raster is resampled, the array type and fill value of a sample's target -- is
described once in :data:`TARGET_KIND_INFO` and asked through :class:`TargetSpec` properties, so
no other module tests kind strings. A dataset spec names its targets
(:attr:`~modalens.data.spec.DatasetSpec.targets`); a single ``target:`` is named
:data:`MAIN_TARGET`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .sources import SourceFile, nodata_to_spec

#: the name of the target of a spec written with a single ``target:``
MAIN_TARGET = "main"


@dataclass(frozen=True)
class TargetKind:
    """What a target kind means for reading, checking and modelling.

    Attributes:
        name: the kind as written in a spec.
        dense: a raster on the sample grid (False: one label set per scene, from a JSON file).
        continuous: values to regress (False: classes).
        class_type: type of the spec's class entries (``int`` codes, ``str`` names) or None
            when the kind has no classes.
        resampling: how the target raster is put onto the sample grid.
        dtype: numpy dtype of the target array in a sample.
        fill: value of the target array at invalid pixels (dense kinds).
    """

    name: str
    dense: bool
    continuous: bool
    class_type: type | None
    resampling: str
    dtype: str
    fill: float


TARGET_KIND_INFO: dict[str, TargetKind] = {
    "continuous": TargetKind("continuous", True, True, None, "bilinear", "float32", 0.0),
    "classes": TargetKind("classes", True, False, int, "nearest", "int64", -1),
    "scene_labels": TargetKind("scene_labels", False, False, str, "nearest", "float32", 0.0),
}


TARGET_KINDS = tuple(TARGET_KIND_INFO)


@dataclass(frozen=True)
class TargetSpec:
    """What the model predicts.

    - ``continuous``: a raster (``source``), divided by ``scale`` (naturalness 0-100 -> /100).
    - ``classes``: a raster of class codes (``classes``) -> class indices for segmentation.
    - ``scene_labels``: one (multi-)label set per sample, read from a JSON file (``source`` is the
      JSON template and ``key`` the list of label names in it), ``classes`` the label names.
    Pixels equal to ``nodata`` (or NaN) are invalid and never reach loss or metrics.

    What the kind implies is asked through the properties (:attr:`is_dense`,
    :attr:`is_continuous`, :attr:`resampling`, :attr:`class_codes`, :attr:`n_outputs`...).
    """

    kind: str = "continuous"
    source: SourceFile | None = None
    scale: float = 1.0
    nodata: float | None = None
    classes: tuple[Any, ...] | None = None
    key: str = "labels"
    multilabel: bool = True
    #: readable names of ``classes`` in the same order (e.g. ``("dry", "water")``), used in
    #: metric names (``iou_water``) and figures; None: the class codes or labels themselves
    class_names: tuple[str, ...] | None = None

    @property
    def kind_info(self) -> TargetKind:
        """The :class:`TargetKind` of this target's kind."""
        info = TARGET_KIND_INFO.get(self.kind)
        if info is None:
            raise SpecError(
                f"unknown target kind {self.kind!r}", None, f"choose from {', '.join(TARGET_KINDS)}"
            )
        return info

    @property
    def is_dense(self) -> bool:
        """A raster on the sample grid (False: one label set per scene)."""
        return self.kind_info.dense

    @property
    def is_continuous(self) -> bool:
        """Values to regress (False: classes or scene labels)."""
        return self.kind_info.continuous

    @property
    def resampling(self) -> str:
        """Resampling used when the target raster is put onto the sample grid."""
        return self.kind_info.resampling

    @property
    def dtype(self) -> str:
        """numpy dtype of the target array of a sample."""
        return self.kind_info.dtype

    @property
    def fill(self) -> float:
        """Value of a dense target array at invalid pixels (0 for values, -1 for classes)."""
        return self.kind_info.fill

    @property
    def class_codes(self) -> tuple[int, ...] | None:
        """The integer class codes of a class raster (looked up to class indices), else None."""
        if self.kind_info.class_type is not int or not self.classes:
            return None
        return tuple(int(c) for c in self.classes)

    @property
    def bands(self) -> tuple[int, ...]:
        """1-based band(s) read from the target raster (the first band unless the spec says)."""
        if self.source is not None and self.source.bands:
            return self.source.bands
        return (1,)

    @property
    def n_outputs(self) -> int:
        """Output channels a model needs: 1 for values, one per class or label otherwise."""
        if self.is_continuous:
            return 1
        assert self.classes is not None
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "source": None if self.source is None else self.source.to_dict(),
            "scale": self.scale,
            "nodata": nodata_to_spec(self.nodata),
        }
        if self.classes is not None:
            d["classes"] = list(self.classes)
        if self.class_names is not None:
            d["class_names"] = list(self.class_names)
        if not self.is_dense:
            d["key"] = self.key
            d["multilabel"] = self.multilabel
        return d
