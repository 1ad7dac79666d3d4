"""TODO docstring: training/module.py"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.nn import functional as F

from ..data.sampling import _derive_seed
from ..data.spec import DatasetSpec
from ..errors import ModelError
from ..models.unet import UNet
from ..precision import parse_precision
from ..tasks.losses import _valid_pixels, masked_regression_loss, pooled_cross_entropy
from ..tasks.metrics import _make_metrics
from .config import CONFIG_VERSION, LOSSES, _plain


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
            loss, n = pooled_cross_entropy(out, target, valid)
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


def _is_bf16(precision: str) -> bool:
    return parse_precision(precision, "--precision") == "bf16"


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
