"""The value checks of a run config's keys and the error they raise.

A validator here (used by :mod:`modalens.training.config` and
:mod:`modalens.training.auxconfig` inside pydantic ``BeforeValidator``\\ s) raises
:class:`~modalens.options.ConfigValueError`; :func:`modalens.training.config.config_error`
turns it into the one-line :class:`~modalens.errors.SpecError` naming the dotted key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import torch
from pydantic import BeforeValidator

from ..data.augment import Augmentation
from ..errors import ModalensError, SpecError
from ..options import ConfigValueError
from ..precision import parse_precision

#: ``train.optimizer``: name -> ``make(params, lr, weight_decay)`` (SGD with momentum 0.9)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, lr, weight_decay: torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay
    ),
    "adamw": lambda params, lr, weight_decay: torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay
    ),
    "sgd": lambda params, lr, weight_decay: torch.optim.SGD(
        params, lr=lr, momentum=0.9, weight_decay=weight_decay
    ),
}


SCHEDULERS = ("cosine_warm_restarts", "none")


#: ``train.strategy``: Lightning's choice or one of its DDP strategies
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_notebook")


def integer(minimum: int) -> BeforeValidator:
    """A validator of an integer ``>= minimum`` (a float with an integer value is accepted)."""
    return BeforeValidator(_integer_check(minimum))


def _integer_check(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigValueError(f"{{key}} must be an integer, got {value!r}")
        if int(value) < minimum:
            raise ConfigValueError(f"{{key}} must be >= {minimum}, got {value}")
        return int(value)

    return check


def number(positive: bool = False) -> BeforeValidator:
    """A validator of a float (``> 0`` when ``positive``)."""

    def check(value: Any) -> float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigValueError(f"{{key}} must be a number, got {value!r}") from None
        if positive and not out > 0:
            raise ConfigValueError(f"{{key}} must be > 0, got {value}")
        return out

    return BeforeValidator(check)


def optional_int(minimum: int) -> BeforeValidator:
    """A validator of None or an integer ``>= minimum``."""
    inner = _integer_check(minimum)
    return BeforeValidator(lambda value: None if value is None else inner(value))


def boolean(value: Any) -> bool:
    """``value`` when it is a bool (no truthy strings or numbers)."""
    if not isinstance(value, bool):
        raise ConfigValueError("{key} must be true or false", "write true or false")
    return value


def batches(value: Any) -> Any:
    """None, or a positive number of batches (an int) or share of them (a float)."""
    if value is not None and not (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    ):
        raise ConfigValueError(
            "{key} must be a positive number of batches (or a fraction)", "e.g. 50 or 0.25"
        )
    return value


def names(value: Any) -> Any:
    """A single name as a one-element list (lists pass through)."""
    return [value] if isinstance(value, str) else value


def optional_str(value: Any) -> Any:
    """None or ``str(value)``."""
    return None if value is None else str(value)


def one_of(value: Any, choices: tuple[str, ...], what: str) -> str:
    """``value`` in lower case when it is one of ``choices``, else a ConfigValueError naming
    ``what`` and the choices."""
    name = str(value).lower()
    if name not in choices:
        raise ConfigValueError(f"unknown {what} {name!r}", f"choose from {', '.join(choices)}")
    return name


def optimizer_name(value: Any) -> str:
    """One of :data:`OPTIMIZERS` (lower case)."""
    return one_of(value, tuple(OPTIMIZERS), "optimizer")


def scheduler_name(value: Any) -> str:
    """One of :data:`SCHEDULERS` (None and ``null`` mean ``none``)."""
    if value is None or str(value).lower() in ("none", "null"):
        return "none"
    if value not in SCHEDULERS:
        raise ConfigValueError(
            f"unknown scheduler {value!r}", f"choose from {', '.join(SCHEDULERS)}"
        )
    return str(value)


def precision_name(value: Any) -> str:
    """A precision in the canonical spelling of :func:`modalens.precision.parse_precision`."""
    try:
        return parse_precision(value, "train.precision")
    except SpecError as exc:
        raise ConfigValueError(exc.what, exc.fix or "fix it") from None


def device_count(value: Any) -> int | str:
    """``train.devices``: an integer ``>= 1`` or ``"auto"`` (every device Lightning finds)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigValueError(
            f"{{key}} must be an integer >= 1 or 'auto', got {value!r}", "e.g. devices: 2"
        )
    return value


def deterministic_mode(value: Any) -> bool | Literal["auto", "warn"] | None:
    """``train.deterministic``: true, false, ``auto``, ``warn`` or None (Lightning silently
    ignores any other string)."""
    if value is None or isinstance(value, bool) or value in ("auto", "warn"):
        return value
    raise ConfigValueError(
        f"{{key}} must be true, false, auto or warn, got {value!r}", "e.g. deterministic: auto"
    )


def strategy_name(value: Any) -> str:
    """``train.strategy``: one of :data:`STRATEGIES`."""
    return one_of(value, STRATEGIES, "strategy")


def augment_options(value: Any) -> Any:
    """None or an augmentation mapping that :class:`~modalens.data.augment.Augmentation`
    accepts (tried once on a dummy batch: kornia checks some options only when applied)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigValueError(
            "train.augment must be a mapping of augmentation options",
            "e.g. augment: {hflip: 0.5, vflip: 0.5}",
        )
    try:
        Augmentation(dict(value))(torch.zeros(1, 2, 32, 32), seed=0)
    except ModalensError as exc:
        raise ConfigValueError(str(exc), "") from None
    except Exception as exc:  # noqa: BLE001 - kornia's own validation errors
        raise ConfigValueError(
            f"invalid augmentation option: {exc}", "see modalens.augment for options"
        ) from None
    return dict(value)


def data_section(value: Any) -> Any:
    """None or a mapping (a dataset spec; a spec path was inlined before validation)."""
    if value is not None and not isinstance(value, Mapping):
        raise ConfigValueError(
            "'data' must be a dataset spec mapping or the path of a spec YAML",
            "see configs/demo.yaml",
        )
    return value


Int1 = Annotated[int, integer(1)]
Int0 = Annotated[int, integer(0)]
Bool = Annotated[bool, BeforeValidator(boolean)]
