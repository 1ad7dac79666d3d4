"""Reading dataset specs from YAML files or dicts, and writing them back.

:func:`load_spec` reads a spec YAML (or the ``data:`` section of a run config),
:func:`spec_from_dict` validates a plain mapping (a ``preset:`` with its ``root`` and
``preset_options``, or a full spec: ``modalities``, ``target`` or ``targets``, ``split``...) and
:func:`spec_to_yaml` writes YAML that reads back into an equal spec. Relative roots resolve
against the spec file's folder. :func:`resolve_spec` picks the spec of a dataset folder from a
config file, a preset name or the folder's layout. Every mistake is a one-line
:class:`~modalens.errors.SpecError` naming the key and the file (see
:mod:`modalens.data.specparts`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError, SpecError
from .presets import PRESETS, get_preset
from .presets.registry import detect_preset
from .remote import (
    Location,
    RemotePath,
    as_location,
    is_remote,
    refuse_credentials,
    resolve_root,
)
from .spec import DatasetSpec
from .specparts import (
    as_flag,
    as_number,
    check_keys,
    parse_modality,
    parse_targets,
    require_key,
    where_key,
)
from .splits import parse_split

#: a dataset folder may carry its own spec under this name (``resolve_spec`` then reads it)
FOLDER_SPEC = "spec.yaml"


def read_yaml(path: str | Path | RemotePath, what: str = "spec") -> Any:
    """Parse a YAML file (local or a URL); a missing or empty file (blanks and comments only)
    or bad syntax is a one-line :class:`SpecError`."""
    path = as_location(path)
    if not path.exists():
        raise SpecError(f"{what} file not found: {path}", None, "check the path given to --config")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f"{path}" + (f", line {line + 1}" if line is not None else "")
        raise SpecError(f"{what} file is not valid YAML", at, "fix the YAML syntax") from None
    if content is None:  # nothing but blanks and comments: no key to name as missing
        fix = (
            "write a run config into it, e.g. configs/demo.yaml"
            if what == "config"
            else f"write a dataset {what} into it, see docs/data.md"
        )
        raise SpecError(f"the {what} file is empty", str(path), fix)
    return content


def load_spec(
    path: str | Path | RemotePath, root: str | Path | RemotePath | None = None
) -> DatasetSpec:
    """Load and validate a dataset spec from YAML. ``root`` overrides the file's ``root``.

    The file's ``root`` is relative to the file's folder; ``root`` given here (e.g. on the
    command line) is relative to the working directory.

    A config file that holds the spec under a ``data:`` key (as run configs do) is accepted too.
    """
    path = as_location(path)
    data = read_yaml(path, "spec")
    if not isinstance(data, Mapping):
        raise SpecError(
            "spec file must hold a mapping", str(path), "see docs/data.md for an example spec"
        )
    if "data" in data and "modalities" not in data:
        data = data["data"]
        if not isinstance(data, Mapping):
            raise SpecError("key 'data' must be a mapping", str(path), "see configs/demo.yaml")
    if root is not None:  # given by the caller: relative to the working directory
        data = dict(data)
        data["root"] = resolve_root(str(root))
    return spec_from_dict(data, str(path), path.parent)


_DATASET_KEYS = {
    "name",
    "root",
    "modalities",
    "target",
    "targets",
    "split",
    "index",
    "index_builder",
    "crop_size",
    "preset",
    "preset_options",
    "auxiliary",
    "allow_leakage",
}


def spec_from_dict(
    data: Mapping[str, Any], source: str | None = None, base_dir: Location | None = None
) -> DatasetSpec:
    """A :class:`DatasetSpec` from a plain dict (the content of a spec YAML).

    Args:
        data: the spec mapping (``modalities``, ``target`` or ``targets``, ``split``... or
            ``preset``).
        source: the file it came from, named in error messages.
        base_dir: folder a relative ``root`` resolves against (default: the working directory).

    Raises:
        SpecError: a key is unknown, missing or has a bad value (the message names it).
    """
    if not isinstance(data, Mapping):
        raise SpecError(
            "a dataset spec must be a mapping", source, "see docs/data.md (dataset specs)"
        )
    refuse_credentials(data, source)
    if "preset" in data:
        check_keys(
            data, {"preset", "preset_options", "root", "crop_size", "allow_leakage"}, "", source
        )
        root = data.get("root")
        if root is None:
            raise SpecError("a preset needs a root", where_key("root", source), "give root: FOLDER")
        root_path = _root(root, base_dir)
        opts = data.get("preset_options") or {}
        if not isinstance(opts, Mapping):
            raise SpecError(
                "preset_options must be a mapping",
                where_key("preset_options", source),
                "e.g. preset_options: {target: mask}",
            )
        try:
            spec = get_preset(str(data["preset"]), root_path, **dict(opts))
        except SpecError as exc:  # name the file the options came from
            if source is None:
                raise
            raise SpecError(exc.what, where_key(exc.where or "preset", source), exc.fix) from None
        if "crop_size" in data:
            spec = replace(spec, crop_size=int(data["crop_size"]))
        return _with_leakage(replace(spec, source_file=source), data, source)
    check_keys(data, _DATASET_KEYS, "", source)
    mods_raw = require_key(data, "modalities", "", source, "list the input modalities")
    if not isinstance(mods_raw, list) or not mods_raw:
        raise SpecError("modalities must be a non-empty list", where_key("modalities", source), "")
    modalities = tuple(parse_modality(m, i, source) for i, m in enumerate(mods_raw))
    aux_raw = data.get("auxiliary") or []
    if not isinstance(aux_raw, list):
        raise SpecError(
            "auxiliary must be a list of modalities", where_key("auxiliary", source), ""
        )
    auxiliary = tuple(parse_modality(m, i, source, "auxiliary") for i, m in enumerate(aux_raw))
    names = [m.name for m in (*modalities, *auxiliary)]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError(
            f"modality name {min(dup)!r} repeats", where_key("modalities", source), "rename one"
        )
    root_path = _root(data.get("root", "."), base_dir)
    crop = as_number(data.get("crop_size", 256), "crop_size", source, int)
    if crop < 8:
        raise SpecError(
            "crop_size must be >= 8", where_key("crop_size", source), "e.g. crop_size: 256"
        )
    spec = DatasetSpec(
        name=str(data.get("name", "dataset")),
        root=root_path,
        modalities=modalities,
        targets=parse_targets(data, source),
        split=parse_split(data.get("split"), source),
        index=data.get("index"),
        index_builder=data.get("index_builder"),
        crop_size=crop,
        source_file=source,
        auxiliary=auxiliary,
    )
    return _with_leakage(spec, data, source)


def _root(root: Any, base_dir: Location | None) -> Location:
    """A spec's root: a URL as it is, a relative folder under ``base_dir`` when given."""
    root_path = as_location(str(root))
    if isinstance(root_path, Path) and not root_path.is_absolute() and base_dir is not None:
        if isinstance(base_dir, Path):  # absolute, as a root given on the command line
            return Path(resolve_root(root_path, base_dir))
        root_path = base_dir / root_path
    return root_path


def _with_leakage(spec: DatasetSpec, data: Mapping[str, Any], source: str | None) -> DatasetSpec:
    """``spec`` with ``split.allow_leakage`` set by the top-level ``allow_leakage`` key."""
    if "allow_leakage" not in data:
        return spec
    allow = as_flag(data["allow_leakage"], "allow_leakage", source)
    return replace(spec, split=replace(spec.split, allow_leakage=allow or spec.split.allow_leakage))


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

    Without ``config`` or ``preset``, a folder that carries its own spec (:data:`FOLDER_SPEC`,
    e.g. synthetic data with a decoy modality) is read with it; else a folder with MapInWild's
    layout (``split_IDs.csv`` or an ``s2_*`` folder) gets the ``mapinwild`` preset and one with
    ``BigEarthNet-S1-*`` the ``bigearthnet`` preset; anything else is an error asking for
    ``--config`` or ``--preset``. ``root`` is relative to the working directory (a config's
    own ``root`` to the config file's folder); ``options`` are the preset's
    (:func:`~modalens.data.presets.get_preset`: strings are converted to their types).
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
    if is_remote(root):
        return _resolve_remote(as_location(root), preset, options)
    root = Path(resolve_root(root))  # relative to the working directory
    if not root.is_dir():
        raise DataError("dataset folder not found", str(root), "check the path")
    if preset is None and not options and (root / FOLDER_SPEC).is_file():
        return load_spec(root / FOLDER_SPEC, root=root)
    if preset is None:
        if (root / "split_IDs.csv").exists() or any(root.glob("s2_*")):
            preset = "mapinwild"
        elif any(root.glob("BigEarthNet-S1*")) or (root / "metadata.parquet").is_file():
            preset = "bigearthnet"
        else:
            preset = detect_preset(root)
        if preset is None:
            raise SpecError(
                "cannot tell the dataset layout",
                str(root),
                f"pass --config SPEC.yaml or --preset {'|'.join(sorted(PRESETS))}",
            )
        if preset == "bigearthnet" and not options:
            s2 = sorted(root.glob("BigEarthNet-S2*"))
            s1 = sorted(root.glob("BigEarthNet-S1*"))
            if s2 and s1:
                options = {"s2_folder": s2[0].name, "s1_folder": s1[0].name}
    return get_preset(preset, root, **(options or {}))


def _resolve_remote(
    root: Location, preset: str | None, options: dict[str, Any] | None
) -> DatasetSpec:
    """:func:`resolve_spec` for a URL root: its own spec file, a preset, or MapInWild's layout
    when it has ``split_IDs.csv`` (a URL cannot be listed to guess more)."""
    if preset is None and not options and (root / FOLDER_SPEC).exists():
        return load_spec(root / FOLDER_SPEC, root=root)
    if preset is None:
        if not (root / "split_IDs.csv").exists():
            raise SpecError(
                "cannot tell the dataset layout of a URL (no spec.yaml or split_IDs.csv there)",
                str(root),
                f"pass --config SPEC.yaml or --preset {'|'.join(sorted(PRESETS))}",
            )
        preset = "mapinwild"
    return get_preset(preset, root, **(options or {}))
