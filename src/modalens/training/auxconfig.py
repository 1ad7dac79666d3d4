"""The ``auxiliary:`` section of a run config: modalities predicted as auxiliary tasks.

A run config that names auxiliary modalities trains a multitask model: the model sees only the
other (input) modalities -- ``inputs: [s2]`` (a synonym of ``use``), or every modality not
auxiliary -- and predicts each auxiliary modality from its shared encoder with a head of its
own, beside the main target::

    inputs: [s2]
    auxiliary:
      targets: [s1, viirs, esa_wc]        # or {s1: {loss: mse, weight: 0.5}, viirs: {}, ...}
      weighting: fixed                    # or uncertainty (Kendall et al. 2018, learned)
      decoder: shared                     # or separate (one decoder per auxiliary head)
      loss: mae                           # default loss of continuous modalities (mae | mse)
      weight: 1.0                         # default fixed weight of an auxiliary loss

Continuous modalities are regressed on their normalised values (the run's train-split
statistics) with masked L1 (``mae``) or MSE; categorical ones are segmented into their classes
with cross-entropy (``ce``). :func:`modalens.training.config.load_config` fills each target's
``loss`` and ``weight`` from the section defaults, so a saved ``config.yaml`` spells them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..models.multitask import DECODERS
from ..tasks.weighting import WEIGHTINGS
from .configvalues import ConfigValueError

#: losses of continuous auxiliary modalities (the first is the default)
CONTINUOUS_LOSSES = ("mae", "mse")


def _choice(options: tuple[str, ...]) -> BeforeValidator:
    def check(value: Any) -> str:
        if str(value) not in options:
            raise ConfigValueError(
                f"{{key}} must be one of {', '.join(options)}, got {value!r}",
                f"choose from {', '.join(options)}",
            )
        return str(value)

    return BeforeValidator(check)


def _optional_loss(value: Any) -> Any:
    if value is None:
        return None
    if str(value) not in (*CONTINUOUS_LOSSES, "ce"):
        raise ConfigValueError(
            f"unknown auxiliary loss {value!r}", "use mae or mse (continuous), ce (categorical)"
        )
    return str(value)


def _weight(value: Any) -> Any:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigValueError(f"{{key}} must be a number, got {value!r}", "e.g. 0.5") from None
    if isinstance(value, bool) or not out >= 0:
        raise ConfigValueError(f"{{key}} must be a number >= 0, got {value!r}", "e.g. 0.5")
    return out


def _targets(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, str) and v for v in value):
            raise ConfigValueError(
                "{key} must list modality names", "e.g. targets: [s1, viirs, esa_wc]"
            )
        if len(set(value)) != len(value):
            raise ConfigValueError("{key} names a modality twice", "name each modality once")
        value = {v: {} for v in value}
    if not isinstance(value, Mapping) or not value:
        raise ConfigValueError(
            "{key} must name at least one modality",
            "e.g. targets: [s1, viirs] or targets: {s1: {weight: 0.5}}",
        )
    return {str(k): ({} if v is None else v) for k, v in value.items()}


class AuxiliaryTarget(BaseModel):
    """``auxiliary.targets.<modality>:`` the loss and fixed weight of one auxiliary head."""

    model_config = ConfigDict(extra="forbid")

    #: mae | mse (continuous modalities), ce (categorical); None: the section's default
    loss: Annotated[str | None, BeforeValidator(_optional_loss)] = None
    #: weight of the loss with fixed weighting; None: the section's default
    weight: Annotated[float | None, BeforeValidator(_weight)] = None


class AuxiliaryConfig(BaseModel):
    """``auxiliary:`` which modalities are predicted and how their losses combine."""

    model_config = ConfigDict(extra="forbid")

    targets: Annotated[dict[str, AuxiliaryTarget], BeforeValidator(_targets)] = Field(
        default_factory=dict
    )
    weighting: Annotated[str, _choice(WEIGHTINGS)] = WEIGHTINGS[0]
    decoder: Annotated[str, _choice(DECODERS)] = DECODERS[0]
    loss: Annotated[str, _choice(CONTINUOUS_LOSSES)] = CONTINUOUS_LOSSES[0]
    weight: Annotated[float, BeforeValidator(_weight)] = 1.0

    @property
    def names(self) -> list[str]:
        """The auxiliary modalities in order."""
        return list(self.targets)

    def head_settings(self, name: str, categorical: bool) -> tuple[str, float]:
        """``(loss, weight)`` of auxiliary target ``name`` with the section's defaults."""
        t = self.targets[name]
        loss = t.loss if t.loss is not None else ("ce" if categorical else self.loss)
        return loss, float(t.weight if t.weight is not None else self.weight)
