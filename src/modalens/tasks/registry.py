"""Which task learns which target: the task registry.

Tasks are registered by name (:data:`TASKS`); the task of a dataset follows its main target's
kind: ``continuous`` -> ``regression``, ``classes`` -> ``segmentation``, ``scene_labels`` ->
``classification``. :func:`task_for_target` builds the task of a target (outputs and default
loss from the target); :func:`get_task` rebuilds one from a checkpoint's saved name, output
count and loss. :func:`task_for_modality` is the task of an auxiliary modality predicted as a
target (regression of its normalised bands, or segmentation into its classes).
"""

from __future__ import annotations

from ..data.auxiliary import auxiliary_outputs
from ..data.spec import Modality, TargetSpec
from ..errors import ModelError
from .base import Task
from .classification import ClassificationTask
from .regression import RegressionTask
from .segmentation import SegmentationTask

#: task classes by name
TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (RegressionTask, SegmentationTask, ClassificationTask)
}


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name``.

    Raises:
        ModelError: no task has that name.
    """
    cls = TASKS.get(str(name))
    if cls is None:
        raise ModelError(f"unknown task {name!r}", None, f"use {', '.join(TASKS)}")
    return cls


def task_class_for_target(target: TargetSpec) -> type[Task]:
    """The task class that learns targets of ``target``'s kind.

    Raises:
        ModelError: no task learns that kind.
    """
    for cls in TASKS.values():
        if cls.target_kind == target.kind:
            return cls
    raise ModelError(
        f"no task learns a {target.kind!r} target",
        None,
        f"use a target of kind {', '.join(c.target_kind for c in TASKS.values())}",
    )


def get_task(name: str, n_outputs: int = 1, loss: str | None = None) -> Task:
    """The task ``name`` with ``n_outputs`` output channels and loss ``loss`` (None: the
    task's default).

    Args:
        name: ``regression``, ``segmentation`` or ``classification``.
        n_outputs: output channels of the model.
        loss: a loss name of the task.

    Returns:
        The :class:`Task`.

    Raises:
        ModelError: unknown task or a loss the task does not have.
    """
    return task_class(name)(n_outputs, loss)


def task_for_target(target: TargetSpec, loss: str | None = None) -> Task:
    """The task that learns ``target``.

    Args:
        target: the dataset's (main) target.
        loss: a loss name of the task; None takes the default for the target (e.g. ``ce`` for
            a single-label scene target).

    Returns:
        The :class:`Task`, with the target's number of outputs.

    Raises:
        ModelError: no task learns the target's kind, or ``loss`` is not the task's.
    """
    cls = task_class_for_target(target)
    task = cls(cls.outputs_for(target), loss if loss is not None else cls.default_loss(target))
    return task.named(target.class_names or target.classes)


def task_for_modality(modality: Modality, loss: str | None = None) -> Task:
    """The task that predicts an auxiliary modality from the shared encoder.

    Args:
        modality: the auxiliary modality.
        loss: ``mae`` (default) or ``mse`` for a continuous modality (on its normalised
            values), ``ce`` for a categorical one.

    Returns:
        A :class:`RegressionTask` with one output per band, or a :class:`SegmentationTask` with
        one output per class.

    Raises:
        ModelError: ``loss`` does not fit the modality's kind.
    """
    cls = SegmentationTask if modality.is_categorical else RegressionTask
    loss = loss if loss is not None else ("ce" if modality.is_categorical else "mae")
    if loss not in cls.losses:
        raise ModelError(
            f"loss {loss!r} does not fit the {modality.kind} modality {modality.name!r}",
            f"auxiliary.targets.{modality.name}.loss",
            f"choose from {', '.join(cls.losses)}",
        )
    return cls(auxiliary_outputs(modality), loss)
