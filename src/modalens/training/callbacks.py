"""What the trainer needs besides the model: the per-epoch table, atomic checkpoints, quiet logs.

- :class:`EpochCSV` writes ``metrics.csv`` (one row per finished epoch: step, learning rate,
  train/val loss and metrics, seconds) atomically after every epoch; a resumed run keeps the
  rows of the epochs it does not retrain. Under DDP only global rank 0 writes it (the metrics
  are reduced over all ranks).
- :class:`StateRecorder` records in ``state.json`` whether training is running, finished,
  stopped early, interrupted or failed, and the epochs finished (:mod:`.runstate`).
- :func:`atomic_checkpoint_io` makes Lightning write checkpoints to a temporary file and move
  them into place, so an interrupted save never leaves a truncated ``last.ckpt``.
- :func:`quiet_lightning` turns off Lightning's info logs and warnings that do not concern a
  modalens user while a call runs (the filters and log levels are restored after it);
  :class:`QuietLightning` does it again, from the trainer's set-up to its teardown, in
  processes the ``ddp_spawn`` strategy starts (they do not inherit the filters).
"""

from __future__ import annotations

import csv
import io
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ..errors import OutputError
from ..io import atomic_path, atomic_write_text
from .runstate import RunState, exception_reason, write_state


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
        if not trainer.is_global_zero:
            return
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(r)
        atomic_write_text(self.path, buf.getvalue())


class StateRecorder(pl.Callback):
    """Records the training state in ``state.json`` (:mod:`.runstate`) on global rank 0;
    placed after the checkpoint callbacks, so that an epoch counts once ``last.ckpt`` holds it.

    Args:
        run_dir: the run folder.
        planned: ``train.epochs``.
    """

    def __init__(self, run_dir: Path, planned: int) -> None:
        self.run_dir = Path(run_dir)
        self.planned = int(planned)

    def _write(self, trainer: Any, status: str, epochs: int, reason: str = "") -> None:
        if trainer.is_global_zero:
            write_state(self.run_dir, RunState(status, int(epochs), self.planned, reason))

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._write(trainer, "running", trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._write(trainer, "running", trainer.current_epoch + 1)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        interrupted = isinstance(exception, KeyboardInterrupt)
        status = "interrupted" if interrupted else "failed"
        reason = "Ctrl-C" if interrupted else exception_reason(exception)
        try:
            self._write(trainer, status, trainer.current_epoch, reason)
        except OutputError:  # e.g. the full disk that stopped training: its error goes on
            pass

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        done = trainer.current_epoch
        if done >= self.planned:
            self._write(trainer, "finished", done)
            return
        reasons = [
            str(getattr(cb, "stopping_reason_message", None) or "").strip().split("\n")[0]
            for cb in trainer.callbacks
            if isinstance(cb, pl.callbacks.EarlyStopping)
        ]
        self._write(trainer, "early_stopped", done, next((r for r in reasons if r), ""))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints are written to a temporary file and moved into place."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        """Save ``checkpoint`` to ``path`` atomically."""
        with atomic_path(Path(path), suffix=".tmp.ckpt") as tmp:
            torch.save(checkpoint, tmp)


def atomic_checkpoint_io() -> AtomicCheckpointIO:
    """The checkpoint plugin for ``pl.Trainer(plugins=[...])``: atomic checkpoint files."""
    return AtomicCheckpointIO()


#: Lightning's loggers, at INFO only with progress
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
#: warnings that do not concern a modalens user (regular expressions of their messages)
IRRELEVANT_WARNINGS = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    ".*The number of training batches.*",
    ".*Checkpoint directory.*exists and is not empty.*",
    ".*No positive samples found in target.*",
    ".*treespec.*",
    ".*You're resuming from a checkpoint that ended before the epoch ended.*",
    ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    ".*overridden `on_after_batch_transfer` in `LightningModule` but have passed in a.*",
)


@contextmanager
def quiet_lightning(progress: bool) -> Iterator[None]:
    """Within: Lightning logs at INFO only with ``progress`` and :data:`IRRELEVANT_WARNINGS` are
    ignored; after: the warning filters and the loggers' levels are as before."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        for pattern in IRRELEVANT_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        for lg in loggers:
            lg.setLevel(logging.INFO if progress else logging.WARNING)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


class QuietLightning(pl.Callback):
    """:func:`quiet_lightning` from the trainer's set-up to its teardown (in every DDP
    process)."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self._scope: ExitStack | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.teardown(trainer, pl_module, stage)
        self._scope = ExitStack()
        self._scope.enter_context(quiet_lightning(self.progress))

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self._scope is not None:
            self._scope.close()
            self._scope = None
