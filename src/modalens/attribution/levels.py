"""Levels: where the effect of an occlusion is measured, one registered function each.

- ``embedding`` (the paper): distance between the embeddings of the full and the occluded
  input. The embedding is our U-Net's ``encode()`` bottleneck (only the encoder runs),
  ``embed()``, the output of any named submodule (a forward hook; the forward is cut short
  after it when the output is not needed) or a callable ``fn(model, x)`` (see
  :mod:`modalens.attribution.forward`).
- ``output``: distance between the predictions, over valid pixels when a ``valid`` mask
  ``[B, H, W]`` is given.
- ``loss``: ``loss(occluded) - loss(full)`` against the target with a per-sample
  ``loss_fn(pred, target, valid) -> [B]`` (default: masked MSE); its distance label is
  ``"loss"``.

A level is a function ``fn(inputs: LevelInputs) -> [n, k]`` (float64; ``k`` = the number of
distances when the level ``uses_distances``, else 1) registered with :func:`register_level`
and its properties: ``needs`` (``"embedding"`` or ``"output"``: what the forward must
produce), ``uses_distances``, ``needs_target``, an optional ``reference(full, loss_fn)``
computed once per batch on the unoccluded inputs (the full-input loss) and ``bounded``:
whether ``precision="auto"`` may keep the level's scores in bf16 (not the ``loss`` level's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..errors import DataError, SpecError
from .batches import Evaluation
from .distances import distances
from .registry import Registry

#: ``loss_fn(pred, target, valid) -> [B]``: a per-sample loss
LossFn = Callable[..., Tensor]


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class LevelInputs:
    """What a level function gets for one chunk of occluded inputs.

    Attributes:
        full: the unoccluded evaluation of the whole batch (``target``/``valid`` on the
            output's device).
        occluded: the chunk's evaluation; ``sample`` holds the batch row of each input,
            ``target``/``valid`` are those rows' (``target`` only for levels that need it).
        reference: this level's reference of the whole batch (``[B]``), or None.
        distances: the distance names asked for.
        loss_fn: the per-sample loss.
    """

    full: Evaluation
    occluded: Evaluation
    reference: Tensor | None
    distances: Sequence[str]
    loss_fn: LossFn


#: ``fn(inputs) -> [n, k]`` float64
LevelFn = Callable[[LevelInputs], np.ndarray]
#: ``reference(full, loss_fn) -> [B]``
ReferenceFn = Callable[[Evaluation, LossFn], Tensor]


@dataclass(frozen=True)
class Level:
    """A registered level: its function and properties (see the module docstring)."""

    name: str
    fn: LevelFn
    help: str
    needs: str = "output"
    uses_distances: bool = True
    needs_target: bool = False
    reference: ReferenceFn | None = None
    bounded: bool = True


LEVELS: Registry[Level] = Registry("level", "levels", "--level")


def register_level(
    name: str,
    *,
    help: str,
    needs: str = "output",
    uses_distances: bool = True,
    needs_target: bool = False,
    reference: ReferenceFn | None = None,
    bounded: bool = True,
) -> Callable[[LevelFn], LevelFn]:
    """Decorator registering ``fn(inputs: LevelInputs) -> [n, k]`` as level ``name``.

    Args:
        name: the name given to ``levels=`` / ``--level``.
        help: one line for ``--help``.
        needs: ``"embedding"`` or ``"output"``.
        uses_distances: one column per distance (else one column labelled ``name``).
        needs_target: the batches must have targets.
        reference: computed once per batch on the unoccluded inputs.
        bounded: under ``precision="auto"``, the bf16 error of the level's scores is bounded
            by the level's own score of the unoccluded input's bf16 and fp32 evaluations
            (:mod:`~.autoprec`); False: its scores run in fp32.

    Returns:
        The decorator (it returns the function unchanged).

    Raises:
        SpecError: the name is taken or malformed, or ``needs`` is neither.
    """
    if needs not in ("embedding", "output"):
        raise SpecError(f"level {name!r} needs {needs!r}", "needs", "use embedding or output")

    def decorate(fn: LevelFn) -> LevelFn:
        level = Level(name, fn, help, needs, uses_distances, needs_target, reference, bounded)
        LEVELS.add(level)
        return fn

    return decorate


def _need_target(target: Tensor | None) -> Tensor:
    if target is None:
        raise DataError(
            "level 'loss' needs targets but the batch has none",
            "levels",
            "give batches with a 'target' or drop the loss level",
        )
    return target


@register_level("embedding", needs="embedding", help="distance of the embeddings (paper)")
def embedding(inputs: LevelInputs) -> np.ndarray:
    """Distances between the full and the occluded embeddings."""
    full, occ = inputs.full.embedding, inputs.occluded.embedding
    assert full is not None and occ is not None
    return distances(full[inputs.occluded.sample], occ, inputs.distances)


@register_level("output", help="distance of the predictions over valid pixels")
def output(inputs: LevelInputs) -> np.ndarray:
    """Distances between the full and the occluded predictions (valid elements only)."""
    full, occ = inputs.full.output, inputs.occluded.output
    assert full is not None and occ is not None
    return distances(full[inputs.occluded.sample], occ, inputs.distances, inputs.occluded.valid)


def full_loss(full: Evaluation, loss_fn: LossFn) -> Tensor:
    """The per-sample loss of the unoccluded inputs (the ``loss`` level's reference).

    Raises:
        DataError: the batch has no targets.
    """
    target = _need_target(full.target)
    assert full.output is not None
    return loss_fn(full.output, target, full.valid).detach()


@register_level(
    "loss",
    uses_distances=False,
    needs_target=True,
    reference=full_loss,
    bounded=False,  # a loss difference's bf16 error is not bounded by the full loss's
    help="loss(occluded) - loss(full) against the target",
)
def loss(inputs: LevelInputs) -> np.ndarray:
    """Increase of the per-sample loss when the groups are occluded."""
    occ = inputs.occluded
    assert occ.output is not None and inputs.reference is not None
    value = inputs.loss_fn(occ.output, _need_target(occ.target), occ.valid)
    ref = inputs.reference[occ.sample]
    return (value.double().cpu() - ref.double().cpu()).numpy()[:, None]
