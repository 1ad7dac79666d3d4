"""The training stage: run configs, the Lightning module, fit, run folders, evaluate, predict.

- :mod:`.config` -- typed run configs (:class:`RunConfig`, :func:`load_config`).
- :mod:`.runfolder` -- every artefact of a run folder and the resume rule (:class:`RunFolder`).
- :mod:`.module` -- :class:`TaskModule`, the Lightning module that asks its task.
- :mod:`.callbacks` -- per-epoch metrics table, atomic checkpoints, quiet logs.
- :mod:`.fit` -- :func:`fit`: config -> trained run folder (resumable; DDP on several
  devices and nodes).
- :mod:`.fitdata` -- :class:`FitDataModule`: the run's loaders for the trainer's rank.
- :mod:`.ranks` -- the process's rank before the trainer exists; waiting for rank 0's files.
- :mod:`.run` -- :func:`load_run`, :class:`Run`, checkpoints checked against the data.
- :mod:`.evaluate` -- :func:`evaluate`: ``metrics_<split>.csv``.
- :mod:`.tiling` -- :func:`sliding_window` over whole scenes.
- :mod:`.predict` -- :func:`predict`: one file per scene.
"""

from .config import (
    ModelConfig,
    RunConfig,
    SchedulerConfig,
    TrainConfig,
    load_config,
    spec_from_config,
)
from .evaluate import evaluate
from .evaluate import test as test  # deprecated alias (not in __all__)
from .fit import fit
from .module import TaskModule
from .predict import predict
from .run import Run, load_run
from .runfolder import RunFolder
from .tiling import sliding_window

__all__ = [
    "evaluate",
    "fit",
    "load_config",
    "load_run",
    "ModelConfig",
    "predict",
    "Run",
    "RunConfig",
    "RunFolder",
    "SchedulerConfig",
    "sliding_window",
    "spec_from_config",
    "TaskModule",
    "TrainConfig",
]
