"""TODO docstring: data/specfile.py"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError, SpecError
from .presets import get_preset
from .spec import (
    CATEGORICAL,
    CONTINUOUS,
    MODALITY_KINDS,
    NORM_TYPES,
    SPLIT_NAMES,
    TARGET_KINDS,
    DatasetSpec,
    Modality,
    Normalization,
    SourceFile,
    SplitSpec,
    TargetSpec,
)


def _as_nodata(value: Any, where: str, source: str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() == "nan":
            return math.nan
        raise SpecError(
            f"nodata must be a number, 'nan' or null, got {value!r}",
            _where(where, source),
            "write e.g. nodata: 0 or nodata: nan",
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(
            f"nodata must be a number, got {value!r}", _where(where, source), "write e.g. nodata: 0"
        ) from None


def _where(key: str, source: str | None) -> str:
    return f"key '{key}' in {source}" if source else f"key '{key}'"


def _number(value: Any, key: str, source: str | None, kind: type = float) -> Any:
    """``kind(value)`` or a one-line SpecError naming the key."""
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise SpecError(
            f"{key.rsplit('.', 1)[-1]} must be {what}, got {value!r}",
            _where(key, source),
            f"write {what}",
        ) from None


def read_yaml(path: str | Path, what: str = "spec") -> Any:
    """Parse a YAML file; a missing file or bad syntax is a one-line :class:`SpecError`."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{what} file not found: {path}", None, "check the path given to --config")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f"{path}" + (f", line {line + 1}" if line is not None else "")
        raise SpecError(f"{what} file is not valid YAML", at, "fix the YAML syntax") from None


def load_spec(path: str | Path, root: str | Path | None = None) -> DatasetSpec:
    """Load and validate a dataset spec from YAML. ``root`` overrides the file's ``root``.

    A config file that holds the spec under a ``data:`` key (as run configs do) is accepted too.
    """
    path = Path(path)
    data = read_yaml(path, "spec")
    if not isinstance(data, Mapping):
        raise SpecError("spec file must hold a mapping", str(path), "see the README for an example")
    if "data" in data and "modalities" not in data:
        data = data["data"]
        if not isinstance(data, Mapping):
            raise SpecError("key 'data' must be a mapping", str(path), "see configs/demo.yaml")
    if root is not None:
        data = dict(data)
        data["root"] = str(root)
    return spec_from_dict(data, str(path), path.parent)


_DATASET_KEYS = {
    "name",
    "root",
    "modalities",
    "target",
    "split",
    "index",
    "index_builder",
    "crop_size",
    "preset",
    "preset_options",
}


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


_TARGET_KEYS = {"kind", "source", "scale", "nodata", "classes", "key", "multilabel"}


_SPLIT_KEYS = {"file", "columns", "ratios", "seed"}


_NORM_KEYS = {"type", "divisor", "offset", "mean", "std"}


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str, source: str | None) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(
            f"unknown key {unknown[0]!r}",
            _where(f"{where}.{unknown[0]}" if where else unknown[0], source),
            f"allowed keys: {', '.join(sorted(allowed))}",
        )


def _require(d: Mapping[str, Any], key: str, where: str, source: str | None, hint: str) -> Any:
    if key not in d or d[key] is None:
        raise SpecError(
            f"missing key '{key}'", _where(f"{where}.{key}" if where else key, source), hint
        )
    return d[key]


def _parse_source(value: Any, where: str, source: str | None) -> SourceFile:
    if isinstance(value, str):
        return SourceFile(value)
    if isinstance(value, Mapping):
        _check_keys(value, {"path", "bands"}, where, source)
        path = _require(value, "path", where, source, "give the file's path template with {id}")
        bands = value.get("bands")
        if bands is not None:
            if isinstance(bands, int):
                bands = [bands]
            if not isinstance(bands, list) or not all(isinstance(b, int) and b >= 1 for b in bands):
                raise SpecError(
                    "source bands must be a list of 1-based band indices",
                    _where(f"{where}.bands", source),
                    "write e.g. bands: [1, 2]",
                )
            bands = tuple(bands)
        return SourceFile(str(path), bands)
    raise SpecError(
        "a source must be a path template or a mapping with 'path' (and 'bands')",
        _where(where, source),
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
            _where(where, source),
            "give one value per band",
        )
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise SpecError("expected numbers", _where(where, source), "give numbers") from None


def _parse_norm(
    value: Any, n_bands: int, kind: str, where: str, source: str | None
) -> Normalization:
    if value is None:
        return Normalization("none")
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        raise SpecError(
            "normalization must be a mapping with a 'type'",
            _where(where, source),
            f"types: {', '.join(NORM_TYPES)}",
        )
    _check_keys(value, _NORM_KEYS, where, source)
    ntype = value.get("type", "none")
    if ntype not in NORM_TYPES:
        raise SpecError(
            f"unknown normalization type {ntype!r}",
            _where(f"{where}.type", source),
            f"choose from {', '.join(NORM_TYPES)}",
        )
    if ntype in ("ordinal", "onehot") and kind != CATEGORICAL:
        raise SpecError(
            f"normalization {ntype!r} is for categorical modalities",
            _where(f"{where}.type", source),
            "set kind: categorical or use scale/standard",
        )
    divisor = _number(value.get("divisor", 1.0), f"{where}.divisor", source)
    if divisor == 0:
        raise SpecError(
            "divisor must not be 0", _where(f"{where}.divisor", source), "use e.g. 10000"
        )
    std = _floats(value.get("std"), n_bands, f"{where}.std", source)
    if std is not None and any(s <= 0 for s in std):
        raise SpecError("std values must be > 0", _where(f"{where}.std", source), "fix the std")
    return Normalization(
        type=ntype,
        divisor=divisor,
        offset=_number(value.get("offset", 0.0), f"{where}.offset", source),
        mean=_floats(value.get("mean"), n_bands, f"{where}.mean", source),
        std=std,
    )


def _parse_modality(d: Any, i: int, source: str | None) -> Modality:
    where = f"modalities[{i}]"
    if not isinstance(d, Mapping):
        raise SpecError("each modality must be a mapping", _where(where, source), "see the README")
    _check_keys(d, _MODALITY_KEYS, where, source)
    name = str(_require(d, "name", where, source, "give the modality a name, e.g. s2"))
    where = f"modalities[{i}] ({name})"
    bands = _require(d, "bands", where, source, "list the band names in order")
    if isinstance(bands, str):
        bands = [bands]
    if not isinstance(bands, list) or not bands:
        raise SpecError(
            "bands must be a non-empty list of names", _where(f"{where}.bands", source), ""
        )
    bands = tuple(str(b) for b in bands)
    if len(set(bands)) != len(bands):
        raise SpecError("band names repeat", _where(f"{where}.bands", source), "make them unique")
    if "source" in d and "sources" in d:
        raise SpecError(
            "give either 'source' or 'sources', not both", _where(where, source), "keep one"
        )
    raw_sources = d.get("sources")
    if raw_sources is None:
        raw = _require(d, "source", where, source, "give a path template such as s2/{id}.tif")
        raw_sources = [raw]
    if not isinstance(raw_sources, list) or not raw_sources:
        raise SpecError("sources must be a non-empty list", _where(f"{where}.sources", source), "")
    sources = tuple(
        _parse_source(s, f"{where}.sources[{j}]", source) for j, s in enumerate(raw_sources)
    )
    declared = [len(s.bands) for s in sources if s.bands is not None]
    if all(s.bands is not None for s in sources) and sum(declared) != len(bands):
        raise SpecError(
            f"the sources read {sum(declared)} bands but {len(bands)} band names are given",
            _where(where, source),
            "make the band indices and band names match",
        )
    if len(sources) > 1 and any(s.bands is None for s in sources) and len(sources) != len(bands):
        raise SpecError(
            "with several source files, each reads one band unless 'bands' says otherwise",
            _where(where, source),
            "give one file per band or list the bands of each file",
        )
    kind = d.get("kind", CONTINUOUS)
    if kind not in MODALITY_KINDS:
        raise SpecError(
            f"unknown modality kind {kind!r}",
            _where(f"{where}.kind", source),
            "use continuous or categorical",
        )
    classes = d.get("classes")
    if kind == CATEGORICAL:
        if not classes or not isinstance(classes, list):
            raise SpecError(
                "a categorical modality needs its class codes",
                _where(f"{where}.classes", source),
                "list them, e.g. classes: [10, 20, 30]",
            )
        classes = tuple(_number(c, f"{where}.classes", source, int) for c in classes)
        if len(bands) != 1:
            raise SpecError(
                "a categorical modality has exactly one band",
                _where(f"{where}.bands", source),
                "split it into one modality per categorical map",
            )
    elif classes is not None:
        raise SpecError(
            "classes are only for categorical modalities",
            _where(f"{where}.classes", source),
            "set kind: categorical or remove classes",
        )
    norm = _parse_norm(d.get("normalization"), len(bands), kind, f"{where}.normalization", source)
    return Modality(
        name=name,
        bands=bands,
        sources=sources,
        kind=kind,
        classes=classes,
        normalization=norm,
        nodata=_as_nodata(d.get("nodata"), f"{where}.nodata", source),
    )


def _parse_target(d: Any, source: str | None) -> TargetSpec:
    if not isinstance(d, Mapping):
        raise SpecError("target must be a mapping", _where("target", source), "see the README")
    _check_keys(d, _TARGET_KEYS, "target", source)
    kind = d.get("kind", "continuous")
    if kind not in TARGET_KINDS:
        raise SpecError(
            f"unknown target kind {kind!r}",
            _where("target.kind", source),
            f"choose from {', '.join(TARGET_KINDS)}",
        )
    src = _parse_source(
        _require(d, "source", "target", source, "give the target's path template"),
        "target.source",
        source,
    )
    classes = d.get("classes")
    if kind in ("classes", "scene_labels"):
        if not classes or not isinstance(classes, list):
            raise SpecError(
                f"a {kind} target needs its class list",
                _where("target.classes", source),
                "list the class codes (or label names)",
            )
        if kind == "classes":
            classes = tuple(_number(c, "target.classes", source, int) for c in classes)
        else:
            classes = tuple(map(str, classes))
    scale = _number(d.get("scale", 1.0), "target.scale", source)
    if scale == 0:
        raise SpecError("scale must not be 0", _where("target.scale", source), "use e.g. 100")
    return TargetSpec(
        kind=kind,
        source=src,
        scale=scale,
        nodata=_as_nodata(d.get("nodata"), "target.nodata", source),
        classes=classes,
        key=str(d.get("key", "labels")),
        multilabel=bool(d.get("multilabel", True)),
    )


def _parse_split(d: Any, source: str | None) -> SplitSpec:
    if d is None:
        return SplitSpec()
    if isinstance(d, str):
        d = {"file": d}
    if not isinstance(d, Mapping):
        raise SpecError(
            "split must be a mapping", _where("split", source), "e.g. split: {file: x.csv}"
        )
    _check_keys(d, _SPLIT_KEYS, "split", source)
    columns = dict(SplitSpec().columns)
    user_cols = d.get("columns") or {}
    if not isinstance(user_cols, Mapping):
        raise SpecError("split.columns must be a mapping", _where("split.columns", source), "")
    for k, v in user_cols.items():
        if k not in SPLIT_NAMES:
            raise SpecError(
                f"unknown split {k!r}",
                _where("split.columns", source),
                f"use {', '.join(SPLIT_NAMES)}",
            )
        columns[k] = str(v)
    ratios = d.get("ratios", [0.8, 0.1, 0.1])
    if isinstance(ratios, list):
        ratios = [_number(r, "split.ratios", source) for r in ratios]
    if not isinstance(ratios, list) or len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-6:
        raise SpecError(
            "split ratios must be three numbers summing to 1",
            _where("split.ratios", source),
            "e.g. ratios: [0.8, 0.1, 0.1]",
        )
    return SplitSpec(
        file=d.get("file"),
        columns=tuple((k, columns[k]) for k in SPLIT_NAMES),
        ratios=tuple(float(r) for r in ratios),
        seed=_number(d.get("seed", 0), "split.seed", source, int),
    )


def spec_from_dict(
    data: Mapping[str, Any], source: str | None = None, base_dir: Path | None = None
) -> DatasetSpec:
    """A :class:`DatasetSpec` from a plain dict (the content of a spec YAML).

    Args:
        data: the spec mapping (``modalities``, ``target``, ``split``... or ``preset``).
        source: the file it came from, named in error messages.
        base_dir: folder a relative ``root`` resolves against (default: the working directory).

    Raises:
        SpecError: a key is unknown, missing or has a bad value (the message names it).
    """
    if not isinstance(data, Mapping):
        raise SpecError("a dataset spec must be a mapping", source, "see the README")
    if "preset" in data:

        _check_keys(data, {"preset", "preset_options", "root", "crop_size"}, "", source)
        root = data.get("root")
        if root is None:
            raise SpecError("a preset needs a root", _where("root", source), "give root: FOLDER")
        root_path = Path(root)
        if not root_path.is_absolute() and base_dir is not None:
            root_path = base_dir / root_path
        opts = dict(data.get("preset_options") or {})
        spec = get_preset(str(data["preset"]), root_path, **opts)
        if "crop_size" in data:
            spec = replace(spec, crop_size=int(data["crop_size"]))
        return replace(spec, source_file=source)
    _check_keys(data, _DATASET_KEYS, "", source)
    mods_raw = _require(data, "modalities", "", source, "list the input modalities")
    if not isinstance(mods_raw, list) or not mods_raw:
        raise SpecError("modalities must be a non-empty list", _where("modalities", source), "")
    modalities = tuple(_parse_modality(m, i, source) for i, m in enumerate(mods_raw))
    names = [m.name for m in modalities]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError(
            f"modality name {min(dup)!r} repeats", _where("modalities", source), "rename one"
        )
    root = data.get("root", ".")
    root_path = Path(str(root))
    if not root_path.is_absolute() and base_dir is not None:
        root_path = base_dir / root_path
    crop = _number(data.get("crop_size", 256), "crop_size", source, int)
    if crop < 8:
        raise SpecError(
            "crop_size must be >= 8", _where("crop_size", source), "e.g. crop_size: 256"
        )
    return DatasetSpec(
        name=str(data.get("name", "dataset")),
        root=root_path,
        modalities=modalities,
        target=_parse_target(_require(data, "target", "", source, "say what to predict"), source),
        split=_parse_split(data.get("split"), source),
        index=data.get("index"),
        index_builder=data.get("index_builder"),
        crop_size=crop,
        source_file=source,
    )


def spec_to_yaml(spec: DatasetSpec) -> str:
    """YAML text that :func:`load_spec` reads back into an equal spec."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)


def merge_dicts(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge used for config layering (override wins)."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_dicts(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_spec(
    root: str | Path | None,
    config: str | Path | None = None,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
) -> DatasetSpec:
    """The dataset spec for a folder: from a YAML ``config``, a ``preset`` name, or guessed.

    Without ``config`` or ``preset``, a folder with MapInWild's layout (``split_IDs.csv`` or an
    ``s2_*`` folder) gets the ``mapinwild`` preset and one with ``BigEarthNet-S1-*`` the
    ``bigearthnet`` preset; anything else is an error asking for ``--config`` or ``--preset``.
    """

    if config is not None:
        if options:
            raise SpecError(
                "preset options were given with a config file",
                "--option",
                "put them under preset_options in the config",
            )
        return load_spec(config, root=root)
    if root is None:
        raise SpecError("no dataset root given", None, "pass the dataset folder")
    root = Path(root)
    if not root.is_dir():
        raise DataError("dataset folder not found", str(root), "check the path")
    if preset is None:
        if (root / "split_IDs.csv").exists() or any(root.glob("s2_*")):
            preset = "mapinwild"
        elif any(root.glob("BigEarthNet-S1*")):
            preset = "bigearthnet"
        else:
            raise SpecError(
                "cannot tell the dataset layout",
                str(root),
                "pass --config SPEC.yaml or --preset mapinwild|bigearthnet",
            )
        if preset == "bigearthnet" and not options:
            s2 = sorted(root.glob("BigEarthNet-S2*"))
            s1 = sorted(root.glob("BigEarthNet-S1*"))
            if s2 and s1:
                options = {"s2_folder": s2[0].name, "s1_folder": s1[0].name}
    return get_preset(preset, root, **(options or {}))
