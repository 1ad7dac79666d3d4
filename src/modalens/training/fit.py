"""TODO docstring: training/fit.py"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ..data.datamodule import _dataset, _loader
from ..data.dataset import make_weighted_sampler
from ..data.samples import sample_ids
from ..data.sampling import EpochDataset, EpochSampler
from ..data.spec import DatasetSpec
from ..data.specfile import spec_to_yaml
from ..data.stats import apply_statistics, load_or_compute
from ..errors import DataError, ModelError
from ..io import atomic_path, atomic_write_text
from ..precision import lightning_precision
from .callbacks import EpochCSV, _atomic_checkpoint_io, _quiet_lightning
from .config import config_to_yaml, load_config, spec_from_config
from .module import build_module
from .run import _check_resume_config, _read_checkpoint, _saved_config, check_layout

log = logging.getLogger(__name__)


def _device_is_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def _read_stats(
    spec: DatasetSpec, cache: Path, progress: bool = True
) -> tuple[DatasetSpec, dict[str, Any]]:

    statistics = load_or_compute(spec, cache, progress=progress)
    spec = apply_statistics(spec, statistics)
    try:
        stats_dict = json.loads(cache.read_text()) if cache.exists() else {}
    except json.JSONDecodeError:
        stats_dict = {}
    return spec, stats_dict


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
    spec = spec_from_config(cfg)
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
        precision=lightning_precision(t["precision"]),
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
