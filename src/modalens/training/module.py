"""The Lightning module of a run: one task on top of the paper's U-Net.

:class:`TaskModule` builds its :class:`~modalens.tasks.Task` from the saved hyper-parameters
(``task``, ``out_channels``, ``loss``) and delegates to it everything that differs between
tasks: the model's head and output activation, the pooled training loss and the metric inputs
(:meth:`TaskModule.compute`), the metric collections and the output post-processing
(:meth:`TaskModule.infer`, :func:`make_tile_fn`). The module itself masks inputs, logs the
epoch loss (a mean over valid pixels -- samples for classification -- not over batches),
augments training batches on the device (:meth:`TaskModule.on_after_batch_transfer`, each
item with its own seed), reseeds the global RNGs per batch, and builds the optimiser and
scheduler.

Under DDP (W processes, each with its share of the global batch) the loss a process
back-propagates is its pooled loss times ``W * n_rank / n_global`` (valid units of this rank
and of all ranks), so DDP's gradient average is the gradient of the loss pooled over the
global batch -- what one process computes for the same step. Epoch metrics are torchmetrics
states reduced over all processes, so every rank sees the same ``val_loss``.

Invalid pixels (``valid`` False: target invalid, or every input channel invalid -- a single
invalid channel is filled by the reader and the pixel stays) never reach the loss or a metric,
and the model input is zeroed there (``mask_invalid_inputs``), so their values cannot
change anything; a batch without valid pixels adds zero loss. :func:`build_module` makes the
module a run config describes; checkpoints carry the modality layout, statistics, task and
model hyper-parameters.

A run with auxiliary targets (``auxiliary`` hyper-parameter, from the config's ``auxiliary:``
section) trains a :class:`~modalens.models.MultiTaskUNet`: each auxiliary modality gets its own
task (:func:`~modalens.tasks.registry.task_for_modality`), head, loss (masked by that modality's
validity and the inputs'), loss mean and metrics (``<stage>_aux_<name>_loss``,
``<stage>_aux_<name>_<metric>``), and the losses are combined by a
:class:`~modalens.tasks.LossWeighting` (``<stage>_total_loss`` is what is minimised; the
per-task ``weight_<task>`` and, when learned, ``log_var_<task>`` are logged every epoch).
``<stage>_loss`` stays the *main* task's loss, so early stopping and the best checkpoint follow
the main task, as for a single-task run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from pydantic import ValidationError
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from ..data.augment import Augmentation, augment_batch
from ..data.auxiliary import aux_key, aux_valid_key
from ..data.sampling import derive_seed
from ..data.spec import DatasetSpec
from ..fingerprint import plain
from ..models.multitask import MAIN_HEAD, MultiTaskUNet
from ..options import validation_error
from ..precision import parse_precision, resolve_auto
from ..tasks.base import run_class_labels
from ..tasks.losses import valid_pixels
from ..tasks.registry import get_task, task_for_modality, task_for_target
from ..tasks.weighting import LossWeighting
from .config import CONFIG_VERSION, OptimizerConfig, RunConfig, SchedulerConfig
from .dropout import dropout_batch, module_settings

_OPTIMIZER = OptimizerConfig()


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
        lr: float = _OPTIMIZER.lr,
        optimizer: str = _OPTIMIZER.name,
        weight_decay: float = _OPTIMIZER.weight_decay,
        scheduler: SchedulerConfig | Mapping[str, Any] | None = None,
        channels_last: bool = False,
        mask_invalid_inputs: bool = True,
        seed: int = 0,
        meta: Mapping[str, Any] | None = None,
        auxiliary: Sequence[Mapping[str, Any]] | None = None,
        weighting: str = "fixed",
        decoder: str = "shared",
        augment: Mapping[str, Any] | None = None,
        modality_dropout: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        task_def = get_task(task, out_channels, loss).named(run_class_labels(meta))
        loss = task_def.loss_name  # saved resolved (the hyper-parameters are read from locals)
        #: the optimiser and scheduler, typed as in the run config (:meth:`configure_optimizers`)
        self.optimizer_config, self.scheduler_config = _optimization(
            optimizer, lr, weight_decay, scheduler
        )
        if scheduler is not None:  # plain data in the checkpoint
            scheduler = self.scheduler_config.model_dump()
        self.save_hyperparameters()
        #: the :class:`~modalens.tasks.Task` (``hparams.task`` keeps its name)
        self.task = task_def
        self.loss_name = task_def.loss_name
        self.multilabel = task_def.multilabel
        #: auxiliary tasks by modality name (empty for a single-task run)
        self.aux_tasks = {
            str(a["name"]): get_task(a["task"], int(a["outputs"]), a["loss"])
            for a in (auxiliary or [])
        }
        self.model = task_def.build_model(
            in_channels,
            base_width,
            depth,
            auxiliary={n: t.n_outputs for n, t in self.aux_tasks.items()},
            decoder=decoder,
        )
        self.weighting = (
            LossWeighting(
                [MAIN_HEAD, *self.aux_tasks],
                {str(a["name"]): float(a.get("weight", 1.0)) for a in auxiliary or []},
                weighting,
            )
            if self.aux_tasks
            else None
        )
        #: training augmentation, applied to batches on the device (None: off)
        self.augmentation = Augmentation(dict(augment)) if augment else None
        self.channels_last = channels_last
        if channels_last:
            # Module.to's stubs lack memory_format, which it takes (and passes to every tensor)
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.meta = dict(meta or {})
        self._add_metrics()

    def _add_metrics(self) -> None:
        """The metrics and loss means of the main and auxiliary tasks, per stage."""
        task_def = self.task
        # (ModuleDict keys cannot be "train": it is a Module method)
        self.train_metrics = task_def.metrics("train_")
        self.val_metrics = task_def.metrics("val_")
        self.train_loss_mean = MeanMetric()
        self.val_loss_mean = MeanMetric()
        # per stage and auxiliary task: its metrics and loss mean; the total loss mean
        self.aux_metrics = nn.ModuleDict(
            {
                f"{stage}_{n}": t.metrics(f"{stage}_aux_{n}_")
                for stage in ("train", "val")
                for n, t in self.aux_tasks.items()
            }
        )
        self.aux_loss_means = nn.ModuleDict(
            {f"{st}_{n}": MeanMetric() for st in ("train", "val") for n in self.aux_tasks}
        )
        self.total_loss_means = nn.ModuleDict(
            {f"{st}_total": MeanMetric() for st in ("train", "val")} if self.aux_tasks else {}
        )

    # ---------------------------------------------------------------- forward
    def prepare_input(self, image: Tensor, valid: Tensor | None = None) -> Tensor:
        """Zero the input at invalid pixels (when configured) and set the memory format."""
        x = image.float()
        if valid is not None and self.hparams["mask_invalid_inputs"]:
            x = torch.where(
                valid[:, None].to(torch.bool), x, torch.zeros((), dtype=x.dtype, device=x.device)
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _forward_all(self, x: Tensor) -> dict[str, Tensor]:
        """Every head's raw output (a model with auxiliary tasks)."""
        assert isinstance(self.model, MultiTaskUNet)  # built so when there are aux tasks
        return self.model.forward_all(x)

    def predict_all(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Every head's float output for a batch: ``{"main": ..., <auxiliary name>: ...}``."""
        image = batch["image"]
        x = self.prepare_input(image, valid_pixels(batch.get("valid"), image))
        if not self.aux_tasks:
            return {MAIN_HEAD: self(x).float()}
        return {k: v.float() for k, v in self._forward_all(x).items()}

    def infer_all(
        self, x: Tensor, valid: Tensor | None = None, precision: str = "fp32"
    ) -> dict[str, Tensor]:
        """Every head's post-processed float output (:meth:`infer` for each task)."""
        x = self.prepare_input(x, valid)
        bf16 = resolve_auto(precision, x.device) == "bf16"
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            outs = self._forward_all(x) if self.aux_tasks else {MAIN_HEAD: self(x)}
        tasks = {MAIN_HEAD: self.task, **self.aux_tasks}
        return {k: tasks[k].postprocess(v.float()) for k, v in outs.items()}

    def infer(self, x: Tensor, valid: Tensor | None = None, precision: str = "fp32") -> Tensor:
        """The task's post-processed float output for inputs ``x``.

        Args:
            x: inputs [B,C,H,W] on the module's device.
            valid: bool [B,H,W]; inputs are zeroed where False (when the run masks inputs).
            precision: ``fp32``, ``bf16`` (autocast) or ``auto`` (bf16 where native).

        Returns:
            :meth:`Task.postprocess` of the float32 output (probabilities for class tasks).
        """
        x = self.prepare_input(x, valid)
        bf16 = resolve_auto(precision, x.device) == "bf16"
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            y = self(x)
        return self.task.postprocess(y.float())

    def compute(
        self, batch: Mapping[str, Any], output: Tensor | Mapping[str, Tensor] | None = None
    ) -> dict[str, Any]:
        """Loss and metric inputs of a batch.

        Args:
            batch: ``image`` [B,C,H,W], ``target`` and (optionally) ``valid`` [B,H,W]; the
                auxiliary targets and validities of a multitask run.
            output: the model's float output for the batch (the main head's tensor, or
                :meth:`predict_all`'s dict); None runs the model.

        Returns:
            The main task's ``loss``, ``n`` (valid units), ``preds`` and ``targets``
            (flattened over valid pixels or samples, see :meth:`Task.score`), its raw
            ``output``, and ``aux``: each auxiliary task's :meth:`Task.score` (scored when the
            output holds its head).
        """
        image, target = batch["image"], batch["target"]
        valid = valid_pixels(batch.get("valid"), image)
        if output is None:
            output = self.predict_all(batch)
        outs = dict(output) if isinstance(output, Mapping) else {MAIN_HEAD: output}
        out = outs[MAIN_HEAD]
        aux = {}
        for name, task in self.aux_tasks.items():
            if name in outs:
                ok = valid & batch[aux_valid_key(name)].to(torch.bool)
                aux[name] = task.score(outs[name], batch[aux_key(name)], ok)
        return {**self.task.score(out, target, valid), "output": out, "aux": aux}

    # ---------------------------------------------------------------- steps
    def _step(self, batch: Mapping[str, Any], stage: str) -> Tensor:
        res = self.compute(batch)
        loss, n = res["loss"], res["n"]
        bs = int(batch["image"].shape[0])
        total = self._log_auxiliary(res, stage, bs)
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
        if stage == "train" and self._world_size() > 1:
            return self._global_loss(res)
        return loss if total is None else total

    def _world_size(self) -> int:
        trainer = getattr(self, "_trainer", None)
        return int(trainer.world_size) if trainer is not None else 1

    def _global_loss(self, res: Mapping[str, Any]) -> Tensor:
        """This rank's share of the loss pooled over the global batch (module docstring)."""
        parts = {MAIN_HEAD: res, **res["aux"]}
        counts = torch.stack([r["n"].detach().float().reshape(()) for r in parts.values()])
        totals = self.trainer.strategy.reduce(counts.clone(), reduce_op="sum")
        share = counts * self._world_size() / totals.clamp_min(1e-12)
        losses = {k: r["loss"] * share[i] for i, (k, r) in enumerate(parts.items())}
        return losses[MAIN_HEAD] if self.weighting is None else self.weighting(losses)

    def _log_auxiliary(self, res: Mapping[str, Any], stage: str, bs: int) -> Tensor | None:
        """Log every auxiliary task's loss and metrics and the weights; the total loss."""
        if self.weighting is None:
            return None
        losses = {MAIN_HEAD: res["loss"]}
        for name, r in res["aux"].items():
            losses[name] = r["loss"]
            mean = self.aux_loss_means[f"{stage}_{name}"]
            assert isinstance(mean, MeanMetric)
            mean.update(r["loss"].detach(), weight=r["n"].clamp_min(1e-12).float())
            self.log(f"{stage}_aux_{name}_loss", mean, on_step=False, on_epoch=True, batch_size=bs)
            if r["preds"].shape[0] > 0:
                coll = self.aux_metrics[f"{stage}_{name}"]
                assert isinstance(coll, MetricCollection)
                coll.update(r["preds"], r["targets"])
                self.log_dict(coll, on_step=False, on_epoch=True, batch_size=bs)
        total = self.weighting(losses)
        total_mean = self.total_loss_means[f"{stage}_total"]
        assert isinstance(total_mean, MeanMetric)
        total_mean.update(total.detach())
        self.log(
            f"{stage}_total_loss",
            total_mean,
            on_step=False,
            on_epoch=True,
            batch_size=bs,
        )
        if stage == "train":
            for name, w in self.weighting.weights().items():
                self.log(
                    f"weight_{name}", w, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True
                )
            for name, s in self.weighting.log_vars().items():
                self.log(
                    f"log_var_{name}",
                    s,
                    on_step=False,
                    on_epoch=True,
                    batch_size=bs,
                    sync_dist=True,
                )
        return total

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment a training batch on the device, each item with its own ``aug_seed``
        (:func:`~modalens.data.augment.augment_batch`; auxiliary targets get the image's
        geometric draw); other batches pass unchanged."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None or not trainer.training:
            return batch
        maps = [(aux_key(n), aux_valid_key(n)) for n in self.aux_tasks]
        batch = augment_batch(self.augmentation, batch, maps) if self.augmentation else batch
        drop = self.hparams.get("modality_dropout")
        return dropout_batch(batch, drop) if drop else batch

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # reseed the global RNGs from (seed, epoch, batch): resuming gives the same draws
        torch.manual_seed(derive_seed(self.hparams["seed"], self.current_epoch, batch_idx))

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        params = list(self.model.parameters())
        if self.weighting is not None:
            params += list(self.weighting.parameters())
        opt = self.optimizer_config.build(params)
        scheduler = self.scheduler_config.build(opt)
        if scheduler is None:
            return opt
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
                "in_channels": self.hparams["in_channels"],
                "out_channels": self.hparams["out_channels"],
                "base_width": self.hparams["base_width"],
                "depth": self.hparams["depth"],
            },
            "auxiliary": plain(list(self.hparams["auxiliary"] or [])),
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
    auxiliary = []
    for mod in spec.auxiliary:
        assert cfg.auxiliary is not None
        loss, weight = cfg.auxiliary.head_settings(mod.name, mod.is_categorical)
        aux_task = task_for_modality(mod, loss)
        auxiliary.append(
            {
                "name": mod.name,
                "task": aux_task.name,
                "outputs": aux_task.n_outputs,
                "loss": aux_task.loss_name,
                "weight": weight,
            }
        )
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
        scheduler=t.scheduler,
        channels_last=t.channels_last,
        mask_invalid_inputs=t.mask_invalid_inputs,
        seed=t.seed,
        meta=meta,
        auxiliary=auxiliary or None,
        weighting=cfg.auxiliary.weighting if cfg.auxiliary else "fixed",
        decoder=cfg.auxiliary.decoder if cfg.auxiliary else "shared",
        augment=t.augment,
        modality_dropout=module_settings(t.modality_dropout, spec, stats),
    )


def _optimization(
    optimizer: str,
    lr: float,
    weight_decay: float,
    scheduler: SchedulerConfig | Mapping[str, Any] | None,
) -> tuple[OptimizerConfig, SchedulerConfig]:
    """The typed optimiser and scheduler of a module's hyper-parameters (no scheduler for
    None); a bad value is a one-line SpecError naming the argument."""
    try:
        optim = OptimizerConfig(name=optimizer, lr=lr, weight_decay=weight_decay)
    except ValidationError as exc:
        where = {"name": "optimizer"}
        raise validation_error(
            exc, OptimizerConfig, lambda key: f"TaskModule {where.get(key, key)}="
        ) from None
    if isinstance(scheduler, SchedulerConfig):
        return optim, scheduler
    try:
        return optim, SchedulerConfig.model_validate(dict(scheduler or {"name": "none"}))
    except ValidationError as exc:
        raise validation_error(
            exc, SchedulerConfig, lambda key: f"TaskModule scheduler[{key!r}]"
        ) from None


def make_tile_fn(
    module: TaskModule, precision: str = "fp32", auxiliary: bool = False
) -> Callable[[Tensor], Tensor]:
    """A tile function for :func:`modalens.training.tiling.sliding_window`: moves the tile to
    the module's device and returns :meth:`TaskModule.infer` (memory format, optional bf16
    autocast, float32 outputs; probabilities for segmentation).

    Args:
        module: the trained module.
        precision: ``fp32`` or ``bf16`` (any spelling :func:`modalens.precision.parse_precision`
            accepts).
        auxiliary: return the auxiliary heads' outputs instead of the main one's,
            concatenated on the channel axis in order (:meth:`TaskModule.infer_all`).

    Returns:
        ``fn(x [B,C,h,w]) -> [B,K,h,w]``.

    Raises:
        SpecError: an unknown ``precision``.
    """
    device = next(module.parameters()).device
    precision = parse_precision(precision, "--precision")

    def fn(x: Tensor) -> Tensor:
        if auxiliary:
            outs = module.infer_all(x.to(device), precision=precision)
            return torch.cat([v for k, v in outs.items() if k != MAIN_HEAD], 1)
        return module.infer(x.to(device), precision=precision)

    return fn
