"""The Task abstraction: everything that differs between regression, segmentation and scene
classification, behind one interface.

A :class:`Task` knows, for one kind of target:

- its ``name``, the ``target_kind`` it serves and its ``losses`` (the first is the default);
- the model it needs: the number of output channels (from the target), the ``head`` (a dense
  per-pixel map or pooled scene logits) and the output :meth:`~Task.activation`
  (:meth:`~Task.build_model`);
- its masked losses (:mod:`modalens.tasks.losses`): :meth:`~Task.loss` per sample ``-> [B]``
  (the occlusion framework's ``loss`` level) and :meth:`~Task.pooled_loss` ``-> (loss, n)``
  (training);
- :meth:`~Task.score`: the training/evaluation step's loss and the flattened predictions and
  targets its metrics consume;
- its metrics: a torchmetrics collection for train/val and the pooled test row
  (:meth:`~Task.metrics`), plain per-sample values for the test table
  (:meth:`~Task.sample_metrics`), and the :attr:`~Task.headline` metric among them;
- output post-processing: :meth:`~Task.postprocess` (probabilities for class tasks, used by
  the tile function and prediction) and what :func:`modalens.training.predict` writes
  (:meth:`~Task.prediction_raster` for dense tasks, :meth:`~Task.scene_prediction` for scene
  labels).

Subclasses live one per module (:mod:`.regression`, :mod:`.segmentation`,
:mod:`.classification`); :mod:`.registry` picks one from a name or a target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from ..data.spec import TargetSpec
from ..errors import ModelError
from ..models.multitask import MultiTaskUNet
from ..models.unet import DENSE_HEAD, UNet


@dataclass
class PredictionRaster:
    """One scene's prediction of a dense task, as :func:`modalens.training.predict` writes it.

    Attributes:
        array: ``[bands, H, W]`` or ``[H, W]`` values to write.
        nodata: the no-data value written where the scene is invalid.
        band_names: one name per band.
        tags: GeoTIFF metadata tags.
    """

    array: np.ndarray
    nodata: float
    band_names: list[str]
    tags: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """One task: losses, metrics, model head and outputs (see the module docstring).

    Args:
        n_outputs: output channels of the model (1 for regression, classes or labels else).
        loss: one of :attr:`losses`; None takes :meth:`default_loss`.

    Raises:
        ModelError: ``loss`` is not available for this task.
    """

    #: the task's name (``regression``, ``segmentation``, ``classification``)
    name: ClassVar[str]
    #: the :class:`~modalens.data.spec.TargetSpec` kind this task learns
    target_kind: ClassVar[str]
    #: the loss names available; the first is the default
    losses: ClassVar[tuple[str, ...]]
    #: the model head: a dense per-pixel map or pooled scene logits (:mod:`modalens.models.unet`)
    head: ClassVar[str]
    #: candidates for the headline metric, most specific first: the headline is the first one
    #: the task's metrics hold (:attr:`headline`, :func:`~.headline.headline_metric`)
    headlines: ClassVar[tuple[str, ...]]

    def __init__(self, n_outputs: int = 1, loss: str | None = None) -> None:
        loss = self.default_loss() if loss is None else loss
        if loss not in self.losses:
            raise ModelError(
                f"loss {loss!r} is not available for task {self.name!r}",
                "train.loss",
                f"choose from {', '.join(self.losses)}",
            )
        self.n_outputs = int(n_outputs)
        self.loss_name = loss
        #: readable labels of the classes (``("dry", "water")``), used in metric names; None:
        #: the class indices (:meth:`named`)
        self.class_labels: tuple[str, ...] | None = None

    def named(self, labels: Sequence[Any] | None) -> Task:
        """This task with readable class ``labels`` (one per output; None or a wrong count
        keeps the class indices); returns ``self``."""
        if labels is not None and len(labels) == self.n_outputs:
            self.class_labels = tuple(str(x) for x in labels)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_outputs={self.n_outputs}, loss={self.loss_name!r})"

    # ------------------------------------------------------------------ what the task needs
    @classmethod
    def default_loss(cls, target: TargetSpec | None = None) -> str:
        """The loss used when the config names none (``target`` may refine it)."""
        return cls.losses[0]

    @classmethod
    def outputs_for(cls, target: TargetSpec) -> int:
        """Output channels the model needs for ``target``."""
        return target.n_outputs

    @property
    def multilabel(self) -> bool:
        """Scene labels scored independently (sigmoid) rather than as one class (softmax)."""
        return False

    @property
    def dense(self) -> bool:
        """The model predicts a per-pixel map (False: one output vector per scene)."""
        return self.head == DENSE_HEAD

    def activation(self) -> nn.Module:
        """The module applied to the model's head output (identity unless the task says)."""
        return nn.Identity()

    def build_model(
        self,
        in_channels: int,
        base_width: int = 64,
        depth: int = 4,
        auxiliary: Mapping[str, int] | None = None,
        decoder: str = "shared",
    ) -> UNet:
        """The :class:`~modalens.models.UNet` this task trains: :attr:`n_outputs` channels,
        the task's :attr:`head` and :meth:`activation`; with ``auxiliary`` (output channels
        per auxiliary task) a :class:`~modalens.models.MultiTaskUNet` whose auxiliary heads
        sit on a ``shared`` or ``separate`` decoder."""
        if auxiliary:
            return MultiTaskUNet(
                in_channels,
                self.n_outputs,
                base_width,
                depth,
                head=self.head,
                activation=self.activation(),
                auxiliary=auxiliary,
                decoder=decoder,
            )
        return UNet(
            in_channels,
            self.n_outputs,
            base_width,
            depth,
            head=self.head,
            activation=self.activation(),
        )

    # ------------------------------------------------------------------ losses
    @abstractmethod
    def loss(self, output: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """Per-sample loss ``[B]`` over the valid pixels of each sample.

        Args:
            output: the model's output (``[B, K, H, W]`` dense, ``[B, K]`` scene).
            target: the batch's target (as :class:`~modalens.data.MultimodalDataset` gives it).
            valid: bool ``[B, H, W]`` (None: every pixel is valid).
        """

    @abstractmethod
    def pooled_loss(self, output: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """The training loss over the batch's valid units (pixels; samples for scene tasks)
        and their number ``n`` (the weight of the batch in the epoch mean)."""

    @abstractmethod
    def score(self, output: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """``loss`` and ``n`` (:meth:`pooled_loss`) and the ``preds``/``targets`` the metrics
        consume, flattened over the valid pixels (samples for scene tasks)."""

    # ------------------------------------------------------------------ metrics
    @abstractmethod
    def metric_dict(self) -> dict[str, Metric]:
        """Fresh torchmetrics metrics by name."""

    @classmethod
    def headline_among(cls, names: Sequence[str]) -> str | None:
        """The headline among the metric names of a table (its columns, in order): the first
        of :attr:`headlines` there, or None."""
        return next((m for m in cls.headlines if m in names), None)

    @property
    def headline(self) -> str:
        """The metric this task reports first: the first of :attr:`headlines` among
        :meth:`metric_dict`'s names."""
        names = self.metric_dict()
        return next(m for m in self.headlines if m in names)

    def metrics(self, prefix: str | None = None) -> MetricCollection:
        """A torchmetrics collection of :meth:`metric_dict` (names prefixed with ``prefix``)."""
        # torchmetrics annotates an (invariant) dict of Metric | MetricCollection
        return MetricCollection(self.metric_dict(), prefix=prefix)  # type: ignore[arg-type]

    def sample_metrics(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """Metrics of one sample's ``preds``/``targets`` from :meth:`score` (empty when the
        sample has no valid unit)."""
        if preds.shape[0] == 0:
            return {}
        return self.sample_metric_values(preds, targets)

    @abstractmethod
    def sample_metric_values(self, preds: Tensor, targets: Tensor) -> dict[str, float]:
        """:meth:`sample_metrics` of a sample with at least one valid unit."""

    # ------------------------------------------------------------------ outputs
    def postprocess(self, output: Tensor) -> Tensor:
        """The model's float output as the task reports it (identity; probabilities for class
        tasks)."""
        return output

    def prediction_raster(
        self, scores: np.ndarray, valid: np.ndarray, target: TargetSpec
    ) -> PredictionRaster:
        """What to write for a scene of a dense task.

        Args:
            scores: blended :meth:`postprocess` outputs ``[K, H, W]`` (may be modified in place).
            valid: bool ``[H, W]``, where the scene's inputs are valid.
            target: the run's target (scale, class codes).

        Raises:
            ModelError: the task predicts scenes, not maps.
        """
        raise ModelError(f"task {self.name!r} does not predict maps", None, "use scene_prediction")

    def scene_prediction(self, probabilities: Tensor, classes: Sequence[Any] | None) -> dict:
        """What to write for a scene of a scene-level task (labels and their probabilities).

        Raises:
            ModelError: the task predicts maps, not scene labels.
        """
        raise ModelError(
            f"task {self.name!r} does not predict scene labels", None, "use prediction_raster"
        )


def run_class_labels(meta: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The readable class labels of a run's main target from its checkpoint ``meta``: the
    spec's ``class_names``, else the class codes (None for a target without classes)."""
    if not meta:
        return None
    spec = meta.get("spec") or {}
    target = spec.get("target") or next(iter((spec.get("targets") or {}).values()), None) or {}
    labels = target.get("class_names") or meta.get("classes")
    return tuple(str(x) for x in labels) if labels else None
