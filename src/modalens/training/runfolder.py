"""A run folder: the name of every artefact of a run, and the rule for resuming one.

:func:`modalens.training.fit` writes, and every later step reads, one folder per run::

    config.yaml                 the resolved run config (defaults filled in)
    dataset.yaml                the dataset spec after modality selection
    stats.json                  train-split normalisation statistics (``normalization``: which
                                standardisation each modality used: train split or constants)
    masking.csv                 per split: shares of pixels that leave the loss, values filled
    provenance.json             what trained it: package version, torch thread count (and
                                ``earlier_threads`` of a run resumed at another count), data
                                identity (sample ids, files' sizes and modification times)
    checkpoints/best.ckpt       lowest validation loss
    checkpoints/last.ckpt       the end of the last finished epoch (resume point)
    metrics.csv                 one row per epoch: train/val loss and metrics, learning rate
    state.json                  how training ended: running, finished, early_stopped,
                                interrupted or failed, epochs finished of planned (absent in
                                runs from before the record: state unknown)
    metrics_<split>.csv         ``modalens test``: pooled row and one row per sample
    predictions/                ``modalens predict``: one file per scene
    attribution/<split>/        ``modalens attribute``: scores, summary, figure
    occlusion_maps/             ``modalens maps``: sensitivity GeoTIFFs and previews

:class:`RunFolder` names these paths (nothing else spells them) and owns the resume rule: a run
may be continued only with the config it was started with, except for :data:`RESUMABLE_KEYS`
(checked key by key by :func:`modalens.fingerprint.require_same`, the project's one rule for
reusing earlier work) -- and ``provenance.json`` must name the same package version and data
(:meth:`RunFolder.record_provenance`; another thread count warns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..fingerprint import check_provenance, require_same
from ..io import atomic_write_json
from .config import RunConfig, load_config
from .runstate import STATE_FILE

#: keys that may change when a run is resumed (everything else must match the saved config)
RESUMABLE_KEYS = frozenset(
    {
        "train.epochs",
        "train.num_workers",
        "train.patience",
        "train.limit_val_batches",
        "train.accelerator",
        "train.devices",
        "train.num_nodes",
        "train.strategy",
        "data.root",
    }
)


class RunFolder:
    """The files of one run (see the module docstring).

    Args:
        path: the run folder (it need not exist yet).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ artefacts
    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved run config."""
        return self.path / "config.yaml"

    @property
    def dataset(self) -> Path:
        """``dataset.yaml``: the dataset spec after modality selection."""
        return self.path / "dataset.yaml"

    @property
    def stats(self) -> Path:
        """``stats.json``: train-split normalisation statistics."""
        return self.path / "stats.json"

    @property
    def masking(self) -> Path:
        """``masking.csv``: per split, how much training masks and fills
        (:func:`modalens.data.coverage.masking_report`)."""
        return self.path / "masking.csv"

    @property
    def provenance(self) -> Path:
        """``provenance.json``: what trained the run (:meth:`record_provenance`)."""
        return self.path / "provenance.json"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``."""
        return self.path / "checkpoints"

    def checkpoint(self, name: str = "best") -> Path:
        """``checkpoints/<name>.ckpt`` (``best`` or ``last``)."""
        return self.checkpoints / f"{name}.ckpt"

    @property
    def best(self) -> Path:
        """``checkpoints/best.ckpt``: the weights with the lowest validation loss."""
        return self.checkpoint("best")

    @property
    def last(self) -> Path:
        """``checkpoints/last.ckpt``: the end of the last finished epoch."""
        return self.checkpoint("last")

    @property
    def metrics(self) -> Path:
        """``metrics.csv``: one row per epoch."""
        return self.path / "metrics.csv"

    @property
    def state(self) -> Path:
        """``state.json``: how training ended (:mod:`.runstate`)."""
        return self.path / STATE_FILE

    def test_metrics(self, split: str = "test") -> Path:
        """``metrics_<split>.csv``: the evaluation table of ``split``."""
        return self.path / f"metrics_{split}.csv"

    @property
    def predictions(self) -> Path:
        """``predictions/``: the default output folder of ``predict``."""
        return self.path / "predictions"

    def attribution(self, split: str = "test", label: str = "") -> Path:
        """``attribution/<split>/``: the default output folder of ``attribute`` with its default
        options; ``attribution/<split>-<label>/`` for other options (``label`` names them)."""
        return self.path / "attribution" / (f"{split}-{label}" if label else split)

    def attributions(self, split: str = "test") -> list[Path]:
        """The finished attributions of ``split`` (folders with ``scores.parquet``): the one of
        the default options first, then the others, newest first."""
        default = self.attribution(split)
        others = sorted(
            (
                p
                for p in self.path.glob(f"attribution/{split}-*")
                if (p / "scores.parquet").is_file()
            ),
            key=lambda p: (p / "scores.parquet").stat().st_mtime,
            reverse=True,
        )
        return ([default] if (default / "scores.parquet").is_file() else []) + others

    @property
    def occlusion_maps(self) -> Path:
        """``occlusion_maps/``: the default output folder of ``maps``."""
        return self.path / "occlusion_maps"

    # ------------------------------------------------------------------ state
    def is_empty(self) -> bool:
        """True when the folder does not exist or holds no file (empty sub-folders, e.g. those
        a run that failed at its first write left, hold no work)."""
        return not self.path.exists() or not any(p.is_file() for p in self.path.rglob("*"))

    def saved_config(self) -> RunConfig:
        """The run's ``config.yaml``, loaded and validated.

        Raises:
            ModelError: the folder has no ``config.yaml`` (it is not a run folder).
            SpecError: the saved config is invalid.
        """
        if not self.config.exists():
            raise ModelError(
                "not a run folder (no config.yaml)", str(self.path), "give the folder fit wrote"
            )
        return load_config(self.config)

    def check_resumable(self, config: RunConfig) -> None:
        """Refuse to resume the run with a config that differs from its saved one in a key
        outside :data:`RESUMABLE_KEYS`.

        Args:
            config: the resolved config of the resume request.

        Raises:
            ModelError: the folder has no saved config.
            SpecError: a key differs; the message names it, both values and ``config.yaml``.
        """
        require_same(
            self.saved_config().to_dict(),
            config.to_dict(),
            what="cannot resume: a config key differs from the run's",
            where=str(self.config),
            fix="resume with the run's own config or start a new run with another --out",
            ignore=RESUMABLE_KEYS,
        )

    def saved_provenance(self) -> dict[str, Any] | None:
        """The content of ``provenance.json`` (None: a run from before it was written, or an
        unreadable file)."""
        try:
            saved = json.loads(self.provenance.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return saved if isinstance(saved, dict) else None

    def record_provenance(
        self, current: Mapping[str, Any], resume: bool = False, write: bool = True
    ) -> None:
        """Write ``provenance.json`` (:func:`modalens.fingerprint.provenance`); resuming, first
        compare it with the saved one: another package version or other data refuse, another
        torch thread count warns (:func:`~modalens.fingerprint.note_threads`) and is kept as
        ``earlier_threads``.

        Args:
            current: the provenance of this call.
            resume: the run is continued (or, with ``write=False``, reused as it is).
            write: write ``provenance.json`` (False: a finished run is only checked).

        Raises:
            SpecError: the saved provenance differs in another key than the thread count.
        """
        saved = self.saved_provenance() if resume else None
        record = check_provenance(
            saved,
            current,
            what="cannot resume: the run was trained with other data or another modalens",
            where=str(self.provenance),
            fix="restore what it names (copy data with their times kept: cp -a) or start a new "
            "run with another --out",
            about=f"the run {self.path}",
        )
        if write:
            atomic_write_json(self.provenance, record)
