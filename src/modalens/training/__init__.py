"""The training stage: run configs, the Lightning module, fit, run folders, evaluate, predict."""

from .config import DEFAULT_CONFIG, load_config, spec_from_config
from .evaluate import test
from .fit import fit
from .module import TaskModule, build_module, make_tile_fn
from .predict import InputReader, predict
from .run import Run, check_layout, load_checkpoint, load_run
from .tiling import sliding_window

__all__ = [
    "DEFAULT_CONFIG",
    "InputReader",
    "Run",
    "TaskModule",
    "build_module",
    "check_layout",
    "fit",
    "load_checkpoint",
    "load_config",
    "load_run",
    "make_tile_fn",
    "predict",
    "sliding_window",
    "spec_from_config",
    "test",
]
