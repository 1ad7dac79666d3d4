"""Training a run: :func:`fit` turns a run config into a run folder.

:func:`fit` resolves the config (:func:`~modalens.training.config.load_config`), computes or
reuses the train-split statistics, builds the datasets and loaders
(:class:`~modalens.data.datamodule.RunData`) and the :class:`~modalens.training.module.TaskModule`
and trains with Lightning (before that it refuses train/val and train/test leakage,
:func:`~modalens.data.leakage.check_leakage`, and reports how much of each split is masked,
``masking.csv``): early stopping on the validation loss, ``best.ckpt`` (lowest
validation loss) and ``last.ckpt`` (every epoch) written atomically, one ``metrics.csv`` row per
epoch, and ``state.json``: whether training is running, finished, stopped early, was
interrupted or failed, and the epochs finished (:mod:`~modalens.training.runstate`). It writes
the run folder described in :mod:`modalens.training.runfolder`.

``fit(..., resume=True)`` continues from ``last.ckpt``; on CPU with the same seed the result is
the same as an uninterrupted run (per-epoch crops, sampling order and augmentations are seeded
by ``(seed, epoch, index)``; Lightning restores weights, optimiser, scheduler, early stopping
and checkpoint state). Only :data:`~modalens.training.runfolder.RESUMABLE_KEYS` may differ from
the saved config (:meth:`RunFolder.check_resumable`).

Several devices or nodes (``train.devices``, ``train.num_nodes``, ``train.strategy``) train with
Lightning's DDP; ``train.batch_size`` stays the global batch (:class:`FitDataModule` gives each
rank its share). Under the subprocess launcher, ``torchrun`` or ``srun`` this whole function runs
in every process: only global rank 0 (:func:`~modalens.training.ranks.is_global_zero`) checks
that the folder is new and writes ``config.yaml``, ``stats.json``, ``dataset.yaml`` and
``masking.csv``; the other ranks wait for those files and read them. Checkpoints and
``metrics.csv`` are written by global rank 0 only.

What training changes in the process while it runs (Lightning's seeds and deterministic
algorithms, several CPU processes' share of the cores, quieter Lightning warnings and logs) is
restored when :func:`fit` returns or raises (:func:`~modalens.scope.scoped_process`).
"""

from __future__ import annotations

import logging
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ..data.checks import band_warnings
from ..data.coverage import has_valid_target, masking_lines, masking_report, require_target
from ..data.datamodule import per_process_batch
from ..data.identity import data_identity
from ..data.leakage import check_leakage
from ..data.reader import SampleReader
from ..data.remote import is_remote
from ..data.samples import sample_ids
from ..data.spec import DatasetSpec
from ..data.specfile import spec_to_yaml
from ..data.stats import with_statistics
from ..errors import DataError, ModelError, SpecError
from ..fingerprint import provenance
from ..io import (
    atomic_path,
    atomic_write_csv,
    atomic_write_text,
    check_output,
    make_folder,
    require_free_space,
)
from ..models.unet import check_input_size, largest_depth, min_input_size
from ..precision import lightning_precision, resolve_auto
from ..progress import say, warn
from ..scope import scoped_process
from ..threads import threads_per_process
from .callbacks import (
    EpochCSV,
    QuietLightning,
    StateRecorder,
    atomic_checkpoint_io,
    quiet_lightning,
)
from .config import RunConfig, TrainConfig, load_config, spec_from_config
from .fitdata import FitDataModule
from .module import build_module
from .ranks import is_global_zero, wait_for_files
from .run import check_layout, read_checkpoint
from .runfolder import RunFolder
from .runstate import RunState, read_state, write_state

log = logging.getLogger(__name__)


def _device_is_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def _resume_finished(last: Path, spec: DatasetSpec, epochs: int) -> RunState | None:
    """Check a checkpoint before resuming: same layout, not past ``epochs``; the finished state
    when the run has nothing left to do (all epochs trained or stopped early), else None."""
    ckpt = read_checkpoint(last)
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
    if done == epochs:
        return RunState("finished", done, epochs)
    return RunState("early_stopped", done, epochs) if stopped else None


def fit(
    config: str | Path | Mapping[str, Any] | RunConfig,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Train a model as ``config`` says and return the run folder (see the module docstring).

    Args:
        config: run config path, dict or :class:`RunConfig` (:func:`load_config`).
        out: run folder; default ``runs/<name>``. Without ``resume`` it must not exist or be
            empty.
        resume: continue the run in ``out`` from ``checkpoints/last.ckpt`` (only keys in
            :data:`~modalens.training.runfolder.RESUMABLE_KEYS`, e.g. ``train.epochs``, may
            differ from the saved config).
        progress: show Lightning's progress bar.
        overrides: nested dict merged over the config (e.g. ``{"data": {"root": ...}}``).

    Returns:
        The run folder.

    Raises:
        SpecError: an invalid config, or a resume request whose config differs.
        DataError: the dataset root is missing, a split is empty, or train ids are also val
            or test ids (unless the spec sets ``allow_leakage: true``).
        ModelError: the folder is not empty (without ``resume``) or has nothing to resume.
        OutputError: ``out`` cannot be a run folder here (a file, not writable;
            :func:`~modalens.io.check_output`).
    """
    cfg = load_config(config, overrides)
    if cfg.train.precision == "auto":  # bf16-mixed where native; config.yaml keeps the result
        device = "cuda" if _device_is_gpu(cfg.train.accelerator) else "cpu"
        train = cfg.train.model_copy(update={"precision": resolve_auto("auto", device)})
        cfg = cfg.model_copy(update={"train": train})
    folder = RunFolder(out if out is not None else Path("runs") / str(cfg.name))
    check_output(folder.path, "folder")
    _check_processes(cfg.train)
    # seeds, deterministic algorithms, threads, warning filters: restored when fit returns
    with scoped_process(), quiet_lightning(progress):
        _share_cores(cfg.train)
        return _train(cfg, folder, resume, progress)


def _train(cfg: RunConfig, folder: RunFolder, resume: bool, progress: bool) -> Path:
    """:func:`fit` once the config is resolved: check the folder, prepare it, train."""
    zero = is_global_zero()
    resume = _check_folder(cfg, folder, resume, zero)
    spec = spec_from_config(cfg)
    if not is_remote(spec.root) and not spec.root.exists():  # a URL: its files are checked
        raise DataError(
            "dataset root not found",
            str(spec.root),
            "set data.root in the config or pass --root",
        )
    t = cfg.train
    done = _resume_finished(folder.last, spec, t.epochs) if resume else None
    if done is not None:
        if zero:  # reused as it is (e.g. by ablate): still only with the same data and version
            folder.record_provenance(_made(spec, sample_ids(spec)), resume, write=False)
        recorded = read_state(folder.path)
        if zero and not (recorded and recorded.finished):  # e.g. killed after its last epoch
            write_state(folder.path, done)
        say(f"run {folder.path} has already finished", progress)
        return folder.path
    pl.seed_everything(t.seed, workers=True, verbose=False)

    splits = sample_ids(spec)
    for split in ("train", "val"):
        if not splits.get(split):
            raise DataError(f"the {split} split is empty", str(spec.root), "check the split file")
    _check_data(t, spec, splits, progress, zero, cfg.model.depth)
    if zero:
        spec, stats_dict = _prepare_folder(cfg, spec, splits, folder, resume, progress)
    else:  # rank 0 writes the folder's files; wait for them and read them
        wait_for_files([folder.config, folder.stats, folder.dataset, folder.masking])
        spec, stats_dict = with_statistics(spec, folder.stats, compute=False, progress=False)
    module = build_module(cfg, spec, stats_dict)
    if zero:
        # best.ckpt and last.ckpt (weights + two Adam moments each) and one temporary copy
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        require_free_space(folder.checkpoints, 9 * weights + 2**20, "the checkpoints")
    trainer = _trainer(t, folder, progress)
    data = FitDataModule(t.run_data(spec, depth=cfg.model.depth))
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(folder.last) if resume else None)
    except SystemExit:
        # Lightning turns Ctrl+C into sys.exit(1) and leaves SIGINT ignored: give the caller a
        # KeyboardInterrupt (finished epochs are in last.ckpt; rerun with --resume)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    if zero and not folder.best.exists() and folder.last.exists():
        # e.g. val_loss was NaN every epoch: keep the last weights as the best ones
        with atomic_path(folder.best) as tmp:
            shutil.copyfile(folder.last, tmp)
    return folder.path


def _check_folder(cfg: RunConfig, folder: RunFolder, resume: bool, zero: bool) -> bool:
    """Refuse a folder with nothing to resume, a changed config and (on rank 0) a non-empty
    folder without ``resume``; whether there is a checkpoint to resume from."""
    if resume:
        if not folder.last.exists() and not folder.config.exists():
            raise ModelError(
                "nothing to resume: no checkpoints/last.ckpt",
                str(folder.path),
                "run without --resume to start this run",
            )
        folder.check_resumable(cfg)
        # interrupted before the first epoch ended: start again in the same folder
        return folder.last.exists()
    if zero and not folder.is_empty():
        raise ModelError(
            "the run folder already exists and is not empty",
            str(folder.path),
            "pass --resume to continue it or --out to start a new run elsewhere",
        )
    return False


def _check_data(
    t: TrainConfig,
    spec: DatasetSpec,
    splits: Mapping[str, list[str]],
    progress: bool,
    zero: bool,
    depth: int,
) -> None:
    """Before anything is written: refuse a crop size no scene holds or the U-Net of ``depth``
    cannot take, and a train or val split without a valid target pixel; warn (rank 0) about a
    test split without one."""
    _check_crop_sizes(t, spec, depth)
    _check_first_scenes(t, spec, splits, depth)
    for note in t.run_data(spec).check_crops(splits):
        say(f"note: {note}", progress and zero)
    require_target(spec, "train", splits["train"])
    require_target(spec, "val", splits["val"])
    if zero and not has_valid_target(spec, splits.get("test", [])):
        warn(
            "no sample of the test split has a valid target pixel: test and attribute will "
            "refuse it; check its target files or the split file"
        )


def _check_crop_sizes(t: TrainConfig, spec: DatasetSpec, depth: int) -> None:
    """Refuse a (dense) train or eval crop smaller than the U-Net of ``depth`` takes (scenes
    smaller than it are refused by the datasets, naming the sample)."""
    if not spec.target.is_dense:
        return
    for key, size in (("crop_size", t.crop_size), ("eval_crop_size", t.eval_crop_size)):
        crop = spec.crop_size if size is None else int(size)
        if crop <= 0:
            continue
        training = key == "crop_size"
        need = min_input_size(depth) * (1 + int(training))  # training: > 1x1 bottleneck
        fits = largest_depth(crop) - int(training)
        shallower = f" or model.depth: {fits}" if fits >= 1 else ""
        check_input_size(
            crop,
            crop,
            f"key 'train.{key}'" if size is not None else "the dataset spec's crop_size",
            depth=depth,
            fix=f"set {key}: {need} or more (0: whole scenes){shallower}",
            error=SpecError,
            training=training,
        )


def _check_first_scenes(
    t: TrainConfig, spec: DatasetSpec, splits: Mapping[str, list[str]], depth: int
) -> None:
    """Refuse, before anything is written, a first train or val item (its crop, or the whole
    scene when smaller) that the U-Net of ``depth`` cannot take: scenes usually share one size,
    so this catches a dataset too small for the model without opening every file (the datasets
    check each item as they read it)."""
    reader = SampleReader(spec, cache_size=2, check_values=False)
    eval_crop = t.eval_crop_size if t.eval_crop_size is not None else t.crop_size
    try:
        for split, size in (("train", t.crop_size), ("val", eval_crop)):
            sid = splits[split][0]
            grid = reader.grid(sid)
            h, w = grid.height, grid.width
            crop = spec.crop_size if size is None else int(size)
            if spec.target.is_dense and crop > 0:  # a crop larger than the scene: the scene
                h, w = min(h, crop), min(w, crop)
            where = f"sample {sid!r} of the {split} split"
            check_input_size(h, w, where, depth=depth, training=split == "train")
    finally:
        reader.close()


def _check_processes(t: TrainConfig) -> None:
    """Refuse a global batch that the processes cannot share, and SyncBatchNorm on CPU."""
    if isinstance(t.devices, int):
        per_process_batch(t.batch_size, t.devices * t.num_nodes)
    if t.sync_batchnorm and not _device_is_gpu(str(t.accelerator)):
        raise SpecError(
            "train.sync_batchnorm needs GPUs (torch's SyncBatchNorm does not run on CPU)",
            "key 'train.sync_batchnorm'",
            "set sync_batchnorm: false (or drop --sync-batchnorm) on CPU",
        )


def _share_cores(t: TrainConfig) -> None:
    """Several CPU processes on this machine: each gets its share of the cores (unless the user
    set ``OMP_NUM_THREADS``), as sharded attribution does; ranks started later inherit it
    (called inside :func:`~modalens.scope.scoped_process`, which restores both)."""
    if isinstance(t.devices, int) and t.devices > 1 and not _device_is_gpu(str(t.accelerator)):
        torch.set_num_threads(threads_per_process(t.devices))


def _prepare_folder(
    cfg: RunConfig,
    spec: DatasetSpec,
    splits: Mapping[str, list[str]],
    folder: RunFolder,
    resume: bool,
    progress: bool,
) -> tuple[DatasetSpec, dict[str, Any]]:
    """Rank 0's part: warn about leakage and write ``provenance.json`` (resuming: checked
    first), ``config.yaml``, ``stats.json``, ``dataset.yaml`` and ``masking.csv``; the spec with
    statistics and the statistics."""
    for line in check_leakage(spec).lines():
        say(f"warning: {line}", progress)
    for line in band_warnings(spec, splits["train"][0]):  # a file with an extra band
        warn(line)
    # resuming: refuses other data or another version, warns at another thread count
    folder.record_provenance(_made(spec, splits), resume)
    make_folder(folder.checkpoints)
    atomic_write_text(folder.config, cfg.to_yaml())
    spec, stats_dict = with_statistics(spec, folder.stats, progress=progress)
    atomic_write_text(folder.dataset, spec_to_yaml(spec))
    if not (resume and folder.masking.exists()):
        masking = masking_report(spec, splits, progress=progress)
        atomic_write_csv(folder.masking, masking)
        for line in masking_lines(masking):
            say(f"masked: {line}", progress)
    return spec, stats_dict


def _made(spec: DatasetSpec, splits: Mapping[str, list[str]]) -> dict[str, Any]:
    """What trains a run (:func:`modalens.fingerprint.provenance`): the package version, the
    thread count and the identity of every split's data."""
    return provenance(data=data_identity(spec.flat(), [i for ids in splits.values() for i in ids]))


def _trainer(t: TrainConfig, folder: RunFolder, progress: bool) -> pl.Trainer:
    """The Lightning trainer of a run's train settings ``t`` writing into ``folder``."""
    gpu = _device_is_gpu(str(t.accelerator))
    deterministic = t.deterministic
    if deterministic == "auto":
        deterministic = "warn" if gpu else True
    callbacks = [
        pl.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=t.patience),
        # best.ckpt: lowest val_loss; last.ckpt: every epoch (Lightning >= 2.6 writes
        # save_last only when a top-k checkpoint was written, so it is a callback of its own,
        # placed last so that it stores the updated best/early-stopping state)
        pl.callbacks.ModelCheckpoint(
            dirpath=folder.checkpoints,
            filename=folder.best.stem,
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        pl.callbacks.ModelCheckpoint(
            dirpath=folder.checkpoints,
            filename=folder.last.stem,
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        EpochCSV(folder.metrics),
        StateRecorder(folder.path, t.epochs),
        QuietLightning(progress),
    ]
    return pl.Trainer(
        default_root_dir=folder.path,
        max_epochs=t.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        sync_batchnorm=t.sync_batchnorm,
        precision=lightning_precision(t.precision),
        deterministic=deterministic,
        benchmark=False,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        gradient_clip_val=t.gradient_clip_val,
        use_distributed_sampler=False,
        log_every_n_steps=1,
        plugins=[atomic_checkpoint_io()],
    )
