"""Parsing the parts of a dataset spec from plain dicts, with one-line errors.

Each ``parse_*`` function turns one part of a spec mapping (a source file, a normalisation, a
modality, a target, the named targets, the split) into its :mod:`modalens.data.spec` object.
Every mistake raises a :class:`~modalens.errors.SpecError` naming the dotted key
(``modalities[1] (s1).normalization.std``, ``targets.ni.kind``) and the file, with a fix.
:mod:`modalens.data.specfile` assembles the parts into a :class:`~modalens.data.spec.DatasetSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from .sources import SourceFile
from .spec import (
    CONTINUOUS,
    MODALITY_KINDS,
    NORM_TYPES,
    Modality,
    Normalization,
    is_categorical_kind,
)
from .targets import (
    CODE_MAP_KEYS,
    MAIN_TARGET,
    TARGET_KIND_INFO,
    TARGET_KINDS,
    TargetSpec,
    code_map_from_spec,
)


def as_nodata(value: Any, where: str, source: str | None) -> float | None:
    """A no-data value: a number, ``nan`` (or ``"nan"``) or None."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() == "nan":
            return math.nan
        raise SpecError(
            f"nodata must be a number, 'nan' or null, got {value!r}",
            where_key(where, source),
            "write e.g. nodata: 0 or nodata: nan",
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(
            f"nodata must be a number, got {value!r}",
            where_key(where, source),
            "write e.g. nodata: 0",
        ) from None


def where_key(key: str, source: str | None) -> str:
    """The *where* part of an error: ``key 'KEY' in FILE`` (the file only when known)."""
    return f"key '{key}' in {source}" if source else f"key '{key}'"


def as_number(value: Any, key: str, source: str | None, kind: type = float) -> Any:
    """``kind(value)`` or a one-line SpecError naming the key."""
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise SpecError(
            f"{key.rsplit('.', 1)[-1]} must be {what}, got {value!r}",
            where_key(key, source),
            f"write {what}",
        ) from None


_MODALITY_KEYS = {
    "name",
    "bands",
    "source",
    "sources",
    "kind",
    "classes",
    "normalization",
    "nodata",
}


_TARGET_KEYS = {
    "kind",
    "source",
    "scale",
    "nodata",
    "classes",
    "class_names",
    "key",
    "multilabel",
    "column",
    "separator",
    "label_map",
}


_NORM_KEYS = {"type", "divisor", "offset", "mean", "std"}


def check_keys(d: Mapping[str, Any], allowed: set[str], where: str, source: str | None) -> None:
    """Raise a SpecError naming the first key of ``d`` (below ``where``) not in ``allowed``."""
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(
            f"unknown key {unknown[0]!r}",
            where_key(f"{where}.{unknown[0]}" if where else unknown[0], source),
            f"allowed keys: {', '.join(sorted(allowed))}",
        )


def require_key(d: Mapping[str, Any], key: str, where: str, source: str | None, hint: str) -> Any:
    """``d[key]``, or a SpecError naming the missing key with ``hint`` as the fix."""
    if key not in d or d[key] is None:
        raise SpecError(
            f"missing key '{key}'", where_key(f"{where}.{key}" if where else key, source), hint
        )
    return d[key]


def parse_source(value: Any, where: str, source: str | None) -> SourceFile:
    """A :class:`SourceFile` from a path template or ``{path, bands}``."""
    if isinstance(value, str):
        return SourceFile(value)
    if isinstance(value, Mapping):
        check_keys(value, {"path", "bands"}, where, source)
        path = require_key(value, "path", where, source, "give the file's path template with {id}")
        bands = value.get("bands")
        if bands is not None:
            if isinstance(bands, int):
                bands = [bands]
            if not isinstance(bands, list) or not all(isinstance(b, int) and b >= 1 for b in bands):
                raise SpecError(
                    "source bands must be a list of 1-based band indices",
                    where_key(f"{where}.bands", source),
                    "write e.g. bands: [1, 2]",
                )
            bands = tuple(bands)
        return SourceFile(str(path), bands)
    raise SpecError(
        "a source must be a path template or a mapping with 'path' (and 'bands')",
        where_key(where, source),
        "write e.g. source: s2/{id}.tif",
    )


def _floats(value: Any, n: int, where: str, source: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = [value] * n
    if not isinstance(value, list) or len(value) != n:
        raise SpecError(
            f"expected a list of {n} numbers (one per band)",
            where_key(where, source),
            "give one value per band",
        )
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise SpecError("expected numbers", where_key(where, source), "give numbers") from None


def parse_normalization(
    value: Any, n_bands: int, categorical: bool, where: str, source: str | None
) -> Normalization:
    """A :class:`Normalization` from a type name or mapping (``n_bands`` values per list)."""
    if value is None:
        return Normalization("none")
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        raise SpecError(
            "normalization must be a mapping with a 'type'",
            where_key(where, source),
            f"types: {', '.join(NORM_TYPES)}",
        )
    check_keys(value, _NORM_KEYS, where, source)
    ntype = value.get("type", "none")
    if ntype not in NORM_TYPES:
        raise SpecError(
            f"unknown normalization type {ntype!r}",
            where_key(f"{where}.type", source),
            f"choose from {', '.join(NORM_TYPES)}",
        )
    if ntype in ("ordinal", "onehot") and not categorical:
        raise SpecError(
            f"normalization {ntype!r} is for categorical modalities",
            where_key(f"{where}.type", source),
            "set kind: categorical or use scale/standard",
        )
    divisor = as_number(value.get("divisor", 1.0), f"{where}.divisor", source)
    if divisor == 0:
        raise SpecError(
            "divisor must not be 0", where_key(f"{where}.divisor", source), "use e.g. 10000"
        )
    std = _floats(value.get("std"), n_bands, f"{where}.std", source)
    if std is not None and any(s <= 0 for s in std):
        raise SpecError("std values must be > 0", where_key(f"{where}.std", source), "fix the std")
    return Normalization(
        type=ntype,
        divisor=divisor,
        offset=as_number(value.get("offset", 0.0), f"{where}.offset", source),
        mean=_floats(value.get("mean"), n_bands, f"{where}.mean", source),
        std=std,
    )


def parse_modality(d: Any, i: int, source: str | None, key: str = "modalities") -> Modality:
    """The ``i``-th entry of ``modalities`` (or of another list ``key``) as a
    :class:`Modality`."""
    where = f"{key}[{i}]"
    if not isinstance(d, Mapping):
        raise SpecError(
            "each modality must be a mapping",
            where_key(where, source),
            "see docs/data.md (dataset specs)",
        )
    check_keys(d, _MODALITY_KEYS, where, source)
    name = str(require_key(d, "name", where, source, "give the modality a name, e.g. s2"))
    where = f"{key}[{i}] ({name})"
    bands = _modality_bands(d, where, source)
    sources = _modality_sources(d, len(bands), where, source)
    kind = d.get("kind", CONTINUOUS)
    if kind not in MODALITY_KINDS:
        raise SpecError(
            f"unknown modality kind {kind!r}",
            where_key(f"{where}.kind", source),
            "use continuous or categorical",
        )
    categorical = is_categorical_kind(kind)
    classes = _modality_classes(d.get("classes"), categorical, len(bands), where, source)
    norm = parse_normalization(
        d.get("normalization"), len(bands), categorical, f"{where}.normalization", source
    )
    return Modality(
        name=name,
        bands=bands,
        sources=sources,
        kind=kind,
        classes=classes,
        normalization=norm,
        nodata=as_nodata(d.get("nodata"), f"{where}.nodata", source),
    )


def _modality_bands(d: Mapping[str, Any], where: str, source: str | None) -> tuple[str, ...]:
    """A modality's band names: a non-empty list (or one name) without repeats."""
    bands = require_key(d, "bands", where, source, "list the band names in order")
    if isinstance(bands, str):
        bands = [bands]
    if not isinstance(bands, list) or not bands:
        raise SpecError(
            "bands must be a non-empty list of names", where_key(f"{where}.bands", source), ""
        )
    bands = tuple(str(b) for b in bands)
    if len(set(bands)) != len(bands):
        raise SpecError(
            "band names repeat", where_key(f"{where}.bands", source), "make them unique"
        )
    return bands


def _modality_sources(
    d: Mapping[str, Any], n_bands: int, where: str, source: str | None
) -> tuple[SourceFile, ...]:
    """A modality's source files (``source`` or ``sources``), reading ``n_bands`` bands."""
    if "source" in d and "sources" in d:
        raise SpecError(
            "give either 'source' or 'sources', not both", where_key(where, source), "keep one"
        )
    raw_sources = d.get("sources")
    if raw_sources is None:
        raw = require_key(d, "source", where, source, "give a path template such as s2/{id}.tif")
        raw_sources = [raw]
    if not isinstance(raw_sources, list) or not raw_sources:
        raise SpecError(
            "sources must be a non-empty list", where_key(f"{where}.sources", source), ""
        )
    sources = tuple(
        parse_source(s, f"{where}.sources[{j}]", source) for j, s in enumerate(raw_sources)
    )
    declared = [len(s.bands) for s in sources if s.bands is not None]
    if all(s.bands is not None for s in sources) and sum(declared) != n_bands:
        raise SpecError(
            f"the sources read {sum(declared)} bands but {n_bands} band names are given",
            where_key(where, source),
            "make the band indices and band names match",
        )
    if len(sources) > 1 and any(s.bands is None for s in sources) and len(sources) != n_bands:
        raise SpecError(
            "with several source files, each reads one band unless 'bands' says otherwise",
            where_key(where, source),
            "give one file per band or list the bands of each file",
        )
    return sources


def _modality_classes(
    classes: Any, categorical: bool, n_bands: int, where: str, source: str | None
) -> tuple[int, ...] | None:
    """A categorical modality's class codes (it has one band); None for a continuous one."""
    if not categorical:
        if classes is not None:
            raise SpecError(
                "classes are only for categorical modalities",
                where_key(f"{where}.classes", source),
                "set kind: categorical or remove classes",
            )
        return None
    if not classes or not isinstance(classes, list):
        raise SpecError(
            "a categorical modality needs its class codes",
            where_key(f"{where}.classes", source),
            "list them, e.g. classes: [10, 20, 30]",
        )
    codes = tuple(as_number(c, f"{where}.classes", source, int) for c in classes)
    if n_bands != 1:
        raise SpecError(
            "a categorical modality has exactly one band",
            where_key(f"{where}.bands", source),
            "split it into one modality per categorical map",
        )
    return codes


def parse_target(d: Any, source: str | None, where: str = "target") -> TargetSpec:
    """One target mapping as a :class:`TargetSpec`.

    Args:
        d: the target's mapping (``kind``, ``source``, ``scale``, ``nodata``, ``classes``...).
        source: the spec file, named in errors.
        where: the target's key, ``target`` or ``targets.NAME``.

    Raises:
        SpecError: a key is unknown, missing or has a bad value (the message names it).
    """
    if not isinstance(d, Mapping):
        raise SpecError(
            f"{where} must be a mapping",
            where_key(where, source),
            "see docs/data.md (dataset specs)",
        )
    check_keys(d, _TARGET_KEYS | CODE_MAP_KEYS, where, source)
    kind = d.get("kind", "continuous")
    info = TARGET_KIND_INFO.get(kind) if isinstance(kind, str) else None
    if info is None:
        raise SpecError(
            f"unknown target kind {kind!r}",
            where_key(f"{where}.kind", source),
            f"choose from {', '.join(TARGET_KINDS)}",
        )
    column = None if d.get("column") is None else str(d["column"])
    if column is not None and info.dense:
        raise SpecError(
            f"a {kind} target cannot read an index column",
            where_key(f"{where}.column", source),
            "use column with kind: scene_labels, or give a source raster",
        )
    src = None
    if column is None or d.get("source") is not None:
        src = parse_source(
            require_key(d, "source", where, source, "give the target's path template"),
            f"{where}.source",
            source,
        )
    classes = d.get("classes")
    if info.class_type is not None:
        if not classes or not isinstance(classes, list):
            raise SpecError(
                f"a {kind} target needs its class list",
                where_key(f"{where}.classes", source),
                "list the class codes (or label names)",
            )
        if info.class_type is int:
            classes = tuple(as_number(c, f"{where}.classes", source, int) for c in classes)
        else:
            classes = tuple(map(str, classes))
    names = _class_names(d.get("class_names"), classes, f"{where}.class_names", source)
    scale = as_number(d.get("scale", 1.0), f"{where}.scale", source)
    if scale == 0:
        raise SpecError("scale must not be 0", where_key(f"{where}.scale", source), "use e.g. 100")
    return TargetSpec(
        kind=kind,
        source=src,
        scale=scale,
        nodata=as_nodata(d.get("nodata"), f"{where}.nodata", source),
        classes=classes,
        key=str(d.get("key", "labels")),
        multilabel=bool(d.get("multilabel", True)),
        column=column,
        separator=str(d.get("separator", ";")),
        label_map=_label_map(d.get("label_map"), f"{where}.label_map", source),
        class_names=names,
        **code_map_from_spec(d, where, source),
    )


def _label_map(value: Any, where: str, source: str | None) -> tuple[tuple[str, str], ...]:
    """``label_map``: a mapping of labels as read to class names (``""``: left out)."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise SpecError(
            "label_map must map labels to classes", where_key(where, source), "e.g. {a: b}"
        )
    return tuple((str(k), "" if v is None else str(v)) for k, v in value.items())


def _class_names(
    names: Any, classes: Any, where: str, source: str | None
) -> tuple[str, ...] | None:
    """A target's ``class_names``: one string per class, or None when not given."""
    if names is None:
        return None
    if not isinstance(names, list) or not classes or len(names) != len(classes):
        raise SpecError(
            "class_names must list one name per class",
            where_key(where, source),
            f"give {len(classes or ())} names in the order of classes",
        )
    return tuple(str(n) for n in names)


def parse_targets(data: Mapping[str, Any], source: str | None) -> dict[str, TargetSpec]:
    """The named targets of a spec mapping, in order.

    Args:
        data: the spec mapping: ``target: {...}`` gives one target named ``main``;
            ``targets: {name: {...}, ...}`` gives several (the first is the main one).
        source: the spec file, named in errors.

    Returns:
        The targets by name.

    Raises:
        SpecError: both or neither key, an empty or bad mapping, a bad name or target.
    """
    one, many = data.get("target"), data.get("targets")
    if one is not None and many is not None:
        raise SpecError(
            "give either 'target' or 'targets', not both",
            where_key("targets", source),
            "keep one of them",
        )
    if many is None:
        d = require_key(data, "target", "", source, "say what to predict")
        return {MAIN_TARGET: parse_target(d, source)}
    if not isinstance(many, Mapping) or not many:
        raise SpecError(
            "targets must be a non-empty mapping of names to targets",
            where_key("targets", source),
            "write e.g. targets: {ni: {kind: continuous, source: NI/{id}.tif}}",
        )
    out: dict[str, TargetSpec] = {}
    for name, d in many.items():
        if not isinstance(name, str) or not name.strip():
            raise SpecError(
                f"target name {name!r} must be a non-empty string",
                where_key("targets", source),
                "name each target, e.g. ni or mask",
            )
        out[name] = parse_target(d, source, f"targets.{name}")
    return out


def as_flag(value: Any, key: str, source: str | None) -> bool:
    """A YAML boolean (``true``/``false``) or a one-line SpecError naming ``key``."""
    if not isinstance(value, bool):
        raise SpecError(
            f"{key.rsplit('.', 1)[-1]} must be true or false, got {value!r}",
            where_key(key, source),
            f"write {key.rsplit('.', 1)[-1]}: true",
        )
    return value
