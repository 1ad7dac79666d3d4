"""What a model predicts: target kinds and :class:`TargetSpec`.

A target is ``continuous`` (a raster of values, divided by ``scale``), ``classes`` (a raster of
class codes, looked up to class indices) or ``scene_labels`` (one label set per sample, read
from a JSON file or an index-table column). What a kind implies -- a dense raster or one label
set per scene, values or classes, how the raster is resampled, the array type and fill value
of a sample's target -- is described once in :data:`TARGET_KIND_INFO` and asked through
:class:`TargetSpec` properties, so no other module tests kind strings. A dataset spec names its
targets
(:attr:`~modalens.data.spec.DatasetSpec.targets`); a single ``target:`` is named
:data:`MAIN_TARGET`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

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
      JSON template and ``key`` the list of label names in it) or from the index table's
      ``column`` (labels joined by ``separator``), ``classes`` the label names.
    Pixels equal to ``nodata`` (or NaN) are invalid and never reach loss or metrics.

    A class raster whose codes are not the classes themselves is recoded first
    (:meth:`map_codes`): ``code_map`` maps raw codes to class codes and ``other_code`` is the
    class code of every other valid value (MapInWild's ``mask``: ``code_map=((0, 0),)``,
    ``other_code=1``: 0 stays 0, any other value is protected).

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
    #: scene labels from this column of the index table instead of a JSON file (``source``
    #: None): the sample's labels joined by :attr:`separator` (BigEarthNet v2's ``labels``)
    column: str | None = None
    separator: str = ";"
    #: scene labels as read -> the class they count for, ``""`` for a label left out
    #: (BigEarthNet v1's 43 labels onto its 19-class nomenclature); empty: labels as read
    label_map: tuple[tuple[str, str], ...] = ()
    #: readable names of ``classes`` in the same order (e.g. ``("dry", "water")``), used in
    #: metric names (``iou_water``) and figures; None: the class codes or labels themselves
    class_names: tuple[str, ...] | None = None
    #: raw raster code -> class code, applied before the class lookup (empty: codes as read)
    code_map: tuple[tuple[int, int], ...] = ()
    #: class code of every valid raw code ``code_map`` does not list (None: left as read)
    other_code: int | None = None

    def map_codes(self, codes: np.ndarray) -> np.ndarray:
        """Raw class codes recoded by :attr:`code_map` and :attr:`other_code` (a float array;
        NaN, the invalid pixels, stays NaN); the array itself when the target recodes nothing.

        Args:
            codes: raw codes as read (float, NaN where invalid).

        Returns:
            Class codes for the class lookup.
        """
        if not self.code_map and self.other_code is None:
            return codes
        out = codes.astype(np.float32, copy=True)
        listed = np.zeros(codes.shape, bool)
        for raw, code in self.code_map:
            hit = codes == raw
            out[hit] = code
            listed |= hit
        if self.other_code is not None:
            out[~listed & ~np.isnan(codes)] = self.other_code
        return out

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
        if self.code_map:
            d["code_map"] = {raw: code for raw, code in self.code_map}
        if self.other_code is not None:
            d["other_code"] = self.other_code
        if not self.is_dense:
            d["key"] = self.key
            d["multilabel"] = self.multilabel
        if self.column is not None:
            d["column"] = self.column
            d["separator"] = self.separator
        if self.label_map:
            d["label_map"] = dict(self.label_map)
        return d


#: the target keys of a spec that recode a class raster (:meth:`TargetSpec.map_codes`)
CODE_MAP_KEYS = {"code_map", "other_code"}


def code_map_from_spec(d: Mapping[str, Any], where: str, source: str | None) -> dict[str, Any]:
    """The ``code_map`` (raw code -> class code) and ``other_code`` keys of a target mapping
    as :class:`TargetSpec` keyword arguments (absent keys: none).

    Args:
        d: the target's mapping.
        where: the target's key, ``target`` or ``targets.NAME``, named in errors.
        source: the spec file, named in errors.

    Raises:
        SpecError: a code that is not an integer (the message names the key).
    """
    out: dict[str, Any] = {}
    raw_map, other = d.get("code_map"), d.get("other_code")
    try:
        if raw_map is not None:
            if not isinstance(raw_map, Mapping):
                raise TypeError
            out["code_map"] = tuple((_code(k), _code(v)) for k, v in raw_map.items())
        if other is not None:
            out["other_code"] = _code(other)
    except (TypeError, ValueError):
        raise SpecError(
            "code_map must map integer codes to integer class codes and other_code be one",
            f"key '{where}.code_map'" + (f" in {source}" if source else ""),
            "write e.g. code_map: {0: 0} and other_code: 1",
        ) from None
    return out


def _code(value: Any) -> int:
    """An integer class code from a YAML/JSON value (``3``, ``"3"``, ``3.0``)."""
    if isinstance(value, bool):
        raise TypeError
    number = float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)
