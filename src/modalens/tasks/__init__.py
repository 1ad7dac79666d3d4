"""The tasks stage: the only code that knows what a task is (losses, metrics, heads, outputs).

- :mod:`.base` -- the :class:`Task` interface.
- :mod:`.regression`, :mod:`.segmentation`, :mod:`.classification` -- one task each.
- :mod:`.registry` -- tasks by name and by target kind (:func:`get_task`,
  :func:`task_for_target`).
- :mod:`.losses` -- the masked losses, per sample and pooled.
- :mod:`.weighting` -- :class:`LossWeighting`: fixed or learned (uncertainty) task weights.
- :mod:`.headline` -- which way a metric improves (:func:`lower_is_better`, :func:`worse_by`)
  and a task's headline metric (:func:`headline_metric`).
"""

from .base import Task
from .classification import ClassificationTask
from .headline import headline_metric, lower_is_better
from .losses import masked_cross_entropy, masked_mae, masked_mse
from .registry import TASKS, get_task
from .regression import RegressionTask
from .segmentation import SegmentationTask
from .weighting import LossWeighting

__all__ = [
    "ClassificationTask",
    "get_task",
    "headline_metric",
    "LossWeighting",
    "lower_is_better",
    "masked_cross_entropy",
    "masked_mae",
    "masked_mse",
    "RegressionTask",
    "SegmentationTask",
    "Task",
    "TASKS",
]
