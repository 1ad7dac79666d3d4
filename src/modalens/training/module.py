"""The Lightning module of a run: one task on top of the paper's U-Net.

:class:`TaskModule` builds its :class:`~modalens.tasks.Task` from the saved hyper-parameters
(``task``, ``out_channels``, ``loss``) and delegates to it everything that differs between
tasks: the model's head and output activation, the pooled training loss and the metric inputs
(:meth:`TaskModule.compute`), the metric collections and the output post-processing
(:meth:`TaskModule.infer`, :func:`make_tile_fn`). The module itself masks inputs, logs the
epoch loss (a mean over valid pixels -- samples for classification -- not over batches),
reseeds the global RNGs per batch so a resumed run draws the same augmentations, and builds
the optimiser and scheduler.

Invalid pixels (``valid`` False: target no-data or any input no-data) never reach the loss or
a metric, and the model input is zeroed there (``mask_invalid_inputs``), so their values cannot
change anything; a batch without valid pixels adds zero loss. :func:`build_module` makes the
module a run config describes; checkpoints carry the modality layout, statistics, task and
model hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torchmetrics import MeanMetric

from ..data.sampling import derive_seed
from ..data.spec import DatasetSpec
from ..errors import ModelError
from ..fingerprint import plain
from ..precision import parse_precision
from ..tasks.losses import valid_pixels
from ..tasks.registry import get_task, task_for_target
from .config import CONFIG_VERSION, RunConfig


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
        task_def = get_task(task, out_channels, loss)  # unknown task or loss: ModelError
        loss = task_def.loss_name  # saved resolved (the hyper-parameters are read from locals)
        self.save_hyperparameters()
        #: the :class:`~modalens.tasks.Task` (``hparams.task`` keeps its name)
        self.task = task_def
        self.loss_name = task_def.loss_name
        self.multilabel = task_def.multilabel
        self.model = task_def.build_model(in_channels, base_width, depth)
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.meta = dict(meta or {})
        # (ModuleDict keys cannot be "train": it is a Module method)
        self.train_metrics = task_def.metrics("train_")
        self.val_metrics = task_def.metrics("val_")
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
        return self(self.prepare_input(image, valid_pixels(batch.get("valid"), image))).float()

    def infer(self, x: Tensor, valid: Tensor | None = None, precision: str = "fp32") -> Tensor:
        """The task's post-processed float output for inputs ``x``.

        Args:
            x: inputs [B,C,H,W] on the module's device.
            valid: bool [B,H,W]; inputs are zeroed where False (when the run masks inputs).
            precision: ``fp32`` or ``bf16`` (autocast).

        Returns:
            :meth:`Task.postprocess` of the float32 output (probabilities for class tasks).
        """
        x = self.prepare_input(x, valid)
        bf16 = parse_precision(precision, "--precision") == "bf16"
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            y = self(x)
        return self.task.postprocess(y.float())

    def compute(self, batch: Mapping[str, Any], output: Tensor | None = None) -> dict[str, Tensor]:
        """Loss and metric inputs of a batch.

        Args:
            batch: ``image`` [B,C,H,W], ``target`` and (optionally) ``valid`` [B,H,W].
            output: the model's float output for the batch; None runs the model.

        Returns:
            ``loss``, ``n`` (valid units), ``preds`` and ``targets`` (flattened over valid
            pixels or samples, see :meth:`Task.score`) and the raw ``output``.
        """
        image, target = batch["image"], batch["target"]
        valid = valid_pixels(batch.get("valid"), image)
        out = self.predict_batch(batch) if output is None else output
        return {**self.task.score(out, target, valid), "output": out}

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
        torch.manual_seed(derive_seed(self.hparams.seed, self.current_epoch, batch_idx))

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
            "task": self.task.name,
            "layout": self.meta.get("layout"),
            "model": {
                "in_channels": self.hparams.in_channels,
                "out_channels": self.hparams.out_channels,
                "base_width": self.hparams.base_width,
                "depth": self.hparams.depth,
            },
        }


def build_module(
    cfg: RunConfig, spec: DatasetSpec, stats: Mapping[str, Any] | None = None
) -> TaskModule:
    """The :class:`TaskModule` a resolved config describes for ``spec``.

    Args:
        cfg: the run config (:func:`~modalens.training.config.load_config`).
        spec: the dataset spec after modality selection (statistics applied).
        stats: the statistics dict, stored in the checkpoint's ``meta``.
    """
    t, m = cfg.train, cfg.model
    task = task_for_target(spec.target, t.loss)
    meta = {
        "layout": plain(spec.layout()),
        "spec": plain(spec.to_dict()),
        "stats": plain(stats or {}),
        "classes": plain(list(spec.target.classes)) if spec.target.classes else None,
        "target_scale": float(spec.target.scale),
        "target_kind": spec.target.kind,
        "name": cfg.name,
    }
    return TaskModule(
        task=task.name,
        in_channels=spec.n_channels,
        out_channels=task.n_outputs,
        base_width=m.base_width,
        depth=m.depth,
        loss=task.loss_name,
        lr=t.lr,
        optimizer=t.optimizer,
        weight_decay=t.weight_decay,
        scheduler=t.scheduler.model_dump(),
        channels_last=t.channels_last,
        mask_invalid_inputs=t.mask_invalid_inputs,
        seed=t.seed,
        meta=meta,
    )


def make_tile_fn(module: TaskModule, precision: str = "fp32") -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.training.tiling.sliding_window`: moves the tile to
    the module's device and returns :meth:`TaskModule.infer` (memory format, optional bf16
    autocast, float32 outputs; probabilities for segmentation).

    Args:
        module: the trained module.
        precision: ``fp32`` or ``bf16`` (any spelling :func:`modalens.precision.parse_precision`
            accepts).

    Returns:
        ``fn(x [B,C,h,w]) -> [B,K,h,w]``.

    Raises:
        SpecError: an unknown ``precision``.
    """
    device = next(module.parameters()).device
    precision = parse_precision(precision, "--precision")

    def fn(x: Tensor) -> Tensor:
        return module.infer(x.to(device), precision=precision)

    return fn
