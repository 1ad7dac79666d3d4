"""The tasks stage: the only code that knows what a task is (losses, metrics, heads, outputs).

- :mod:`.base` -- the :class:`Task` interface.
- :mod:`.regression`, :mod:`.segmentation`, :mod:`.classification` -- one task each.
- :mod:`.registry` -- tasks by name and by target kind (:func:`get_task`,
  :func:`task_for_target`).
- :mod:`.losses` -- the masked losses, per sample and pooled.
- :mod:`.weighting` -- :class:`LossWeighting`: fixed or learned (uncertainty) task weights.
"""

from .base import PredictionRaster, Task
from .classification import ClassificationTask
from .losses import masked_cross_entropy, masked_mae, masked_mse
from .registry import (
    TASKS,
    get_task,
    task_class,
    task_class_for_target,
    task_for_modality,
    task_for_target,
)
from .regression import RegressionTask
from .segmentation import SegmentationTask
from .weighting import WEIGHTINGS, LossWeighting

__all__ = [
    "TASKS",
    "WEIGHTINGS",
    "LossWeighting",
    "ClassificationTask",
    "PredictionRaster",
    "RegressionTask",
    "SegmentationTask",
    "Task",
    "get_task",
    "masked_cross_entropy",
    "masked_mae",
    "masked_mse",
    "task_class",
    "task_class_for_target",
    "task_for_modality",
    "task_for_target",
]
