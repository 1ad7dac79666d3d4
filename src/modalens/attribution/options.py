"""The options of an attribution: one frozen pydantic model, validated once.

:class:`AttributionOptions` holds everything that decides how scores are computed (strategies,
distances, levels, embedding, seed, precision, Shapley values ...). The engine, :func:`attribute
<modalens.attribution.api.attribute>`, :func:`attribute_run
<modalens.attribution.run.attribute_run>`, the sensitivity maps and the command line all take
it; the public functions also accept its fields as keyword arguments, which are turned into an
options object by :func:`resolve_options` -- the one place that does so. Every invalid value is
a one-line :class:`~modalens.errors.SpecError` naming the option and its command-line flag
(the run config's mechanism, :class:`modalens.options.Options`).

Names of strategies, distances and levels are checked against their registries
(:mod:`~modalens.attribution.strategies`, :mod:`~modalens.attribution.distances`,
:mod:`~modalens.attribution.levels`). :meth:`AttributionOptions.resume_settings` is what a
streamed result folder records in ``parts/config.json`` (compared on resume with
:func:`modalens.fingerprint.require_same`).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

import torch
from pydantic import AfterValidator, BeforeValidator, Field

from ..errors import SpecError
from ..options import ConfigValueError, Options, checked
from ..precision import parse_precision
from .distances import DISTANCES
from .levels import LEVELS
from .registry import Registry
from .shapley import MAX_EXACT_PLAYERS
from .strategies import STRATEGIES

#: command-line flag of the options the ``attribute`` command exposes
FLAGS = {
    "strategies": "--strategy",
    "distances": "--distance",
    "levels": "--level",
    "draws": "--draws",
    "seed": "--seed",
    "precision": "--precision",
    "tolerance": "--tolerance",
    "shapley": "--shapley",
}
SHAPLEY_METHODS = ("auto", "exact", "sampled")

#: the default level: ``loss`` where the batches carry targets (and the task's loss is known),
#: ``output`` otherwise
#: (:meth:`AttributionOptions.for_targets`). Chosen by the faithfulness benchmark over five
#: worlds (README, "Which score to trust"): the paper's embedding level ranked a merely
#: correlated modality first on real rasters and gave the decoy most of the influence.
AUTO_LEVEL = "auto"

#: the paper's protocol (Ekim & Schmitt 2024): embedding level, its four fills, Euclidean
#: distance, the ALL row (:func:`paper_options`)
PAPER: dict[str, Any] = {
    "strategies": ("zeros", "ones", "uniform", "gaussian"),
    "levels": ("embedding",),
    "distances": ("euclidean",),
    "include_all": True,
}
_SHAPLEY_OFF = (None, False, "", "none", "off", "false")
_PRECISIONS = ("fp32", "bf16", "auto")


def where(option: str) -> str:
    """How an error names an option: ``strategies= / --strategy`` (or ``chunk_size=``)."""
    flag = FLAGS.get(option)
    return f"{option}= / {flag}" if flag else f"{option}="


def as_names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Names from a comma-separated string or an iterable (``None`` -> empty)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


def _registry_names(value: Any, registry: Registry[Any]) -> tuple[str, ...]:
    names = as_names(value)
    if not names:
        raise ConfigValueError(
            f"no {registry.kind} given", f"choose from {', '.join(registry.names())}"
        )
    for name in names:
        registry.get(name)  # SpecError: unknown, listing the registered names
    return names


def _names(registry: Registry[Any]) -> BeforeValidator:
    return checked(lambda value: _registry_names(value, registry))


def _levels(value: Any) -> tuple[str, ...]:
    names = as_names(value)
    if names == (AUTO_LEVEL,):
        return names
    if AUTO_LEVEL in names:
        raise ConfigValueError(
            f"{AUTO_LEVEL} cannot be combined with other levels",
            "give auto alone or name the levels",
        )
    return _registry_names(names, LEVELS)


def _integer(minimum: int | None = None, optional: bool = False) -> BeforeValidator:
    def check(value: Any) -> int | None:
        if optional and not value:
            return None
        number = None
        if not isinstance(value, bool):
            try:
                number = operator.index(value)  # int, numpy integers
            except TypeError:
                if isinstance(value, float) and value.is_integer():
                    number = int(value)
                elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                    number = int(value)
        if number is None:
            raise ConfigValueError(f"{{key}} must be an integer, got {value!r}")
        if minimum is not None and number < minimum:
            raise ConfigValueError(f"{{key}} must be at least {minimum}, got {number}", "raise it")
        return number

    return BeforeValidator(check)


def _shapley(value: Any) -> bool | str:
    if isinstance(value, str):
        value = value.strip().lower()
    if value in _SHAPLEY_OFF:
        return False
    if value is True or value in SHAPLEY_METHODS:
        return value
    raise ConfigValueError(f"unknown Shapley method {value!r}", "use exact, sampled or auto")


def _channel_values(value: Any) -> tuple[float, ...] | None:
    """Per-channel fill values (``mean``, ``nodata``) as float32-rounded floats, or None."""
    if value is None:
        return None
    try:
        values = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ConfigValueError(
            f"{{key}} must be numbers, got {value!r}",
            "give one normalised value per input channel",
        ) from None
    return tuple(float(v) for v in values)


def _embedding(value: Any) -> Any:
    if not (isinstance(value, str) or callable(value)):
        raise ConfigValueError(
            f"embedding must be a name or a callable, got {type(value).__name__}",
            "use auto, encode, embed, a submodule name or fn(model, x)",
        )
    return value


def _channel_axis(value: Any) -> int:
    if value == 0:
        raise ConfigValueError("the channel axis cannot be the batch axis (0)", "use 1 or -1")
    return int(value)


def _loss_fn(value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigValueError("loss_fn must be callable")
    return value


def _tolerance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigValueError(
            f"tolerance must be a number in (0, 1), got {value!r}", "e.g. 0.01 (1 %)"
        )
    return float(value)


def _device(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(torch.device(value))
    except (RuntimeError, TypeError):
        raise ConfigValueError(f"unknown device {value!r}", "use e.g. cpu or cuda") from None


def _flag(value: Any) -> bool:
    return bool(value)


_Int1 = Annotated[int, _integer(1)]
_Bool = Annotated[bool, BeforeValidator(_flag)]
_Channels = Annotated[tuple[float, ...] | None, BeforeValidator(_channel_values)]


class AttributionOptions(Options):
    """How occlusion scores are computed (see :mod:`modalens.attribution`).

    A frozen pydantic model: strings and sequences are accepted where tuples are stored
    (``strategies="zeros,ones"``); values are validated and normalised on construction, and a
    bad one is a one-line :class:`~modalens.errors.SpecError` naming the option and its
    command-line flag. Equal options compare (and hash) equal.

    Attributes:
        strategies: fills of the occluded channels (:data:`~.strategies.STRATEGIES`); default
            ``mean`` (the train mean stays inside every continuous modality's train range; see
            "Strategies and fill sanity" in docs/validation.md for the measurement).
        distances: distances of full vs occluded (:data:`~.distances.DISTANCES`).
        levels: where the effect is measured (:data:`~.levels.LEVELS`); default ``auto``:
            ``loss`` where the batches carry targets and ``loss_fn`` is known (a run's task
            loss), else ``output`` (:data:`AUTO_LEVEL`;
            the paper's ``embedding`` level is one option away, :func:`paper_options`).
        embedding: ``"auto"`` (``encode()`` bottleneck, else ``embed()``), ``"encode"``,
            ``"embed"``, a submodule name (forward hook) or ``fn(model, x) -> Tensor``.
        channel_axis: axis of the channels in a batch (1 for images; -1 for tabular/series).
        draws: draws of the random strategies (uniform, gaussian, permute), at least 1.
        seed: seed of noise and permutations.
        mean: per-channel fill of the ``mean`` strategy in normalised space (stored as float32
            values; default 0).
        nodata: per-channel fill of the ``nodata`` strategy in normalised space (a value no
            class maps to on categorical channels, the mean elsewhere); required by it.
        loss_fn: ``loss_fn(pred, target, valid) -> [B]`` of the ``loss`` level (default MSE).
        precision: ``fp32``, ``bf16`` (bf16 weights and inputs after folding) or ``auto``
            (bf16 where native, with fp32 re-evaluation of every score bf16 cannot resolve:
            :mod:`~.autoprec`; fp32 elsewhere, and for batches scored at the ``loss`` level,
            whose bf16 error no bound covers).
        tolerance: with ``auto``, the relative error a bf16 score may keep (default 0.01);
            scores whose bound exceeds it are redone in fp32 (rankings are kept at any value).
        optimize: fold BatchNorm, fuse Conv+ReLU, channels-last (equal up to float rounding).
        chunk_size: inputs per forward; None: cache-sized on CPU (``2**20`` input elements in
            fp32, ``2**21`` in bf16), ``2**24`` on GPUs.
        include_all: add the ``ALL`` row (every group occluded at once).
        device: where the model runs (None: where its parameters are).
        shapley: Shapley values too: False, True/``"auto"`` (exact up to 10 groups, else
            sampled), ``"exact"`` or ``"sampled"``.
        permutations: sampled orders of sampled Shapley values.
        interactions: exact pairwise Shapley interactions with exact Shapley values.
        max_players: most groups exact Shapley values may have.
    """

    noun: ClassVar[str] = "attribution option"

    strategies: Annotated[tuple[str, ...], _names(STRATEGIES)] = Field(
        default=("mean",), description="fills of the occluded channels, comma-separated"
    )
    distances: Annotated[tuple[str, ...], _names(DISTANCES)] = Field(
        default=("euclidean",), description="distances, comma-separated"
    )
    levels: Annotated[tuple[str, ...], checked(_levels)] = Field(
        default=(AUTO_LEVEL,), description="levels, comma-separated"
    )
    embedding: Annotated[Any, BeforeValidator(_embedding)] = "auto"
    channel_axis: Annotated[int, _integer(), AfterValidator(_channel_axis)] = 1
    draws: _Int1 = Field(default=1, description="noise draws per sample")
    seed: Annotated[int, _integer()] = Field(default=0, description="seed of fills and bootstrap")
    mean: _Channels = None
    nodata: _Channels = None
    loss_fn: Annotated[Any, BeforeValidator(_loss_fn)] = None
    precision: Annotated[str, checked(lambda v: parse_precision(v, "", _PRECISIONS))] = Field(
        default="fp32",
        description="auto: bf16 where the hardware has it, scores it cannot resolve redone in fp32",
    )
    tolerance: Annotated[float, BeforeValidator(_tolerance)] = Field(
        default=0.01, description="auto precision: relative error a bf16 score may keep"
    )
    optimize: _Bool = True
    chunk_size: Annotated[int | None, _integer(1, optional=True)] = None
    include_all: _Bool = True
    device: Annotated[str | None, BeforeValidator(_device)] = None
    shapley: Annotated[bool | str, BeforeValidator(_shapley)] = Field(
        default=False,
        description="also Shapley values (exact up to 10 groups, sampled permutations above)",
    )
    permutations: _Int1 = 64
    interactions: _Bool = True
    max_players: _Int1 = MAX_EXACT_PLAYERS

    @classmethod
    def where(cls, key: str) -> str:
        """How an error names an option: ``strategies= / --strategy`` (or ``chunk_size=``)."""
        return where(key)

    def for_targets(self, has_target: bool) -> AttributionOptions:
        """These options with the ``auto`` level resolved: ``loss`` when the batches carry
        targets and the task's loss is known (``loss_fn``; a run gives its task's), ``output``
        otherwise -- never a guessed loss (unchanged when levels are named)."""
        if self.levels != (AUTO_LEVEL,):
            return self
        use_loss = has_target and self.loss_fn is not None
        return self.replace(levels=("loss",) if use_loss else ("output",))

    def fill_keys(self) -> list[tuple[str, int]]:
        """``(strategy, draw)`` pairs evaluated per sample (random strategies ``draws`` times)."""
        keys = []
        for s in self.strategies:
            for d in range(self.draws if STRATEGIES.get(s).random else 1):
                keys.append((s, d))
        return keys

    def metrics(self) -> list[tuple[str, str]]:
        """``(level, distance)`` score columns: one per distance of levels using distances,
        ``(level, level)`` for the others (``("loss", "loss")``)."""
        out: list[tuple[str, str]] = []
        for lv in self.levels:
            if lv == AUTO_LEVEL:  # resolved per batch (:meth:`for_targets`)
                continue
            if LEVELS.get(lv).uses_distances:
                out.extend((lv, d) for d in self.distances)
            else:
                out.append((lv, lv))
        return out

    def resume_settings(self) -> dict[str, Any]:
        """The options a streamed result depends on (``parts/config.json``, without the
        groups, which the engine adds)."""
        emb = self.embedding
        extra: dict[str, Any] = {} if self.nodata is None else {"nodata": list(self.nodata)}
        if self.precision == "auto":  # absent otherwise: older folders stay resumable
            extra["tolerance"] = self.tolerance
        return {
            "strategies": list(self.strategies),
            "distances": list(self.distances),
            "levels": list(self.levels),
            "embedding": emb if isinstance(emb, str) else getattr(emb, "__name__", "callable"),
            "channel_axis": self.channel_axis,
            "draws": self.draws,
            "seed": self.seed,
            "mean": None if self.mean is None else list(self.mean),
            "precision": self.precision,
            "include_all": self.include_all,
            "shapley": str(self.shapley),
            "permutations": self.permutations if self.shapley else None,
            **extra,
        }

    def fingerprint(self) -> dict[str, Any]:
        """Deprecated name of :meth:`resume_settings` (removed next release)."""
        warnings.warn(
            "modalens: AttributionOptions.fingerprint() is deprecated and will be removed in the "
            "next release; use AttributionOptions.resume_settings()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.resume_settings()


def paper_options(**overrides: Any) -> AttributionOptions:
    """The paper's exact protocol (:data:`PAPER`: embedding level, zeros/ones/uniform/gaussian
    fills, Euclidean distance, the ALL row), with other fields from ``overrides``.

    Raises:
        SpecError: an override of a field the protocol fixes, or an invalid value.
    """
    clash = sorted(set(PAPER) & set(overrides))
    if clash:
        raise SpecError(
            f"the paper's protocol fixes {', '.join(clash)}",
            "--paper",
            f"leave out {', '.join(where(c) for c in clash)} or --paper",
        )
    return resolve_options(None, **PAPER, **overrides)


OPTION_NAMES = tuple(AttributionOptions.model_fields)


def resolve_options(
    options: AttributionOptions | None = None, /, **overrides: Any
) -> AttributionOptions:
    """The options object of a call: ``options`` (default: all defaults) with ``overrides``.

    The single place where keyword arguments become an :class:`AttributionOptions`.

    Args:
        options: an options object, or None.
        **overrides: fields of :class:`AttributionOptions`.

    Returns:
        The validated options.

    Raises:
        SpecError: an unknown option or an invalid value.
    """
    if options is not None and not isinstance(options, AttributionOptions):
        raise SpecError(
            f"options must be an AttributionOptions, got {type(options).__name__}",
            "options",
            "build one with AttributionOptions(...) or pass the options as keywords",
        )
    if options is None:
        return AttributionOptions(**overrides)
    return options.replace(**overrides) if overrides else options
