"""What a synthetic dataset plants: importances per modality, sparse modalities and the decoy.

:func:`parse_importance` reads the CLI's ``s2=0.4,s1=0.3,...`` form (``decoy=0`` asks for the
decoy modality of pure noise), :func:`normalize_importance` checks and normalises the weights
(:func:`normalization_note` says how, when they do not sum to 1),
:func:`parse_sparsity` reads ``viirs=0.75`` (the share of pixels where a modality's own signal
is absent) and :func:`wants_decoy` tells whether an importance names the decoy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import SpecError
from .scenes import DECOY
from .signals import MODALITIES

DEFAULT_IMPORTANCE = {"s2": 0.4, "s1": 0.3, "esa_wc": 0.2, "viirs": 0.1}


def _importance_error(what: str, fix: str | None = None) -> SpecError:
    return SpecError(
        what,
        "--importance",
        fix or "write e.g. s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1 (keys s2, s1, esa_wc, viirs, decoy)",
    )


def _items(text: str, option: str, error: Any) -> list[tuple[str, str]]:
    """``KEY=VALUE`` pairs of a comma-separated option string."""
    if not isinstance(text, str) or not text.strip():
        raise error(f"empty {option} string")
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise error(f"bad {option} item {part!r}: expected MODALITY=VALUE")
        out.append((key, value.strip()))
    if not out:
        raise error(f"empty {option} string")
    return out


def parse_importance(text: str) -> dict[str, float]:
    """Parse ``"s2=0.5,s1=0.5"`` into ``{"s2": 0.5, "s1": 0.5}`` (not normalised).

    ``decoy=0`` is accepted (it asks for the decoy modality, whose importance is 0 by
    construction). Raises :class:`SpecError` on bad syntax, an unknown modality, a repeated key,
    a negative or non-finite value or a decoy weight other than 0.
    """
    out: dict[str, float] = {}
    for key, value in _items(text, "importance", _importance_error):
        if key not in MODALITIES and key != DECOY:
            raise _importance_error(f"unknown modality {key!r} in importance")
        if key in out:
            raise _importance_error(f"modality {key!r} given twice in importance")
        try:
            out[key] = float(value)
        except ValueError:
            raise _importance_error(f"importance of {key!r} is not a number: {value!r}") from None
        _check_weight(key, out[key])
    return out


def _check_weight(key: str, value: float) -> None:
    if not math.isfinite(value):
        raise _importance_error(f"importance of {key!r} is not finite: {value}")
    if value < 0:
        raise _importance_error(
            f"importance of {key!r} is negative: {value}",
            f"give {key} a weight >= 0, e.g. {key}=0.2 (0 plants no own information)",
        )
    if key == DECOY and value != 0:
        raise _importance_error(
            f"the decoy's importance is {value}, but the decoy is pure noise",
            "write decoy=0 (or give a real modality weight 0 to make it a decoy)",
        )


def wants_decoy(importance: Mapping[str, float] | str | None) -> bool:
    """Whether an importance (mapping or CLI string) names the decoy modality."""
    if isinstance(importance, str):
        importance = parse_importance(importance)
    return isinstance(importance, Mapping) and DECOY in importance


def normalize_importance(importance: Mapping[str, float] | str | None) -> dict[str, float]:
    """Planted importances over all four modalities (missing -> 0), summing to 1.

    A ``decoy`` key (weight 0) is accepted and left out: the decoy plants nothing.
    """
    raw = _weights(importance)
    total = sum(raw.values())
    return {m: raw.get(m, 0.0) / total for m in MODALITIES}


def normalization_note(importance: Mapping[str, float] | str | None) -> str | None:
    """What :func:`normalize_importance` changed, when the given weights do not sum to 1
    (``"the importances sum to 2, not 1: normalised to s2=0.5, ..."``); None when they do.

    Raises:
        SpecError: as :func:`normalize_importance`.
    """
    total = sum(_weights(importance).values())
    if math.isclose(total, 1.0, rel_tol=1e-6):
        return None
    weights = normalize_importance(importance)
    shown = ",".join(f"{m}={weights[m]:.4g}" for m in MODALITIES)
    return f"the importances sum to {total:g}, not 1: normalised to {shown}"


def _weights(importance: Mapping[str, float] | str | None) -> dict[str, float]:
    """The checked weights of the real modalities as given (not normalised; sum > 0)."""
    if importance is None:
        importance = DEFAULT_IMPORTANCE
    if isinstance(importance, str):
        importance = parse_importance(importance)
    if not isinstance(importance, Mapping):
        raise _importance_error(f"importance must be a mapping, got {type(importance).__name__}")
    raw: dict[str, float] = {}
    for key, value in importance.items():
        if key not in MODALITIES and key != DECOY:
            raise _importance_error(f"unknown modality {key!r} in importance")
        try:
            raw[key] = float(value)
        except (TypeError, ValueError):
            raise _importance_error(f"importance of {key!r} is not a number: {value!r}") from None
        _check_weight(key, raw[key])
    raw.pop(DECOY, None)
    if sum(raw.values()) <= 0:
        raise _importance_error(
            "importances sum to 0", "give at least one modality a positive weight, e.g. s2=1"
        )
    return raw


def _sparsity_error(what: str) -> SpecError:
    return SpecError(
        what, "--sparsity", "write e.g. viirs=0.75 (the share of pixels without its own signal)"
    )


def parse_fractions(
    value: Mapping[str, float] | str | None,
    allowed: Sequence[str],
    option: str,
    noun: str,
    error: Callable[[str], SpecError],
) -> dict[str, float]:
    """A ``MODALITY=FRACTION`` option (``"viirs=0.75"``, a mapping or None) as a dict.

    The one parser of the generator's per-modality fractions (sparsity, error-link strength).

    Args:
        value: the option's value.
        allowed: the modalities it may name, in the order of the result.
        option: its name in messages (``sparsity``).
        noun: what a value is (``sparsity``, ``strength``).
        error: builds the one-line error of a message.

    Returns:
        Only the modalities with a value above 0, in ``allowed`` order.

    Raises:
        SpecError: an unknown modality, a repeated key or a value outside [0, 1].
    """
    if value is None:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(value, str):
        items = _items(value, option, error)
    elif isinstance(value, Mapping):
        items = [(str(k).strip().lower(), v) for k, v in value.items()]
    else:
        raise error(f"{option} must be a mapping, got {type(value).__name__}")
    out: dict[str, float] = {}
    for key, raw in items:
        if key not in allowed:
            raise error(
                f"modality {key!r} is not allowed in the {option} (allowed: {', '.join(allowed)})"
            )
        if key in out:
            raise error(f"modality {key!r} given twice in the {option}")
        try:
            out[key] = float(raw)
        except (TypeError, ValueError):
            raise error(f"{noun} of {key!r} is not a number: {raw!r}") from None
        if not 0.0 <= out[key] <= 1.0:
            raise error(f"{noun} of {key!r} must be in [0, 1], got {raw}")
    return {m: out[m] for m in allowed if out.get(m, 0.0) > 0.0}


def parse_sparsity(sparsity: Mapping[str, float] | str | None) -> dict[str, float]:
    """Sparsity per modality (0: dense, the default; 1: its own signal absent everywhere).

    Args:
        sparsity: ``"viirs=0.75"``, a mapping, or None (every modality dense).

    Returns:
        Only the modalities with a sparsity above 0, in :data:`MODALITIES` order.

    Raises:
        SpecError: an unknown modality, a repeated key or a value outside [0, 1].
    """
    return parse_fractions(sparsity, MODALITIES, "sparsity", "sparsity", _sparsity_error)
