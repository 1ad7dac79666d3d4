"""TODO docstring: training/config.py"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..data.augment import Augmentation
from ..data.spec import DatasetSpec
from ..data.specfile import merge_dicts, read_yaml, spec_from_dict
from ..errors import ModalensError, SpecError
from ..precision import parse_precision

CONFIG_VERSION = 1


TASK_OF_TARGET = {
    "continuous": "regression",
    "classes": "segmentation",
    "scene_labels": "classification",
}


LOSSES = {
    "regression": ("mse", "mae"),
    "segmentation": ("ce",),
    "classification": ("bce", "ce"),
}


OPTIMIZERS = ("adam", "adamw", "sgd")


SCHEDULERS = ("cosine_warm_restarts", "none")




#: Defaults of a run config (the paper's training setup, section IV-A).
DEFAULT_CONFIG: dict[str, Any] = {
    "name": None,
    "data": None,
    "use": None,
    "drop": None,
    "task": None,
    "model": {"base_width": 64, "depth": 4},
    "train": {
        "epochs": 100,
        "batch_size": 16,
        "lr": 1.0e-4,
        "loss": None,  # regression: mse (paper) | mae; segmentation: ce; classification: bce | ce
        "optimizer": "adam",
        "weight_decay": 0.0,
        "scheduler": {"name": "cosine_warm_restarts", "T_0": 3, "T_mult": 1, "eta_min": 0.0},
        "patience": 40,
        "precision": "fp32",
        "channels_last": False,
        "seed": 0,
        "num_workers": 0,
        "augment": None,
        "weighted_sampling": False,
        "crop_size": None,  # None: the dataset spec's crop_size; 0: whole scenes
        "eval_crop_size": None,  # val/test crops (centre); None: same as crop_size
        "limit_train_batches": None,
        "limit_val_batches": None,
        "gradient_clip_val": None,
        "accelerator": "auto",
        "devices": 1,
        "deterministic": "auto",  # True on CPU; "warn" on GPU (bilinear backward)
        "mask_invalid_inputs": True,
    },
}


#: keys that may change when a run is resumed (everything else must match the saved config)
RESUMABLE_KEYS = {
    "train.epochs",
    "train.num_workers",
    "train.patience",
    "train.limit_val_batches",
    "train.accelerator",
    "train.devices",
    "data.root",
}


_FREE_FORM = {"data", "train.augment"}  # validated elsewhere (dataset spec, Augmentation)


def _config_error(what: str, key: str, source: str | None, fix: str) -> SpecError:
    where = f"key '{key}' in {source}" if source else f"key '{key}'"
    return SpecError(what, where, fix)


def _check_config_keys(
    cfg: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str, source: str | None
) -> None:
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            raise _config_error(
                f"unknown config key {path!r}", path, source, f"allowed keys here: {allowed}"
            )
        if path in _FREE_FORM:
            continue
        if isinstance(defaults[key], Mapping):
            if not isinstance(value, Mapping):
                raise _config_error(
                    f"config key {path!r} must be a mapping", path, source, "see configs/demo.yaml"
                )
            _check_config_keys(value, defaults[key], f"{path}.", source)


def _as_int(value: Any, key: str, source: str | None, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise _config_error(f"{key} must be an integer, got {value!r}", key, source, "fix it")
    if int(value) < minimum:
        raise _config_error(f"{key} must be >= {minimum}, got {value}", key, source, "fix it")
    return int(value)


def _as_float(value: Any, key: str, source: str | None, positive: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _config_error(
            f"{key} must be a number, got {value!r}", key, source, "fix it"
        ) from None
    if positive and not out > 0:
        raise _config_error(f"{key} must be > 0, got {value}", key, source, "fix it")
    return out


def spec_from_config(cfg: Mapping[str, Any], source: str | None = None) -> DatasetSpec:
    """The dataset spec of a resolved config (preset or inline spec) after use/drop."""
    data = cfg.get("data")
    if data is None:
        raise _config_error(
            "the config has no 'data' section",
            "data",
            source,
            "add data: {preset: mapinwild, root: FOLDER} or a dataset spec",
        )
    base = Path(source).parent if source else None
    if isinstance(data, Mapping):  # a spec file path was inlined by load_config
        spec = spec_from_dict(data, source=source, base_dir=base)
    else:
        raise _config_error(
            "'data' must be a dataset spec mapping or the path of a spec YAML",
            "data",
            source,
            "see configs/demo.yaml",
        )
    if cfg.get("use") or cfg.get("drop"):
        spec = spec.select(use=cfg.get("use"), drop=cfg.get("drop"))
    return spec


def _inline_spec_file(raw: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Replace ``data: PATH`` by the spec file's content (root made absolute), so overrides such
    as ``--root`` merge into it and the saved run config does not depend on that file."""
    data = raw.get("data")
    if not isinstance(data, (str, Path)):
        return raw
    base = Path(source).parent if source else Path.cwd()
    path = Path(data).expanduser()
    path = path if path.is_absolute() else base / path
    spec = read_yaml(path, "spec")
    if isinstance(spec, Mapping) and "data" in spec and "modalities" not in spec:
        spec = spec["data"]
    if not isinstance(spec, Mapping):
        raise _config_error(
            f"the spec file {path} must hold a mapping", "data", source, "see the README"
        )
    spec = dict(spec)
    root = Path(str(spec.get("root") or ".")).expanduser()
    spec["root"] = str(root if root.is_absolute() else (path.parent / root).resolve())
    return {**raw, "data": spec}


def load_config(
    config: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Read a run config (YAML path or dict), apply ``overrides``, fill defaults and validate.

    ``overrides`` is a nested dict merged over the file (the CLI's ``--root`` becomes
    ``{"data": {"root": ...}}``). Unknown keys, bad values and an invalid dataset spec raise a
    :class:`~modalens.errors.SpecError` naming the key and the file. A relative ``data.root``
    is resolved against the config file's folder. The result is a plain dict with every key
    present, ``task`` inferred from the target kind and ``name`` defaulting to the dataset's.
    """
    source: str | None = None
    if isinstance(config, (str, Path)):
        path = Path(config)
        source = str(path)
        raw = read_yaml(path, "config")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SpecError("a run config must be a mapping", source, "see configs/demo.yaml")
    elif isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
    else:
        raise SpecError(f"cannot read a config from {type(config).__name__}", None, "give a path")
    raw = _inline_spec_file(raw, source)
    if overrides:
        overrides = copy.deepcopy(dict(overrides))
        data_over = overrides.get("data")
        if isinstance(data_over, Mapping) and data_over.get("root") is not None:
            # a root given on the command line is relative to the working directory
            data_over = dict(data_over)
            data_over["root"] = str(Path(str(data_over["root"])).expanduser().resolve())
            overrides["data"] = data_over
        raw = merge_dicts(raw, overrides)
    _check_config_keys(raw, DEFAULT_CONFIG, "", source)
    cfg = merge_dicts(DEFAULT_CONFIG, raw)
    # the data section: a relative root is relative to the config file's folder (or the
    # working directory for a dict config); the resolved config holds absolute paths
    base = Path(source).parent if source else Path.cwd()
    data = cfg["data"]
    if isinstance(data, Mapping) and data.get("root") is not None:
        root = Path(str(data["root"])).expanduser()
        data = dict(data)
        data["root"] = str(root if root.is_absolute() else (base / root).resolve())
        cfg["data"] = data
    spec = spec_from_config(cfg, source)
    for key in ("use", "drop"):
        if isinstance(cfg[key], str):
            cfg[key] = [cfg[key]]
    task = TASK_OF_TARGET[spec.target.kind]
    if cfg["task"] is not None and cfg["task"] != task:
        raise _config_error(
            f"task {cfg['task']!r} does not fit the {spec.target.kind!r} target (it is {task!r})",
            "task",
            source,
            "remove 'task' (it is inferred) or change the dataset's target",
        )
    cfg["task"] = task
    cfg["name"] = str(cfg["name"] or spec.name)
    m, t = cfg["model"], cfg["train"]
    m["base_width"] = _as_int(m["base_width"], "model.base_width", source, 1)
    m["depth"] = _as_int(m["depth"], "model.depth", source, 1)
    t["epochs"] = _as_int(t["epochs"], "train.epochs", source, 1)
    t["batch_size"] = _as_int(t["batch_size"], "train.batch_size", source, 1)
    t["lr"] = _as_float(t["lr"], "train.lr", source, positive=True)
    t["weight_decay"] = _as_float(t["weight_decay"], "train.weight_decay", source)
    t["patience"] = _as_int(t["patience"], "train.patience", source, 0)
    t["seed"] = _as_int(t["seed"], "train.seed", source, 0)
    t["num_workers"] = _as_int(t["num_workers"], "train.num_workers", source, 0)
    for key in ("crop_size", "eval_crop_size"):
        if t[key] is not None:
            t[key] = _as_int(t[key], f"train.{key}", source, 0)
    loss = t["loss"]
    if loss is None:
        if task == "classification":
            loss = "bce" if spec.target.multilabel else "ce"
        else:
            loss = LOSSES[task][0]
    loss = str(loss).lower()
    if loss not in LOSSES[task]:
        raise _config_error(
            f"loss {loss!r} is not available for {task}",
            "train.loss",
            source,
            f"choose from {', '.join(LOSSES[task])}",
        )
    t["loss"] = loss
    t["optimizer"] = str(t["optimizer"]).lower()
    if t["optimizer"] not in OPTIMIZERS:
        raise _config_error(
            f"unknown optimizer {t['optimizer']!r}",
            "train.optimizer",
            source,
            f"choose from {', '.join(OPTIMIZERS)}",
        )
    sched = t["scheduler"]
    if sched["name"] is None or str(sched["name"]).lower() in ("none", "null"):
        sched["name"] = "none"
    if sched["name"] not in SCHEDULERS:
        raise _config_error(
            f"unknown scheduler {sched['name']!r}",
            "train.scheduler.name",
            source,
            f"choose from {', '.join(SCHEDULERS)}",
        )
    sched["T_0"] = _as_int(sched["T_0"], "train.scheduler.T_0", source, 1)
    sched["T_mult"] = _as_int(sched["T_mult"], "train.scheduler.T_mult", source, 1)
    sched["eta_min"] = _as_float(sched["eta_min"], "train.scheduler.eta_min", source)
    where = f"key 'train.precision' in {source}" if source else "train.precision"
    t["precision"] = parse_precision(t["precision"], where)
    for key in ("limit_train_batches", "limit_val_batches"):
        v = t[key]
        if v is not None and not (
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        ):
            raise _config_error(
                f"train.{key} must be a positive number of batches (or a fraction)",
                f"train.{key}",
                source,
                "e.g. 50 or 0.25",
            )
    if t["augment"] is not None and not isinstance(t["augment"], Mapping):
        raise _config_error(
            "train.augment must be a mapping of augmentation options",
            "train.augment",
            source,
            "e.g. augment: {hflip: 0.5, vflip: 0.5}",
        )
    if t["augment"] is not None:

        where = f"key 'train.augment' in {source or 'config'}"
        try:
            # run it once on a dummy batch: kornia checks some options only when applied
            Augmentation(dict(t["augment"]))(torch.zeros(1, 2, 32, 32), seed=0)
        except ModalensError as exc:
            raise SpecError(str(exc), where) from None
        except Exception as exc:  # noqa: BLE001 - kornia's own validation errors
            raise SpecError(
                f"invalid augmentation option: {exc}", where, "see modalens.augment for options"
            ) from None
    if str(t["devices"]) != "1":
        raise _config_error(
            f"train.devices must be 1, got {t['devices']!r} (multi-device training is not "
            "supported: the seeded epoch sampler is not distributed)",
            "train.devices",
            source,
            "use devices: 1",
        )
    for key in ("channels_last", "weighted_sampling", "mask_invalid_inputs"):
        if not isinstance(t[key], bool):
            raise _config_error(f"train.{key} must be true or false", f"train.{key}", source, "")
    return cfg


def config_to_yaml(cfg: Mapping[str, Any]) -> str:
    """YAML text of a resolved config (reads back with :func:`load_config`)."""
    return yaml.safe_dump(_plain(cfg), sort_keys=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in ("train.augment",):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out
