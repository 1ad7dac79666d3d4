"""Occlusion strategies: what replaces the occluded channels, one registered function each.

The fill lives in the model's *normalised* input space. The paper's four are ``zeros``,
``ones``, ``uniform`` (U[0,1)) and ``gaussian`` (N(0,1)); two more are built in: ``mean`` (a
per-channel train-set mean in normalised space, the ``mean`` option; 0 where not given),
``nodata`` (the ``nodata`` option: on categorical channels a value no class maps to, elsewhere
the mean -- see :func:`nodata`) and ``permute`` (the group taken from another sample of the
batch, a seeded derangement; NaN for a batch of one sample).

A strategy is a function ``fn(ctx: FillContext) -> Fill`` registered with
:func:`register_strategy` and its properties: ``random`` (repeated ``draws`` times, ``draw``
column), ``noise`` (drawn per sample from a seeded generator), ``needs_batch`` (takes values
from other samples, so it has no meaning for single scenes) and ``paper`` (one of the paper's
four, the run-level default). It returns one of

- :meth:`Fill.constant` -- one value per channel, the same for every sample (the engine then
  evaluates the all-groups input once per input shape when the groups cover every channel);
- :meth:`Fill.per_sample` -- a tensor ``[B, *sample]``, typically from :meth:`FillContext.noise`;
- :meth:`Fill.donors` -- for each sample the batch row whose values fill it;
- :meth:`Fill.missing` -- no fill for this batch (its scores are NaN, with a warning).

Noise and permutations are seeded per ``(seed, strategy, draw, sample id)`` (per batch ids for
``permute``) through :func:`stable_seed`, so results do not depend on batch composition or on
resuming; the same noise tensor serves every group, the ``ALL`` row and every Shapley
coalition of a sample and draw. Sensitivity maps pass one generator for a whole call instead
(:attr:`FillContext.generator`), so a fixed tiling is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import SpecError
from .registry import Registry

#: ``sampler(shape, generator) -> Tensor``: draws noise of ``shape`` from ``generator``
Sampler = Callable[[tuple[int, ...], torch.Generator], Tensor]


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from the text of ``parts`` (the same on every machine and run).

    Args:
        *parts: e.g. ``(seed, strategy, draw, sample_id)``.

    Returns:
        A non-negative integer below ``2**63``.
    """
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class FillContext:
    """What a strategy may use to build the fill of one batch.

    Attributes:
        x: the batch ``[B, ...]`` (normalised), on the engine's device.
        channel_axis: the (non-negative) axis of the channels in ``x``.
        ids: sample ids of the rows of ``x``.
        strategy: the name the strategy was asked by (it seeds the noise).
        draw: index of the draw of a random strategy (0 otherwise).
        seed: the ``seed`` option.
        mean: the ``mean`` option as a float32 tensor ``[C]``, or None.
        generator: maps only: one generator for the whole call, used instead of per-sample
            seeding.
        nodata: the ``nodata`` option as a float32 tensor ``[C]``, or None.
    """

    x: Tensor
    channel_axis: int
    ids: Sequence[str]
    strategy: str
    draw: int = 0
    seed: int = 0
    mean: Tensor | None = None
    generator: torch.Generator | None = None
    nodata: Tensor | None = None

    @property
    def n_channels(self) -> int:
        """Number of channels of the input."""
        return int(self.x.shape[self.channel_axis])

    def noise(self, sampler: Sampler) -> Tensor:
        """Float32 noise ``[B, *sample]`` on the CPU: ``sampler`` called per sample with a
        generator seeded by ``(seed, strategy, draw, sample id)`` -- or, with
        :attr:`generator`, once for the whole batch."""
        if self.generator is not None:
            return sampler(tuple(self.x.shape), self.generator)
        shape = tuple(self.x.shape[1:])
        noise = torch.empty((self.x.shape[0], *shape), dtype=torch.float32)
        for i, sid in enumerate(self.ids):
            seed = stable_seed(self.seed, self.strategy, self.draw, sid)
            noise[i] = sampler(shape, torch.Generator().manual_seed(seed))
        return noise

    def rng(self) -> np.random.Generator:
        """A numpy generator seeded by ``(seed, strategy, draw, *batch ids)``."""
        return np.random.default_rng(stable_seed(self.seed, self.strategy, self.draw, *self.ids))


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class Fill:
    """The fill of one batch for one strategy and draw (build it with the class methods).

    Attributes:
        kind: ``"constant"``, ``"per_sample"``, ``"donor"`` or ``"missing"``.
        value: constant: float32 ``[C]``; per_sample: ``[B, *sample]``.
        donor: donor: int64 ``[B]``, the batch row filling each sample.
        reason: missing: the warning shown.
    """

    kind: str
    value: Tensor | None = None
    donor: Tensor | None = None
    reason: str = ""

    @classmethod
    def constant(cls, values: Tensor | Sequence[float]) -> Fill:
        """One value per channel, the same for every sample."""
        return cls("constant", value=torch.as_tensor(values, dtype=torch.float32).flatten())

    @classmethod
    def per_sample(cls, values: Tensor) -> Fill:
        """Values ``[B, *sample]``, one per sample and element."""
        return cls("per_sample", value=values)

    @classmethod
    def donors(cls, rows: Tensor | np.ndarray) -> Fill:
        """Sample ``i`` is filled with the values of batch row ``rows[i]``."""
        return cls("donor", donor=torch.as_tensor(rows))

    @classmethod
    def missing(cls, reason: str = "") -> Fill:
        """No fill for this batch: its scores are NaN (``reason`` is warned about)."""
        return cls("missing", reason=reason)


#: ``fn(ctx) -> Fill``: the signature of every strategy
FillFn = Callable[[FillContext], Fill]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its function and properties (see the module docstring)."""

    name: str
    fn: FillFn
    help: str
    random: bool = False
    noise: bool = False
    needs_batch: bool = False
    paper: bool = False


STRATEGIES: Registry[Strategy] = Registry("strategy", "strategies", "--strategy")


def register_strategy(
    name: str,
    *,
    help: str,
    random: bool = False,
    noise: bool = False,
    needs_batch: bool = False,
    paper: bool = False,
) -> Callable[[FillFn], FillFn]:
    """Decorator registering ``fn(ctx: FillContext) -> Fill`` as strategy ``name``.

    Args:
        name: the name given to ``strategies=`` / ``--strategy``.
        help: one line for ``--help``.
        random: the fill changes with the draw (repeated ``draws`` times).
        noise: drawn from a seeded generator per sample (implies ``random``).
        needs_batch: takes values from other samples (refused for maps).
        paper: one of the paper's four strategies (the run-level default).

    Returns:
        The decorator (it returns the function unchanged).

    Raises:
        SpecError: the name is taken or malformed.
    """

    def decorate(fn: FillFn) -> FillFn:
        STRATEGIES.add(Strategy(name, fn, help, random or noise, noise, needs_batch, paper))
        return fn

    return decorate


def paper_strategies() -> tuple[str, ...]:
    """The paper's four strategies (zeros, ones, uniform, gaussian)."""
    return STRATEGIES.names(lambda s: s.paper)


# ---------------------------------------------------------------------------- the built-ins
@register_strategy("zeros", paper=True, help="0 in normalised space (paper)")
def zeros(ctx: FillContext) -> Fill:
    """Every occluded channel becomes 0."""
    return Fill.constant(torch.full((ctx.n_channels,), 0.0))


@register_strategy("ones", paper=True, help="1 in normalised space (paper)")
def ones(ctx: FillContext) -> Fill:
    """Every occluded channel becomes 1."""
    return Fill.constant(torch.full((ctx.n_channels,), 1.0))


@register_strategy("uniform", noise=True, paper=True, help="U[0,1) noise per sample (paper)")
def uniform(ctx: FillContext) -> Fill:
    """Seeded uniform noise in [0, 1)."""
    return Fill.per_sample(ctx.noise(lambda shape, g: torch.rand(shape, generator=g)))


@register_strategy("gaussian", noise=True, paper=True, help="N(0,1) noise per sample (paper)")
def gaussian(ctx: FillContext) -> Fill:
    """Seeded standard normal noise."""
    return Fill.per_sample(ctx.noise(lambda shape, g: torch.randn(shape, generator=g)))


@register_strategy(
    "mean", help="per-channel train mean in normalised space (a run's statistics, or mean=)"
)
def mean(ctx: FillContext) -> Fill:
    """The ``mean`` option per channel, 0 without one.

    Raises:
        SpecError: the option has another number of values than the input has channels.
    """
    c = ctx.n_channels
    if ctx.mean is None:
        return Fill.constant(torch.zeros(c))
    return Fill.constant(_per_channel(ctx.mean, c, "mean"))


def _per_channel(values: Tensor, c: int, option: str) -> Tensor:
    if values.numel() != c:
        raise SpecError(
            f"{option} has {values.numel()} values for {c} channels",
            option,
            "give one normalised value per input channel",
        )
    return values.clone()


@register_strategy(
    "nodata", help="categorical: a code no class maps to; continuous: the train mean"
)
def nodata(ctx: FillContext) -> Fill:
    """The ``nodata`` option per channel: what the model is shown when a modality is absent.

    For a run, :func:`~modalens.attribution.run.run_nodata` derives it from the spec: on a
    categorical modality with ordinal (or scaled) codes the normalised no-data value of the
    spec when no class uses it, else the code one class step below the smallest class (so the
    value lies outside the class list and below its range); on a one-hot modality 0 on every
    class channel (no class active); on continuous modalities the train mean in normalised
    space (the ``mean`` fill: a continuous band has no value "no class maps to", and the mean
    stays inside the train range).

    Raises:
        SpecError: no ``nodata`` option (outside a run it cannot be guessed), or another number
            of values than the input has channels.
    """
    if ctx.nodata is None:
        raise SpecError(
            "the nodata strategy needs per-channel no-data values",
            "nodata=",
            "attribute a run (its spec gives them) or pass nodata= (one value per channel)",
        )
    return Fill.constant(_per_channel(ctx.nodata, ctx.n_channels, "nodata"))


@register_strategy(
    "permute", random=True, needs_batch=True, help="the group from another sample of the batch"
)
def permute(ctx: FillContext) -> Fill:
    """A seeded derangement of the batch: every sample gets another sample's values."""
    n = ctx.x.shape[0]
    if n < 2:
        return Fill.missing(
            "permute needs at least 2 samples in a batch; a batch of one "
            f"(sample {ctx.ids[0]!r}) gets NaN"
        )
    order = ctx.rng().permutation(n)
    donor = np.empty(n, dtype=np.int64)
    donor[order] = order[(np.arange(n) + 1) % n]
    return Fill.donors(donor)
