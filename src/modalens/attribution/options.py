"""TODO docstring: attribution/options.py"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import SpecError

STRATEGIES = ("zeros", "ones", "uniform", "gaussian", "mean", "permute")


PAPER_STRATEGIES = ("zeros", "ones", "uniform", "gaussian")


NOISE_STRATEGIES = ("uniform", "gaussian")


RANDOM_STRATEGIES = ("uniform", "gaussian", "permute")


DISTANCES = ("euclidean", "cosine", "relative", "mae", "delta")


LEVELS = ("embedding", "output", "loss")




AUTO_SHAPLEY_EXACT_MAX = 10


def _as_list(value: str | Iterable[str] | None, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _check_choice(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
    for v in values:
        if v not in allowed:
            raise SpecError(
                f"unknown {what} {v!r}", f"--{what}", f"choose from {', '.join(allowed)}"
            )
    if not values:
        raise SpecError(f"no {what} given", f"--{what}", f"choose from {', '.join(allowed)}")
