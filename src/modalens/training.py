"""Training, evaluation and whole-scene prediction of the paper's U-Net.

A *run config* (YAML or dict, see ``configs/demo.yaml``) says what to train::

    name: demo
    data: {preset: mapinwild, root: /data/mapinwild}     # or a full dataset spec, or a spec path
    use: [s2, s1]            # optional modality selection (or drop: [viirs]); order is kept
    model: {base_width: 64, depth: 4}
    train: {epochs: 100, batch_size: 16, lr: 1.0e-4, loss: mse, patience: 40, ...}

The task follows the dataset's target kind: ``continuous`` -> pixelwise ``regression`` (MSE or
MAE; metrics MAE, RMSE), ``classes`` -> ``segmentation`` (cross-entropy, ignore -1; IoU, F1,
accuracy), ``scene_labels`` -> scene ``classification`` (BCE-with-logits multi-label or CE
single-label; mAP, F1). Invalid pixels (``valid`` False: target no-data or any input no-data)
never reach the loss or a metric, and the model input is zeroed there, so their values cannot
change anything; a batch without valid pixels adds zero loss.

:func:`fit` writes a *run folder*::

    config.yaml      resolved run config (defaults filled in)
    dataset.yaml     the dataset spec after modality selection
    stats.json       train-split normalisation statistics (reused by every later step)
    checkpoints/best.ckpt, checkpoints/last.ckpt
    metrics.csv      one row per epoch: train/val loss and metrics, learning rate

``fit(..., resume=True)`` continues from ``last.ckpt``; on CPU with the same seed the result is
the same as an uninterrupted run (per-epoch crops, sampling order and augmentations are seeded
by ``(seed, epoch, index)``; Lightning restores weights, optimiser, scheduler, early stopping
and checkpoint state). Checkpoints carry the modality layout, statistics, task and model
hyper-parameters; loading one against data with other modalities or another channel order
raises a :class:`~modalens.errors.ModelError` naming the difference.

:func:`load_run` gives a :class:`Run` (model in eval mode, spec with statistics), :func:`test`
writes ``metrics_<split>.csv`` and :func:`predict` writes one GeoTIFF per scene by sliding
window (:func:`modalens.inference.sliding_window`).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import yaml
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import DataError, ModalensError, ModelError, SpecError
from .io import atomic_path, atomic_write_json, atomic_write_text
from .modalities import DatasetSpec, load_spec, merge_dicts, read_yaml, spec_to_yaml
from .models import UNet

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
PRECISIONS = {
    "32": "32-true",
    "32-true": "32-true",
    "fp32": "32-true",
    "bf16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
    "16": "16-mixed",
    "16-mixed": "16-mixed",
    "fp16": "16-mixed",
}

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
        "precision": "32",
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

log = logging.getLogger(__name__)


# =============================================================================== config
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


def _spec_from_config(cfg: Mapping[str, Any], source: str | None = None) -> DatasetSpec:
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
        spec = DatasetSpec.from_dict(data, source=source, base_dir=base)
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
    spec = _spec_from_config(cfg, source)
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
    prec = str(t["precision"]).lower()
    if prec not in PRECISIONS:
        raise _config_error(
            f"unknown precision {t['precision']!r}",
            "train.precision",
            source,
            "use 32 or bf16-mixed (16-mixed on GPU)",
        )
    t["precision"] = PRECISIONS[prec]
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
        from .augment import Augmentation

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


# =============================================================================== layout checks
def layout_difference(
    expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]]
) -> str | None:
    """A short description of how two modality layouts differ (None when they are equal)."""
    exp_names = [m["name"] for m in expected]
    got_names = [m["name"] for m in got]
    if exp_names != got_names:
        return (
            f"checkpoint expects modalities {','.join(exp_names)} but data has "
            f"{','.join(got_names)}"
        )
    for e, g in zip(expected, got, strict=True):
        if list(e["channels"]) != list(g["channels"]):
            return (
                f"checkpoint expects channels {','.join(e['channels'])} for modality "
                f"{e['name']!r} but data has {','.join(g['channels'])}"
            )
        if e.get("normalization") != g.get("normalization"):
            return (
                f"checkpoint expects {e.get('normalization')} normalisation for modality "
                f"{e['name']!r} but data has {g.get('normalization')}"
            )
    return None


def check_layout(
    expected: Sequence[Mapping[str, Any]], spec: DatasetSpec, where: str | None = None
) -> None:
    """Raise a ModelError when ``spec``'s modality layout differs from a checkpoint's."""
    diff = layout_difference(expected, spec.layout())
    if diff:
        raise ModelError(
            diff,
            where,
            "use data with the modalities (use/drop) and channel order the model was trained on",
        )


# =============================================================================== losses
def _valid_pixels(valid: Tensor | None, like: Tensor) -> Tensor:
    if valid is None:
        return torch.ones(like.shape[0], *like.shape[-2:], dtype=torch.bool, device=like.device)
    return valid.to(torch.bool)


def masked_regression_loss(
    pred: Tensor, target: Tensor, valid: Tensor, kind: str = "mse"
) -> tuple[Tensor, Tensor]:
    """Mean squared (or absolute) error over valid pixels and the valid pixel count.

    ``pred``/``target`` ``[B,K,H,W]``, ``valid`` ``[B,H,W]``. Values at invalid pixels (even
    NaN) contribute neither to the loss nor to its gradient; no valid pixel gives 0.
    """
    mask = valid[:, None].expand_as(pred)
    t = torch.where(
        mask, target.to(pred.dtype), torch.zeros((), dtype=pred.dtype, device=pred.device)
    )
    err = pred - t
    per = err * err if kind == "mse" else err.abs()
    per = torch.where(mask, per, torch.zeros((), dtype=per.dtype, device=per.device))
    n = mask.sum()
    return per.sum() / n.clamp_min(1), n


def masked_cross_entropy(logits: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Pixelwise cross-entropy over valid pixels (``ignore_index=-1``) and the pixel count."""
    t = torch.where(valid, target.long(), torch.full_like(target.long(), -1))
    n = (t >= 0).sum()
    loss = F.cross_entropy(logits, t, ignore_index=-1, reduction="sum")
    return loss / n.clamp_min(1), n


# =============================================================================== module
def _make_metrics(task: str, n_out: int, multilabel: bool, prefix: str | None = None) -> Any:
    coll = _metric_dict(task, n_out, multilabel)
    from torchmetrics import MetricCollection

    return MetricCollection(coll, prefix=prefix)


def _metric_dict(task: str, n_out: int, multilabel: bool) -> dict[str, Any]:
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassAveragePrecision,
        MulticlassF1Score,
        MulticlassJaccardIndex,
        MultilabelAveragePrecision,
        MultilabelF1Score,
    )
    from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

    if task == "regression":
        return {"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)}
    if task == "segmentation":
        return {
            "iou": MulticlassJaccardIndex(n_out, average="macro", ignore_index=-1),
            "f1": MulticlassF1Score(n_out, average="macro", ignore_index=-1),
            "accuracy": MulticlassAccuracy(n_out, average="micro", ignore_index=-1),
        }
    if multilabel:
        return {
            "map": MultilabelAveragePrecision(n_out, average="macro"),
            "map_micro": MultilabelAveragePrecision(n_out, average="micro"),
            "f1": MultilabelF1Score(n_out, average="macro"),
        }
    return {
        "map": MulticlassAveragePrecision(n_out, average="macro"),
        "f1": MulticlassF1Score(n_out, average="macro"),
        "accuracy": MulticlassAccuracy(n_out, average="micro"),
    }


class TaskModule(pl.LightningModule):
    """Lightning module of one task on top of :class:`~modalens.models.UNet`.

    Every argument is saved in the checkpoint's hyper-parameters; ``meta`` holds what a later
    step needs to use the model on data: modality ``layout``, ``stats`` (normalisation
    statistics), ``spec`` (the dataset spec dict), ``classes`` and ``target_scale``.

    Batches are dicts with ``image`` [B,C,H,W], ``target`` and ``valid`` [B,H,W] (see
    :class:`modalens.data.MultimodalDataset`).
    """

    def __init__(
        self,
        task: str = "regression",
        in_channels: int = 14,
        out_channels: int = 1,
        base_width: int = 64,
        depth: int = 4,
        loss: str | None = None,
        lr: float = 1e-4,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        scheduler: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        mask_invalid_inputs: bool = True,
        seed: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if loss is None:
            loss = {"regression": "mse", "segmentation": "ce", "classification": "bce"}[task]
        if loss not in LOSSES.get(task, ()):
            raise ModelError(f"loss {loss!r} is not available for task {task!r}", "train.loss")
        self.save_hyperparameters()
        self.task = task
        self.loss_name = loss
        self.multilabel = task == "classification" and loss == "bce"
        self.model = UNet(in_channels, out_channels, base_width, depth, task)
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.meta = dict(meta or {})
        from torchmetrics import MeanMetric

        # (ModuleDict keys cannot be "train": it is a Module method)
        self.train_metrics = _make_metrics(task, out_channels, self.multilabel, "train_")
        self.val_metrics = _make_metrics(task, out_channels, self.multilabel, "val_")
        self.train_loss_mean = MeanMetric()
        self.val_loss_mean = MeanMetric()

    # ---------------------------------------------------------------- forward
    def prepare_input(self, image: Tensor, valid: Tensor | None = None) -> Tensor:
        """Zero the input at invalid pixels (when configured) and set the memory format."""
        x = image.float()
        if valid is not None and self.hparams.mask_invalid_inputs:
            x = torch.where(
                valid[:, None].to(torch.bool), x, torch.zeros((), dtype=x.dtype, device=x.device)
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def predict_batch(self, batch: Mapping[str, Any]) -> Tensor:
        """The model's float output for a batch (inputs masked as in training)."""
        image = batch["image"]
        return self(self.prepare_input(image, _valid_pixels(batch.get("valid"), image))).float()

    def compute(self, batch: Mapping[str, Any], output: Tensor | None = None) -> dict[str, Tensor]:
        """Loss and metric inputs of a batch: ``loss``, ``n`` (valid units), ``preds``,
        ``targets`` (flattened over valid pixels or samples) and the raw ``output``
        (``output`` given: scores it instead of running the model)."""
        image, target = batch["image"], batch["target"]
        valid = _valid_pixels(batch.get("valid"), image)
        out = self.predict_batch(batch) if output is None else output
        if self.task == "regression":
            loss, n = masked_regression_loss(out, target.float(), valid, self.loss_name)
            mask = valid[:, None].expand_as(out)
            preds, targets = out[mask].detach(), target.float()[mask]
        elif self.task == "segmentation":
            loss, n = masked_cross_entropy(out, target, valid)
            mask = valid & (target >= 0)
            preds = out.detach().argmax(1)[mask]
            targets = target.long()[mask]
        else:
            keep = valid.flatten(1).any(1)  # samples with at least one valid input pixel
            n = keep.sum()
            if self.multilabel:
                per = F.binary_cross_entropy_with_logits(out, target.float(), reduction="none")
                per = per.mean(1)
            else:
                per = F.cross_entropy(out, target.float().argmax(1), reduction="none")
            per = torch.where(keep, per, torch.zeros((), dtype=per.dtype, device=per.device))
            loss = per.sum() / n.clamp_min(1)
            probs = torch.sigmoid(out) if self.multilabel else torch.softmax(out, 1)
            preds = probs.detach()[keep]
            targets = target[keep].long() if self.multilabel else target[keep].argmax(1)
        return {"loss": loss, "n": n, "preds": preds, "targets": targets, "output": out}

    # ---------------------------------------------------------------- steps
    def _step(self, batch: Mapping[str, Any], stage: str) -> Tensor:
        res = self.compute(batch)
        loss, n = res["loss"], res["n"]
        bs = int(batch["image"].shape[0])
        # epoch loss = mean over valid pixels (samples for classification), not over batches
        getattr(self, f"{stage}_loss_mean").update(loss.detach(), weight=n.clamp_min(1e-12).float())
        self.log(
            f"{stage}_loss",
            getattr(self, f"{stage}_loss_mean"),
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=bs,
        )
        if res["preds"].shape[0] > 0:
            coll = getattr(self, f"{stage}_metrics")
            coll.update(res["preds"], res["targets"])
            # the collection is computed and reset by Lightning at the epoch end
            self.log_dict(coll, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # reseed the global RNGs from (seed, epoch, batch): resuming gives the same draws
        torch.manual_seed(_derive_seed(self.hparams.seed, self.current_epoch, batch_idx))

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = self.model.parameters()
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
        else:
            raise ModelError(f"unknown optimizer {hp.optimizer!r}", "train.optimizer")
        sched = dict(hp.scheduler or {"name": "none"})
        if sched.get("name", "none") == "none":
            return opt
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt,
            T_0=int(sched.get("T_0", 3)),
            T_mult=int(sched.get("T_mult", 1)),
            eta_min=float(sched.get("eta_min", 0.0)),
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["modalens"] = {
            "version": CONFIG_VERSION,
            "task": self.task,
            "layout": self.meta.get("layout"),
            "model": {
                "in_channels": self.hparams.in_channels,
                "out_channels": self.hparams.out_channels,
                "base_width": self.hparams.base_width,
                "depth": self.hparams.depth,
            },
        }


def _derive_seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


# =============================================================================== data plumbing
class EpochSampler(Sampler):
    """Yields ``(epoch, draw, index)``: a seeded shuffle (or weighted draw) per epoch, ``draw``
    counting earlier draws of the same index in the epoch.

    Lightning calls :meth:`set_epoch` before every epoch; the order depends only on
    ``(seed, epoch)``, so a resumed run draws the same samples as an uninterrupted one, and
    the epoch travels with the index into DataLoader workers (see :class:`EpochDataset`).
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        shuffle: bool = True,
        weights: Tensor | None = None,
        num_samples: int | None = None,
    ) -> None:
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.weights = weights
        self.num_samples = num_samples or n
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples if self.weights is not None else self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        gen = torch.Generator()
        gen.manual_seed(_derive_seed(self.seed, self.epoch, 0x5A3))
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.num_samples, True, generator=gen)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        seen: dict[int, int] = {}
        for i in order.tolist():
            draw = seen.get(i, 0)  # repeated draws of an item get their own crop
            seen[i] = draw + 1
            yield (self.epoch, draw, int(i))


class EpochDataset(Dataset):
    """Wraps a dataset with ``set_epoch`` so that items are indexed by ``(epoch, draw, index)``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int] | int) -> Any:
        if isinstance(key, tuple):
            epoch, draw, index = key
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch, draw)
            return self.dataset[index]
        return self.dataset[key]


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep ids and windows as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(vals))
        else:
            out[key] = vals
    return out


def _loader(
    dataset: Any, batch_size: int, sampler: Sampler | None, num_workers: int, seed: int
) -> DataLoader:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=gen,
        drop_last=False,
    )


# =============================================================================== callbacks
class EpochCSV(pl.Callback):
    """Writes ``metrics.csv`` (one row per finished epoch) atomically after every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self._lr: float | None = None
        self._started: set[int] = set()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.rows = []
        self._started = set()
        if self.path.exists():
            import pandas as pd

            try:
                self.rows = pd.read_csv(self.path).to_dict(orient="records")
            except Exception:  # noqa: BLE001 - an unreadable old table is rewritten
                self.rows = []
        self._t0 = time.perf_counter()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.perf_counter()
        self._started.add(trainer.current_epoch)
        opt = trainer.optimizers[0] if trainer.optimizers else None
        self._lr = float(opt.param_groups[0]["lr"]) if opt is not None else None

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or epoch not in self._started:
            return  # a resumed run replaying the end of an epoch it did not train here
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        if self._lr is not None:
            row["lr"] = self._lr  # the rate used during this epoch
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "_" in k}
        for k in sorted(metrics, key=lambda k: (not k.startswith("train"), k)):
            row[k] = metrics[k]
        row["seconds"] = round(time.perf_counter() - self._t0, 3)
        # rows of later epochs are left-overs of an interrupted run past its last checkpoint
        self.rows = [r for r in self.rows if int(r["epoch"]) < epoch] + [row]
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(r)
        atomic_write_text(self.path, buf.getvalue())


def _atomic_checkpoint_io() -> Any:
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Checkpoints are written to a temporary file and moved into place."""

        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
        ) -> None:
            with atomic_path(Path(path), suffix=".tmp.ckpt") as tmp:
                torch.save(checkpoint, tmp)

    return AtomicCheckpointIO()


# =============================================================================== fit
def _device_is_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def _quiet_lightning(progress: bool) -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.INFO if progress else logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*LeafSpec.*",
        ".*The number of training batches.*",
        ".*Checkpoint directory.*exists and is not empty.*",
        ".*No positive samples found in target.*",
        ".*treespec.*",
        ".*You're resuming from a checkpoint that ended before the epoch ended.*",
        ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _saved_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise ModelError(
            "not a run folder (no config.yaml)", str(run_dir), "give the folder fit wrote"
        )
    return load_config(path)


def _check_resume_config(saved: Mapping[str, Any], new: Mapping[str, Any], run_dir: Path) -> None:
    a, b = _flatten(_plain(saved)), _flatten(_plain(new))
    for key in sorted(set(a) | set(b)):
        if key in RESUMABLE_KEYS or key.startswith("data.root"):
            continue
        if a.get(key) != b.get(key):
            raise SpecError(
                f"cannot resume: config key {key!r} is {b.get(key)!r} but the run was started "
                f"with {a.get(key)!r}",
                str(run_dir / "config.yaml"),
                "resume with the run's own config or start a new run with another --out",
            )


def _read_stats(
    spec: DatasetSpec, cache: Path, progress: bool = True
) -> tuple[DatasetSpec, dict[str, Any]]:
    from . import stats as stats_mod

    statistics = stats_mod.load_or_compute(spec, cache, progress=progress)
    spec = stats_mod.apply_statistics(spec, statistics)
    try:
        stats_dict = json.loads(cache.read_text()) if cache.exists() else {}
    except json.JSONDecodeError:
        stats_dict = {}
    return spec, stats_dict


def _dataset(spec: DatasetSpec, split: str, cfg: Mapping[str, Any], train: bool) -> Any:
    from .data import MultimodalDataset

    t = cfg["train"]
    crop = (
        t["crop_size"]
        if train
        else (t["eval_crop_size"] if t["eval_crop_size"] is not None else t["crop_size"])
    )
    return MultimodalDataset(
        spec,
        split=split,
        crop_size=crop,
        random_crop=train,
        augment=dict(t["augment"]) if (train and t["augment"]) else None,
        seed=t["seed"],
    )


def build_module(
    cfg: Mapping[str, Any], spec: DatasetSpec, stats: Mapping[str, Any] | None = None
) -> TaskModule:
    """The :class:`TaskModule` a resolved config describes for ``spec``."""
    t, m = cfg["train"], cfg["model"]
    meta = {
        "layout": _plain(spec.layout()),
        "spec": _plain(spec.to_dict()),
        "stats": _plain(stats or {}),
        "classes": _plain(list(spec.target.classes)) if spec.target.classes else None,
        "target_scale": float(spec.target.scale),
        "target_kind": spec.target.kind,
        "name": cfg.get("name"),
    }
    return TaskModule(
        task=cfg["task"],
        in_channels=spec.n_channels,
        out_channels=spec.target.n_outputs,
        base_width=m["base_width"],
        depth=m["depth"],
        loss=t["loss"],
        lr=t["lr"],
        optimizer=t["optimizer"],
        weight_decay=t["weight_decay"],
        scheduler=dict(t["scheduler"]),
        channels_last=t["channels_last"],
        mask_invalid_inputs=t["mask_invalid_inputs"],
        seed=t["seed"],
        meta=meta,
    )


def _resume_finished(last: Path, spec: DatasetSpec, epochs: int) -> bool:
    """Check a checkpoint before resuming: same layout, not past ``epochs``; True when the run
    has nothing left to do (all epochs trained or stopped early)."""
    ckpt = _read_checkpoint(last)
    meta = (ckpt.get("hyper_parameters") or {}).get("meta") or {}
    check_layout(meta.get("layout") or [], spec, str(last))
    done = int(ckpt.get("epoch", -1)) + 1
    stopped = any(
        k.startswith("EarlyStopping") and int(v.get("stopped_epoch", 0) or 0) > 0
        for k, v in (ckpt.get("callbacks") or {}).items()
        if isinstance(v, Mapping)
    )
    if done > epochs:
        raise ModelError(
            f"the run has already trained {done} epochs, more than train.epochs={epochs}",
            str(last),
            f"set train.epochs to {done} or more to continue it",
        )
    return done == epochs or stopped


def fit(
    config: str | Path | Mapping[str, Any],
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train a model as ``config`` says and return the run folder (see the module docstring).

    Args:
        config: run config path or dict (:func:`load_config`).
        out: run folder; default ``runs/<name>``. Without ``resume`` it must not exist or be
            empty.
        resume: continue the run in ``out`` from ``checkpoints/last.ckpt`` (only keys in
            :data:`RESUMABLE_KEYS`, e.g. ``train.epochs``, may differ from the saved config).
        progress: show Lightning's progress bar.
        overrides: nested dict merged over the config (e.g. ``{"data": {"root": ...}}``).
    """
    cfg = load_config(config, overrides)
    run_dir = Path(out) if out is not None else Path("runs") / cfg["name"]
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume:
        if not last.exists() and not (run_dir / "config.yaml").exists():
            raise ModelError(
                "nothing to resume: no checkpoints/last.ckpt",
                str(run_dir),
                "run without --resume to start this run",
            )
        _check_resume_config(_saved_config(run_dir), cfg, run_dir)
        # interrupted before the first epoch ended: start again in the same folder
        resume = last.exists()
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ModelError(
            "the run folder already exists and is not empty",
            str(run_dir),
            "pass --resume to continue it or --out to start a new run elsewhere",
        )
    spec = _spec_from_config(cfg)
    if not Path(spec.root).exists():
        raise DataError(
            "dataset root not found",
            str(spec.root),
            "set data.root in the config or pass --root",
        )
    t = cfg["train"]
    if resume and _resume_finished(last, spec, t["epochs"]):
        log.info("run %s has already finished", run_dir)
        return run_dir
    _quiet_lightning(progress)
    pl.seed_everything(t["seed"], workers=True, verbose=False)

    from .data import make_weighted_sampler, sample_ids

    splits = sample_ids(spec)
    for split in ("train", "val"):
        if not splits.get(split):
            raise DataError(f"the {split} split is empty", str(spec.root), "check the split file")
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
    spec, stats_dict = _read_stats(spec, run_dir / "stats.json", progress)
    atomic_write_text(run_dir / "dataset.yaml", spec_to_yaml(spec))

    train_ds = _dataset(spec, "train", cfg, train=True)
    val_ds = _dataset(spec, "val", cfg, train=False)
    weights = None
    if t["weighted_sampling"]:
        weights = make_weighted_sampler(train_ds, seed=t["seed"]).weights
    sampler = EpochSampler(len(train_ds), seed=t["seed"], shuffle=True, weights=weights)
    train_dl = _loader(
        EpochDataset(train_ds), t["batch_size"], sampler, t["num_workers"], t["seed"]
    )
    val_dl = _loader(val_ds, t["batch_size"], None, t["num_workers"], t["seed"])

    module = build_module(cfg, spec, stats_dict)

    gpu = _device_is_gpu(str(t["accelerator"]))
    deterministic = t["deterministic"]
    if deterministic == "auto":
        deterministic = "warn" if gpu else True
    callbacks = [
        pl.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=t["patience"]),
        # best.ckpt: lowest val_loss; last.ckpt: every epoch (Lightning >= 2.6 writes
        # save_last only when a top-k checkpoint was written, so it is a callback of its own,
        # placed last so that it stores the updated best/early-stopping state)
        pl.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        pl.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="last",
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        EpochCSV(run_dir / "metrics.csv"),
    ]
    trainer = pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=t["epochs"],
        accelerator=t["accelerator"],
        devices=t["devices"],
        precision=t["precision"],
        deterministic=deterministic,
        benchmark=False,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=t["limit_train_batches"],
        limit_val_batches=t["limit_val_batches"],
        gradient_clip_val=t["gradient_clip_val"],
        use_distributed_sampler=False,
        log_every_n_steps=1,
        plugins=[_atomic_checkpoint_io()],
    )
    try:
        trainer.fit(module, train_dl, val_dl, ckpt_path=str(last) if resume else None)
    except SystemExit:
        # Lightning turns Ctrl+C into sys.exit(1) and leaves SIGINT ignored: give the caller a
        # KeyboardInterrupt (finished epochs are in last.ckpt; rerun with --resume)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    if not (ckpt_dir / "best.ckpt").exists() and last.exists():
        # e.g. val_loss was NaN every epoch: keep the last weights as the best ones
        import shutil

        with atomic_path(ckpt_dir / "best.ckpt") as tmp:
            shutil.copyfile(last, tmp)
    return run_dir


# =============================================================================== runs
def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not Path(path).exists():
        raise ModelError("checkpoint not found", str(path), "train the run first (modalens fit)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - fall through to a full load of our own file
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"cannot read checkpoint ({' '.join(str(exc).split())[:100]})",
            str(path),
            "it may be truncated: use last.ckpt or retrain",
        ) from None


def load_checkpoint(
    path: str | Path, spec: DatasetSpec | None = None, device: str | torch.device = "cpu"
) -> TaskModule:
    """A :class:`TaskModule` from a checkpoint, in eval mode on ``device``.

    With ``spec`` the checkpoint's modality layout is checked against it (ModelError naming the
    difference).
    """
    ckpt = _read_checkpoint(Path(path))
    hp = dict(ckpt.get("hyper_parameters") or {})
    if "task" not in hp:
        raise ModelError("not a modalens checkpoint (no task)", str(path), "use a run's checkpoint")
    if spec is not None:
        check_layout((hp.get("meta") or {}).get("layout") or [], spec, str(path))
    module = TaskModule(**hp)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    return module.to(device)


@dataclass
class Run:
    """A trained run folder loaded for use.

    Attributes:
        run_dir: the folder.
        model: the :class:`~modalens.models.UNet` from ``best.ckpt`` in eval mode.
        module: its :class:`TaskModule` (input masking, loss, metrics).
        spec: the dataset spec with statistics applied (root possibly overridden).
        config: the resolved run config.
        task: ``regression``, ``segmentation`` or ``classification``.
        checkpoint: the checkpoint file loaded.
    """

    run_dir: Path
    model: UNet
    module: TaskModule
    spec: DatasetSpec
    config: dict[str, Any]
    task: str
    checkpoint: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def paths(self) -> dict[str, Path]:
        d = self.run_dir
        return {
            "config": d / "config.yaml",
            "dataset": d / "dataset.yaml",
            "stats": d / "stats.json",
            "best": d / "checkpoints" / "best.ckpt",
            "last": d / "checkpoints" / "last.ckpt",
            "metrics": d / "metrics.csv",
        }

    @property
    def downsampling(self) -> int:
        return self.model.downsampling

    def dataset(
        self, split: str = "test", ids: Sequence[str] | None = None, crop_size: int | None = None
    ) -> Any:
        """A deterministic :class:`~modalens.data.MultimodalDataset` (centre crops of the
        run's ``eval_crop_size``, no augmentation) of ``split``."""
        from .data import MultimodalDataset

        t = self.config["train"]
        if crop_size is None:
            crop_size = t["eval_crop_size"] if t["eval_crop_size"] is not None else t["crop_size"]
        return MultimodalDataset(
            self.spec,
            split=split,
            ids=ids,
            crop_size=crop_size,
            random_crop=False,
            augment=None,
            seed=t["seed"],
        )

    def reader(self) -> Any:
        """A :class:`~modalens.data.SampleReader` of the run's spec."""
        from .data import SampleReader

        return SampleReader(self.spec)

    def predict_fn(self, precision: str = "32") -> Callable[[Tensor], Tensor]:
        """``fn(x [B,C,h,w]) -> output [B,K,h,w]`` on the model's device (regression:
        scaled prediction; segmentation: class probabilities), for
        :func:`~modalens.inference.sliding_window`."""
        return make_tile_fn(self.module, precision=precision)


def _is_bf16(precision: str) -> bool:
    return PRECISIONS.get(str(precision).lower(), "32-true") == "bf16-mixed"


def make_tile_fn(module: TaskModule, precision: str = "32") -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.inference.sliding_window`: moves the tile to the
    module's device, applies the memory format and (optionally) bf16 autocast, and returns
    float32 outputs (probabilities for segmentation)."""
    device = next(module.parameters()).device
    bf16 = _is_bf16(precision)

    def fn(x: Tensor) -> Tensor:
        x = module.prepare_input(x.to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            y = module(x)
        y = y.float()
        if module.task == "segmentation":
            y = torch.softmax(y, 1)
        return y

    return fn


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    data_root: str | Path | None = None,
    spec: DatasetSpec | None = None,
    device: str | torch.device = "cpu",
) -> Run:
    """Load a run folder: model from ``checkpoints/<checkpoint>.ckpt`` in eval mode, its spec
    (``dataset.yaml``) with ``stats.json`` applied.

    ``data_root`` points the spec at other data of the same layout; ``spec`` replaces it (its
    modalities must match the checkpoint's, else a ModelError names the difference).
    """
    from . import stats as stats_mod

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ModelError(
            "not a run folder (no config.yaml)", str(run_dir), "give the folder that fit wrote"
        )
    cfg = _saved_config(run_dir)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    if spec is None:
        spec = load_spec(run_dir / "dataset.yaml")
    if data_root is not None:
        spec = spec.with_root(Path(data_root))
    stats_path = run_dir / "stats.json"
    stats_dict: dict[str, Any] = {}
    if stats_path.exists():
        statistics = stats_mod.Statistics.load(stats_path)
        spec = stats_mod.apply_statistics(spec, statistics)
        stats_dict = json.loads(stats_path.read_text())
    module = load_checkpoint(ckpt, spec=spec, device=device)
    return Run(
        run_dir=run_dir,
        model=module.model,
        module=module,
        spec=spec,
        config=cfg,
        task=module.task,
        checkpoint=ckpt,
        stats=stats_dict,
    )


# =============================================================================== test
def test(
    run_dir: str | Path,
    split: str = "test",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Any:
    """Evaluate the best checkpoint on ``split`` and write ``metrics_<split>.csv`` atomically.

    The table has one row per sample (``id``, valid pixel count ``n``, ``loss`` and the task's
    metrics) after a first row ``id = "all"`` pooled over every valid pixel (sample for
    classification) of the split. Regression errors are in target units / scale (0-1 for the
    naturalness index, as in the paper's Table I).
    """
    import pandas as pd

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, device=device)
    module = run.module
    ds = run.dataset(split)
    bs = batch_size or run.config["train"]["batch_size"]
    dl = DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate, num_workers=0)
    pooled = _make_metrics(run.task, module.hparams.out_channels, module.multilabel).to(device)
    rows: list[dict[str, Any]] = []
    tot_loss = tot_n = 0.0
    it: Any = dl
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(dl, desc=f"test {split}", unit="batch")
    with torch.inference_mode():
        for batch in it:
            batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
            output = module.predict_batch(batch)  # one forward per batch, scored per sample
            for i, sid in enumerate(batch["id"]):
                one = {k: (v[i : i + 1] if isinstance(v, Tensor) else v) for k, v in batch.items()}
                res = module.compute(one, output=output[i : i + 1])
                n = float(res["n"])
                row: dict[str, Any] = {"id": str(sid), "n": int(n), "loss": float(res["loss"])}
                row.update(_sample_metrics(run.task, res, module.multilabel))
                rows.append(row)
                tot_loss += float(res["loss"]) * n
                tot_n += n
                if res["preds"].shape[0] > 0:
                    pooled.update(res["preds"], res["targets"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {k: float(v) for k, v in pooled.compute().items()} if tot_n > 0 else {}
    all_row = {"id": "all", "n": int(tot_n), "loss": tot_loss / tot_n if tot_n else math.nan}
    all_row.update(values)
    table = pd.DataFrame([all_row] + rows)
    path = Path(run_dir) / f"metrics_{split}.csv"
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def _sample_metrics(task: str, res: Mapping[str, Tensor], multilabel: bool) -> dict[str, float]:
    p, t = res["preds"], res["targets"]
    if p.shape[0] == 0:
        return {}
    if task == "regression":
        err = p.float() - t.float()
        return {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt())}
    if task == "segmentation":
        return {"accuracy": float((p == t).float().mean())}
    if multilabel:
        hits = ((p >= 0.5).long() == t).float().mean()
        return {"label_accuracy": float(hits)}
    return {"accuracy": float((p.argmax(1) == t).float().mean())}


# =============================================================================== predict
class InputReader:
    """Wraps a :class:`~modalens.data.SampleReader` to read inputs only (no target file
    needed): ``valid`` is the input validity."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def grid(self, sample_id: str) -> Any:
        return self.reader.grid(sample_id)

    def read(self, sample_id: str, window: Any = None) -> dict[str, Any]:
        image, valid = self.reader.read_inputs(sample_id, window)
        return {"image": image, "valid": valid, "id": sample_id, "window": window}


def predict(
    run_dir: str | Path,
    data_root: str | Path | None = None,
    ids: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    split: str = "test",
    device: str | torch.device | None = None,
    precision: str = "32",
    progress: bool = False,
) -> list[Path]:
    """Predict whole scenes by sliding window and write one file per scene into ``out_dir``.

    - regression: ``<id>.tif`` float32, prediction × ``target.scale`` (naturalness 0-100),
      no-data NaN where an input is invalid;
    - segmentation: ``<id>.tif`` uint8 (uint16 if needed) class *codes*, no-data 255
      (65535) where an input is invalid;
    - classification: ``<id>.json`` with the scene's label probabilities.

    GeoTIFFs have the CRS and transform of the scene's grid (its first modality). Only inputs
    are read (no target needed). ``ids`` defaults to the ``split`` of the run's data, or to every
    sample found under ``data_root`` when that is given. ``out_dir`` defaults to
    ``RUN/predictions``.
    """
    from .data import SampleReader, discover_ids, sample_ids
    from .inference import sliding_window
    from .rasters import write_geotiff

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = load_run(run_dir, data_root=data_root, device=device)
    spec = run.spec
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "predictions"
    if ids is None:
        ids = discover_ids(spec) if data_root is not None else sample_ids(spec)[split]
    ids = [str(i) for i in ids]
    reader = InputReader(SampleReader(spec))
    fn = make_tile_fn(run.module, precision)
    target = spec.target
    paths: list[Path] = []
    it: Any = ids
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(ids, desc="predict", unit="scene")
    for sid in it:
        grid = reader.grid(sid)
        if run.task == "classification":
            paths.append(_predict_scene_labels(run, reader, sid, out_dir, precision))
            continue
        pred, valid = sliding_window(
            fn,
            reader,
            sid,
            tile=tile,
            overlap=overlap,
            out_channels=run.module.hparams.out_channels,
            batch_size=batch_size,
            multiple=run.downsampling,
            return_valid=True,
        )
        if run.task == "regression":
            pred *= np.float32(target.scale)  # in place: no second scene-sized array
            pred[:, ~valid] = np.nan
            path = write_geotiff(
                out_dir / f"{sid}.tif",
                pred,
                grid.crs,
                grid.transform,
                nodata=float("nan"),
                band_names=["prediction"],
                tags={"modalens_run": str(Path(run_dir).resolve()), "scale": target.scale},
            )
        else:
            codes = np.asarray(target.classes, dtype=np.int64)
            dtype = np.uint8 if codes.max() < 255 and codes.min() >= 0 else np.uint16
            nodata = 255 if dtype == np.uint8 else 65535
            lab = codes[pred.argmax(0)].astype(dtype)
            lab[~valid] = nodata
            del pred
            path = write_geotiff(
                out_dir / f"{sid}.tif",
                lab,
                grid.crs,
                grid.transform,
                nodata=nodata,
                band_names=["class"],
                tags={"classes": ",".join(map(str, codes.tolist()))},
            )
        paths.append(path)
    return paths


def _predict_scene_labels(
    run: Run, reader: InputReader, sid: str, out_dir: Path, precision: str
) -> Path:
    item = reader.read(sid)
    image = torch.from_numpy(np.asarray(item["image"], np.float32))[None]
    valid = torch.from_numpy(np.asarray(item["valid"], bool))[None]
    module = run.module
    device = run.device
    with torch.inference_mode():
        x = module.prepare_input(image.to(device), valid.to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_is_bf16(precision)):
            logits = module(x).float()[0]
    probs = torch.sigmoid(logits) if module.multilabel else torch.softmax(logits, 0)
    classes = list(run.spec.target.classes or range(len(probs)))
    p = {str(c): round(float(v), 6) for c, v in zip(classes, probs.tolist(), strict=True)}
    if module.multilabel:
        predicted = [c for c, v in p.items() if v >= 0.5]
    else:
        predicted = [max(p, key=p.get)]
    return atomic_write_json(
        Path(out_dir) / f"{sid}.json",
        {"id": sid, "probabilities": p, "predicted": predicted, "multilabel": module.multilabel},
    )


__all__ = [
    "DEFAULT_CONFIG",
    "EpochDataset",
    "EpochSampler",
    "Run",
    "TaskModule",
    "build_module",
    "check_layout",
    "fit",
    "load_checkpoint",
    "load_config",
    "load_run",
    "make_tile_fn",
    "masked_cross_entropy",
    "masked_regression_loss",
    "predict",
    "test",
]
