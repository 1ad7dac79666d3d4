"""Run configs: what a training run does, typed and validated once by :func:`load_config`.

A *run config* (YAML or dict, see ``configs/demo.yaml``) says what to train::

    name: demo
    data: {preset: mapinwild, root: /data/mapinwild}     # or a full dataset spec, or a spec path
    use: [s2, s1]            # optional modality selection (or drop: [viirs]); order is kept
    auxiliary: {targets: [esa_wc]}   # optional: modalities predicted, not seen (.auxconfig)
    model: {base_width: 64, depth: 4}
    train: {epochs: 100, batch_size: 16, lr: 1.0e-4, loss: mse, patience: 40, ...}

:func:`load_config` reads it into a :class:`RunConfig` (pydantic models with every default of
the paper's training setup, section IV-A, filled in; unknown keys are errors). ``data: PATH``
is replaced by the spec file's content, overrides (the CLI's ``--root``) are merged over the
file, relative roots are resolved (against the config file's folder; a root given on the
command line against the working directory), the task is inferred from the dataset's target
(:func:`modalens.tasks.task_for_target`) and the loss defaults to the task's. Every mistake is
a one-line :class:`~modalens.errors.SpecError` naming the dotted key (``train.lr``), the file
and a fix. ``RunConfig.to_yaml()`` is what a run folder's ``config.yaml`` holds; it reads back
into an equal config.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from torch.optim.lr_scheduler import LRScheduler

from ..data.datamodule import RunData
from ..data.presets import get_preset, preset_options
from ..data.presets.registry import option_value
from ..data.remote import refuse_credentials, resolve_root
from ..data.spec import DatasetSpec
from ..data.specfile import merge_dicts, read_yaml, spec_from_dict
from ..errors import ModalensError, SpecError
from ..fingerprint import plain
from ..models.unet import check_input_size
from ..options import validation_error
from ..progress import say
from ..tasks.registry import task_class_for_target, task_for_modality
from .auxconfig import AuxiliaryConfig
from .configvalues import (
    OPTIMIZERS,
    Bool,
    Int0,
    Int1,
    augment_options,
    batches,
    data_section,
    deterministic_mode,
    device_count,
    names,
    number,
    optimizer_name,
    optional_int,
    optional_str,
    precision_name,
    scheduler_name,
    strategy_name,
)
from .dropout import ModalityDropout

CONFIG_VERSION = 1


# ------------------------------------------------------------------------------ the models
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    """``model:`` the U-Net's size (the paper: width 64, depth 4)."""

    base_width: Int1 = 64
    depth: Int1 = 4


class SchedulerConfig(_Section):
    """``train.scheduler:`` cosine annealing with warm restarts (the paper: T_0 3) or none."""

    name: Annotated[str, BeforeValidator(scheduler_name)] = "cosine_warm_restarts"
    T_0: Int1 = 3
    T_mult: Int1 = 1
    eta_min: Annotated[float, number()] = 0.0

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
        """The learning-rate scheduler of ``optimizer`` (None for ``name: none``), stepped
        once per epoch."""
        if self.name == "none":
            return None
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=self.T_0, T_mult=self.T_mult, eta_min=self.eta_min
        )


class OptimizerConfig(_Section):
    """The optimiser: ``train.optimizer``, ``train.lr`` and ``train.weight_decay`` (the paper:
    Adam, 1e-4, no weight decay); :data:`~.configvalues.OPTIMIZERS` makes it."""

    name: Annotated[str, BeforeValidator(optimizer_name)] = "adam"
    lr: Annotated[float, number(positive=True)] = 1.0e-4
    weight_decay: Annotated[float, number()] = 0.0

    def build(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        """The optimiser of ``params``."""
        return OPTIMIZERS[self.name](list(params), lr=self.lr, weight_decay=self.weight_decay)


_OPTIMIZER = OptimizerConfig()


class TrainConfig(_Section):
    """``train:`` optimisation, data loading and hardware settings."""

    epochs: Int1 = 100
    #: the GLOBAL batch: each of W processes takes batch_size / W items of every step
    batch_size: Int1 = 16
    lr: Annotated[float, number(positive=True)] = _OPTIMIZER.lr
    #: regression: mse (paper) | mae; segmentation: ce; classification: bce | ce
    loss: Annotated[str | None, BeforeValidator(optional_str)] = None
    optimizer: Annotated[str, BeforeValidator(optimizer_name)] = _OPTIMIZER.name
    weight_decay: Annotated[float, number()] = _OPTIMIZER.weight_decay
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    patience: Int0 = 40
    precision: Annotated[str, BeforeValidator(precision_name)] = "fp32"
    channels_last: Bool = False
    seed: Int0 = 0
    num_workers: Int0 = 0
    augment: Annotated[dict[str, Any] | None, BeforeValidator(augment_options)] = None
    #: per-item modality dropout (:mod:`modalens.training.dropout`); None: off
    modality_dropout: ModalityDropout | None = None
    weighted_sampling: Bool = False
    #: None: the dataset spec's crop_size; 0: whole scenes
    crop_size: Annotated[int | None, optional_int(0)] = None
    #: val/test crops (centre); None: same as crop_size
    eval_crop_size: Annotated[int | None, optional_int(0)] = None
    limit_train_batches: Annotated[int | float | None, BeforeValidator(batches)] = None
    limit_val_batches: Annotated[int | float | None, BeforeValidator(batches)] = None
    gradient_clip_val: float | None = None
    accelerator: str = "auto"
    #: processes per node (int or "auto"); more than one trains with DDP
    devices: Annotated[int | str, BeforeValidator(device_count)] = 1
    #: auto (Lightning's choice) | ddp | ddp_spawn | ddp_notebook
    strategy: Annotated[str, BeforeValidator(strategy_name)] = "auto"
    num_nodes: Int1 = 1
    #: BatchNorm statistics over the global batch (GPUs only: torch has no CPU SyncBatchNorm)
    sync_batchnorm: Bool = False
    #: True on CPU; "warn" on GPU (bilinear backward)
    deterministic: Annotated[
        bool | Literal["auto", "warn"] | None, BeforeValidator(deterministic_mode)
    ] = "auto"
    mask_invalid_inputs: Bool = True

    def optimizer_config(self) -> OptimizerConfig:
        """The optimiser these settings describe."""
        return OptimizerConfig(name=self.optimizer, lr=self.lr, weight_decay=self.weight_decay)

    def run_data(self, spec: DatasetSpec, depth: int | None = None) -> RunData:
        """The :class:`~modalens.data.datamodule.RunData` these settings describe for ``spec``;
        with the U-Net's ``depth``, its datasets refuse items smaller than the model takes
        (:func:`~modalens.models.check_input_size`)."""
        check = None if depth is None else partial(check_input_size, depth=int(depth))
        return RunData(
            spec,
            batch_size=self.batch_size,
            crop_size=self.crop_size,
            eval_crop_size=self.eval_crop_size,
            seed=self.seed,
            num_workers=self.num_workers,
            weighted_sampling=self.weighted_sampling,
            check_size=check,
        )


class RunConfig(_Section):
    """A resolved run config (see the module docstring); build it with :func:`load_config`."""

    name: Annotated[str | None, BeforeValidator(optional_str)] = None
    #: the dataset spec mapping (a preset with its root, or a full spec)
    data: Annotated[dict[str, Any] | None, BeforeValidator(data_section)] = None
    use: Annotated[list[str] | None, BeforeValidator(names)] = None
    drop: Annotated[list[str] | None, BeforeValidator(names)] = None
    task: Annotated[str | None, BeforeValidator(optional_str)] = None
    #: modalities predicted as auxiliary tasks (:mod:`.auxconfig`); None: a single-task run
    auxiliary: AuxiliaryConfig | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain nested data (what :meth:`to_yaml` writes; no ``auxiliary``
        key for a single-task run)."""
        return plain(self.model_dump(exclude={"auxiliary"} if self.auxiliary is None else None))

    def to_yaml(self) -> str:
        """YAML text of the config (reads back with :func:`load_config`)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ------------------------------------------------------------------------------ errors
def _where(key: str, source: str | None, given: Collection[str] = ()) -> str:
    """Where a config value came from: ``key 'train.lr' in FILE``, or for a key in ``given``
    (an override: the command line) its flag, ``--devices on the command line``."""
    if any(key == g or key.startswith(f"{g}.") for g in given):
        flag = "--" + key.rsplit(".", 1)[-1].replace("_", "-")
        return f"{flag} on the command line, overriding key '{key}'"
    return f"key '{key}' in {source}" if source else f"key '{key}'"


def override_keys(overrides: Mapping[str, Any] | None) -> set[str]:
    """The dotted keys an overrides dict sets (``{"train": {"devices": 0}}`` ->
    ``{"train.devices"}``)."""
    out: set[str] = set()
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and value:
            out |= {f"{key}.{sub}" for sub in override_keys(value)}
        else:
            out.add(str(key))
    return out


def config_error(
    exc: ValidationError, source: str | None, given: Collection[str] = ()
) -> SpecError:
    """The one-line :class:`SpecError` of the first problem pydantic found.

    Args:
        exc: the validation error of :class:`RunConfig`.
        source: the config file (None for a dict config).
        given: the dotted keys set by overrides (:func:`override_keys`): their errors name
            the command-line flag instead of the file.

    Returns:
        The error: what is wrong, the dotted key and the file (or the flag), and how to fix it
        (unknown keys list the allowed ones).
    """
    return validation_error(exc, RunConfig, lambda key: _where(key, source, given))


# ------------------------------------------------------------------------------ loading
def spec_from_config(cfg: RunConfig, source: str | None = None) -> DatasetSpec:
    """The dataset spec of a resolved config (preset or inline spec) after ``use``/``drop``.

    Args:
        cfg: the run config.
        source: the config file, named in errors.

    Raises:
        SpecError: the config has no data section or its spec is invalid.
    """
    if cfg.data is None:
        raise SpecError(
            "the config has no 'data' section",
            _where("data", source),
            "add data: {preset: mapinwild, root: FOLDER} or a dataset spec",
        )
    base = Path(source).parent if source else None
    spec = spec_from_dict(cfg.data, source=source, base_dir=base)
    if cfg.auxiliary is not None:
        aux = cfg.auxiliary.names
        both = [n for n in (cfg.use or []) if n in aux]
        if both:
            raise SpecError(
                f"modality {both[0]!r} is both an input and an auxiliary target",
                _where("inputs", source),
                "remove it from inputs (use) or from auxiliary.targets",
            )
        spec = spec.with_auxiliary(aux, key="auxiliary.targets")
    if cfg.use or cfg.drop:
        spec = spec.select(use=cfg.use, drop=cfg.drop)
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
        raise SpecError(
            f"the spec file {path} must hold a mapping",
            _where("data", source),
            "see docs/data.md (dataset specs)",
        )
    spec = dict(spec)
    spec["root"] = resolve_root(str(spec.get("root") or "."), path.parent)
    return {**raw, "data": spec}


def _read_raw(config: str | Path | Mapping[str, Any] | RunConfig) -> tuple[dict, str | None]:
    if isinstance(config, RunConfig):
        return config.to_dict(), None
    if isinstance(config, (str, Path)):
        source = str(config)
        raw = read_yaml(Path(config), "config")
        if not isinstance(raw, Mapping):
            raise SpecError("a run config must be a mapping", source, "see configs/demo.yaml")
        return dict(raw), source
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config)), None
    raise SpecError(f"cannot read a config from {type(config).__name__}", None, "give a path")


def read_raw_config(
    config: str | Path | Mapping[str, Any] | RunConfig,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """A run config as plain data with absolute paths, before defaults and validation.

    ``data: PATH`` (a spec file) is inlined with its root made absolute, ``overrides`` are merged
    over the file (a root given there is relative to the working directory) and a relative
    ``data.root`` is resolved against the config file's folder (the working directory for a
    dict). :func:`load_config` validates the result; the ablation keeps it as its base config.

    Args:
        config: a YAML path, a dict, or a :class:`RunConfig`.
        overrides: a nested dict merged over the config.

    Returns:
        ``(raw config dict, the config file or None)``.

    Raises:
        SpecError: the file is missing, not YAML or not a mapping, or its spec file is.
    """
    raw, source = _read_raw(config)
    raw = _inline_spec_file(raw, source)
    if overrides:
        overrides = copy.deepcopy(dict(overrides))
        data_over = overrides.get("data")
        if isinstance(data_over, Mapping) and data_over.get("root") is not None:
            # a root given on the command line is relative to the working directory
            data_over = dict(data_over)
            data_over["root"] = resolve_root(str(data_over["root"]))
            overrides["data"] = data_over
        raw = merge_dicts(raw, overrides)
    # the data section: a relative root is relative to the config file's folder (or the
    # working directory for a dict config); the resolved config holds absolute paths
    data = raw.get("data")
    if isinstance(data, Mapping) and data.get("root") is not None:
        base = Path(source).parent if source else Path.cwd()
        raw["data"] = {**data, "root": resolve_root(str(data["root"]), base)}
    refuse_credentials(raw, source)
    return raw, source


#: where the package's run configs are (``configs/<preset>.yaml`` for ``fit --preset``)
PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: the run config of ``fit --preset NAME`` for a preset without ``configs/NAME.yaml``: the
#: paper's U-Net (depth 4) at width 16; every other key is :class:`RunConfig`'s default and
#: the task is inferred from the preset's target
PRESET_DEFAULT_CONFIG: dict[str, Any] = {"model": {"base_width": 16, "depth": 4}}


def config_for_preset(
    preset: str, root: str | Path, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The run config that trains preset ``preset`` on the data at ``root``.

    It is the package's ``configs/<preset>.yaml`` when there is one, else
    :data:`PRESET_DEFAULT_CONFIG`, with ``data: {preset, root, preset_options}`` (the file's
    preset options updated by ``options``). A ``crop_size`` option also sets the run's
    ``train.crop_size`` and ``train.eval_crop_size``.

    Args:
        preset: a registered preset (:data:`~modalens.data.presets.PRESETS`).
        root: the dataset folder or URL (a folder relative to the working directory).
        options: preset options (``--option K=V`` strings or typed values).

    Returns:
        The config as a dict (for :func:`~modalens.training.fit` or :func:`load_config`).

    Raises:
        SpecError: an unknown preset or option, or a bad option value.
    """
    allowed = preset_options(preset)  # an unknown preset is refused here
    path = PACKAGED_CONFIGS / f"{preset}.yaml"
    packaged = read_yaml(path, "config") if path.is_file() else PRESET_DEFAULT_CONFIG
    cfg: dict[str, Any] = copy.deepcopy(dict(packaged))
    data = cfg.get("data")
    own = data.get("preset_options") if isinstance(data, Mapping) else None
    opts = {**dict(own or {}), **dict(options or {})}
    root = resolve_root(root)
    spec = get_preset(preset, root, **opts)  # unknown options, bad values: refused here
    opts = {k: option_value(preset, k, v, allowed[k]) for k, v in opts.items()}
    cfg["name"] = cfg.get("name") or preset
    cfg["data"] = {"preset": preset, "root": root, "preset_options": opts}
    train = dict(cfg.get("train") or {})
    if "crop_size" in opts:
        train.update(crop_size=opts["crop_size"], eval_crop_size=opts["crop_size"])
    if train:
        cfg["train"] = _fit_target(train, spec, path.name)
    return cfg


def _fit_target(train: dict[str, Any], spec: DatasetSpec, source: str) -> dict[str, Any]:
    """``train`` without the packaged settings that the data's target cannot use (a loss of
    another task, weighted sampling by a target that is not continuous), said in one line:
    MapInWild's packaged config is the paper's naturalness regression, the release's target
    is the mask."""
    task = task_class_for_target(spec.target)
    dropped = [k for k in ("loss",) if k in train and train[k] not in task.losses]
    if train.get("weighted_sampling") and not spec.target.is_continuous:
        dropped.append("weighted_sampling")
    if dropped:
        say(
            f"{source}: {', '.join(f'train.{k}' for k in dropped)} left out: it is for another "
            f"target; this data's target is {spec.target.kind} ({task.name})"
        )
    return {k: v for k, v in train.items() if k not in dropped}


def load_config(
    config: str | Path | Mapping[str, Any] | RunConfig,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Read a run config, apply ``overrides``, fill defaults and validate (see the module
    docstring).

    Args:
        config: a YAML path, a dict, or a :class:`RunConfig` (validated again).
        overrides: a nested dict merged over the config (the CLI's ``--root`` becomes
            ``{"data": {"root": ...}}``; a root given here is relative to the working
            directory).

    Returns:
        The :class:`RunConfig`: every key present, ``data.root`` absolute, ``task`` inferred
        from the target kind, ``train.loss`` the task's default when not given and ``name``
        the dataset's when not given.

    Raises:
        SpecError: an unknown key, a bad value, a loss or task that does not fit the target,
            or an invalid dataset spec; the message names the key and the file.
    """
    raw, source = read_raw_config(config, overrides)
    given = override_keys(overrides)
    use_key = "inputs" if raw.get("inputs") is not None else "use"
    if "inputs" in raw:  # the multitask spelling of ``use``
        inputs = raw.pop("inputs")
        if raw.get("use") is not None and inputs is not None and raw["use"] != inputs:
            raise SpecError(
                "give either 'inputs' or 'use', not both", _where("inputs", source), "keep one"
            )
        raw["use"] = raw.get("use") if inputs is None else inputs
    if raw.get("use") is not None and not raw["use"]:  # [] would select every modality
        raise SpecError(
            f"'{use_key}' names no modality",
            _where(use_key, source, given),
            f"list the input modalities, e.g. {use_key}: [s2, s1], or leave '{use_key}' out "
            "to use every modality (but the auxiliary targets)",
        )
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, source, given) from None
    spec = spec_from_config(cfg, source)
    task = task_class_for_target(spec.target)
    if cfg.task not in (None, task.name):
        raise SpecError(
            f"task {cfg.task!r} does not fit the {spec.target.kind!r} target (it is {task.name!r})",
            _where("task", source),
            "remove 'task' (it is inferred) or change the dataset's target",
        )
    loss = cfg.train.loss
    loss = task.default_loss(spec.target) if loss is None else loss.lower()
    if loss not in task.losses:
        raise SpecError(
            f"loss {loss!r} is not available for {task.name}",
            _where("train.loss", source),
            f"choose from {', '.join(task.losses)}",
        )
    if cfg.auxiliary is not None:
        for m in spec.auxiliary:
            loss_k, weight = cfg.auxiliary.head_settings(m.name, m.is_categorical)
            try:
                task_for_modality(m, loss_k)
            except ModalensError as exc:
                key = f"auxiliary.targets.{m.name}.loss"
                raise SpecError(exc.what, _where(key, source), exc.fix) from None
            cfg.auxiliary.targets[m.name].loss = loss_k
            cfg.auxiliary.targets[m.name].weight = weight
    cfg.task = task.name
    cfg.name = cfg.name or spec.name
    cfg.train.loss = loss
    return cfg
