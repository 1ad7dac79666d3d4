"""The occlusion engine: fills, batched forwards and scores of one model.

Per sample and channel group (a modality by default), the group's channels are replaced in the
*normalised* input space by a strategy's fill (:mod:`~.strategies`) and the result compared
with the unoccluded input at each level (:mod:`~.levels`) with each distance
(:mod:`~.distances`); an ``ALL`` row occludes every grouped channel at once.

Efficiency: a prepared inference copy (:class:`~.forward.Runner`: BatchNorm folded,
Conv+ReLU fused, channels-last, optionally bf16) under :func:`torch.inference_mode`; the
unoccluded evaluation once per sample; all occlusions of a batch (strategies, draws, groups,
Shapley coalitions, deduplicated) in batched forwards of ``chunk_size`` inputs; a constant
``ALL`` input once per shape. ``precision="auto"`` runs occlusions in bf16 where native and
redoes in fp32 every score bf16 cannot resolve (:mod:`~.autoprec`; check bf16 alone with
:func:`~.api.precision_agreement`).

One batch's occlusions are an :class:`~.jobs.OcclusionJob`; Shapley values come from the same
forwards (:mod:`~.coalitions`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import SpecError
from ..precision import native_bf16
from ..tasks import masked_mse
from .autoprec import (
    Pace,
    error_bounds,
    error_distances,
    hopeless,
    needs_fp32,
    precision_report,
)
from .batches import Batch, Evaluation, Unoccluded, as_batch
from .coalitions import CoalitionPlan, Scorer, ValueFunction, batch_shapley, shapley_method
from .forward import Runner
from .groups import ALL, Groups, normalize_groups
from .jobs import OcclusionJob, broadcast_shape
from .levels import LEVELS, LevelInputs
from .options import AUTO_LEVEL, AttributionOptions, resolve_options
from .rows import long_rows
from .shapley import ShapleyResult, unique_masks
from .strategies import STRATEGIES, Fill, FillContext


class OcclusionEngine:
    """Occlusion scores of one model for batches of inputs (see the module docstring).

    Args:
        model: any ``nn.Module`` taking the stacked input.
        groups: ``{name: [channel indices]}`` (or a list of index lists) on the channel axis.
        options: the :class:`~.options.AttributionOptions` (default: all defaults).
        **overrides: fields of :class:`~.options.AttributionOptions` to change.

    Raises:
        SpecError: invalid options or groups.
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Groups,
        options: AttributionOptions | None = None,
        **overrides: Any,
    ) -> None:
        self.options = o = resolve_options(options, **overrides)
        n_ch = getattr(model, "in_channels", None)
        self.groups = normalize_groups(groups, n_ch if isinstance(n_ch, int) else None)
        self.group_names = list(self.groups)
        self.mean = None if o.mean is None else torch.as_tensor(o.mean, dtype=torch.float32)
        self.nodata = None if o.nodata is None else torch.as_tensor(o.nodata, dtype=torch.float32)
        self.loss_fn = o.loss_fn or masked_mse
        device: str | torch.device | None = o.device
        if device is None:
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = torch.device(device)
        auto = o.levels == (AUTO_LEVEL,)  # resolved per batch (:meth:`_resolve`)
        self._auto = o if auto else None
        both = [LEVELS.get(lv) for lv in ("loss", "output")] if auto else []
        both += [LEVELS.get(lv) for lv in o.levels if lv != AUTO_LEVEL]
        need_emb, need_out = (any(lv.needs == k for lv in both) for k in ("embedding", "output"))
        needs = (need_emb, need_out)  # a pair: Runner's two flags
        self._set_levels(o)
        base = "fp32" if o.precision == "auto" else o.precision
        self.runner = Runner(model, o.embedding, *needs, base, o.optimize, self.device)
        #: the bf16 runner of ``precision="auto"`` where bf16 is native (else None: fp32)
        self.fast: Runner | None = None
        if o.precision == "auto" and native_bf16(self.device):
            self.fast = Runner(model, o.embedding, *needs, "bf16", o.optimize, self.device)
        #: ``precision="auto"``: occluded inputs evaluated in bf16 / re-evaluated in fp32
        self.auto_counts = {"occlusions": 0, "bf16": 0, "fp32": 0}
        #: whether bf16 pays under ``auto`` (:class:`~.autoprec.Pace`)
        self.pace = Pace()
        self._all_cache: dict[Any, tuple[Tensor | None, Tensor | None]] = {}
        self._gmat: Tensor | None = None

    # ------------------------------------------------------------------ set-up
    def _set_levels(self, options: AttributionOptions) -> None:
        self.options, self.metrics = options, options.metrics()
        self.levels = [LEVELS.get(lv) for lv in options.levels if lv != AUTO_LEVEL]
        self.need_target = any(lv.needs_target for lv in self.levels)

    def _resolve(self, batch: Batch) -> None:
        """Resolve the ``auto`` level for ``batch`` (:meth:`AttributionOptions.for_targets`)."""
        if self._auto is not None:  # per batch: never pinned by the first one
            self._set_levels(self._auto.for_targets(batch.target is not None))

    def fill_keys(self) -> list[tuple[str, int]]:
        """``(strategy, draw)`` pairs evaluated per sample."""
        return self.options.fill_keys()

    def config(self) -> dict[str, Any]:
        """What determines the scores (written beside streamed results)."""
        return {"groups": self.groups, **self.options.resume_settings()}

    @property
    def model(self) -> nn.Module:
        """The prepared inference copy (after the first batch)."""
        if self.runner.model is None:
            raise RuntimeError("the engine has not seen a batch yet")
        return self.runner.model

    @property
    def forwards(self) -> int:
        """Inputs evaluated so far (for tests and benchmarks)."""
        return self.runner.forwards

    def prepare(self, x: Tensor) -> None:
        """Build the inference copy for inputs like ``x`` (once)."""
        self.runner.prepare(x, self.options.channel_axis)
        if self.fast is not None:
            self.fast.prepare(x, self.options.channel_axis)

    def precision_report(self, counts: dict[str, int] | None = None) -> dict[str, Any]:
        """The precision used (:func:`~.autoprec.precision_report`; ``counts``: instead of this
        engine's own, e.g. summed over the ranks of a sharded run)."""
        used = "bf16+fp32" if self.fast is not None else self.runner.precision
        return precision_report(self.options.precision, used, counts or self.auto_counts)

    def axis(self, x: Tensor) -> int:
        """The non-negative channel axis of ``x`` (SpecError: it is the batch axis)."""
        ax = self.options.channel_axis % x.ndim
        if ax == 0:
            raise SpecError("the channel axis cannot be the batch axis (0)", "channel_axis")
        return ax

    def group_matrix(self, n_channels: int) -> Tensor:
        """Bool ``[G, C]``: which channels each group occludes.

        Raises:
            SpecError: a group uses a channel the input does not have.
        """
        if self._gmat is None or self._gmat.shape[1] != n_channels:
            gm = torch.zeros((len(self.group_names), n_channels), dtype=torch.bool)
            for g, name in enumerate(self.group_names):
                chans = self.groups[name]
                if max(chans) >= n_channels:
                    raise SpecError(
                        f"group {name!r} uses channel {max(chans)} but the input has "
                        f"{n_channels} channels on axis {self.options.channel_axis}",
                        "groups",
                        "check the grouping and channel_axis",
                    )
                gm[g, chans] = True
            self._gmat = gm
        return self._gmat

    def chunk_length(self, x: Tensor) -> int:
        """Inputs per forward for inputs like ``x`` (the ``chunk_size`` option or cache-sized)."""
        return self.runner.chunk_length(x, self.options.chunk_size)

    def broadcast_shape(self, x: Tensor, n: int, c: int) -> list[int]:
        """``[n, 1, .., c, .., 1]``: a per-channel tensor broadcast against ``n`` inputs."""
        return broadcast_shape(x.ndim, self.axis(x), n, c)

    # ------------------------------------------------------------------ fills
    def make_fill(
        self,
        strategy: str,
        draw: int,
        ids: Sequence[str],
        x: Tensor,
        generator: torch.Generator | None = None,
    ) -> Fill:
        """The fill of ``strategy`` for the batch ``x``, on its device and dtype (constant
        fills shaped :meth:`broadcast_shape` ``(x, 1, C)``).

        Raises:
            SpecError: an unknown strategy or a constant fill with the wrong channel count.
        """
        ax = self.axis(x)
        c = x.shape[ax]
        ctx = FillContext(
            x, ax, ids, strategy, draw, self.options.seed, self.mean, generator, self.nodata
        )
        fill = STRATEGIES.get(strategy).fn(ctx)
        if fill.kind == "constant":
            assert fill.value is not None
            if fill.value.numel() != c:
                raise SpecError(
                    f"strategy {strategy!r} gave {fill.value.numel()} values for {c} channels",
                    "strategies",
                    "return one value per input channel from Fill.constant",
                )
            value = fill.value.reshape(self.broadcast_shape(x, 1, c)).to(x.device, x.dtype)
            return Fill("constant", value=value)
        if fill.kind == "per_sample":
            assert fill.value is not None
            return Fill("per_sample", value=fill.value.to(x.device, x.dtype))
        return fill

    def noise(self, strategy: str, sample_id: str, shape: Sequence[int], draw: int = 0) -> Tensor:
        """The noise fill the engine uses for one sample (to reproduce it, e.g. for Captum).

        Raises:
            SpecError: ``strategy`` is not a noise strategy.
        """
        if not STRATEGIES.get(strategy).noise:
            raise SpecError(
                f"{strategy!r} is not a noise strategy",
                "strategy",
                f"use {', '.join(STRATEGIES.names(lambda s: s.noise))}",
            )
        x = torch.empty((1, *shape))
        ctx = FillContext(x, self.axis(x), [str(sample_id)], strategy, draw, self.options.seed)
        fill = STRATEGIES.get(strategy).fn(ctx)
        assert fill.value is not None
        return fill.value[0]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, batch: Batch) -> tuple[Tensor | None, Tensor | None]:
        """``(embedding, output)`` of the batch's unoccluded inputs (float32)."""
        x = batch.image.to(self.device)
        self.prepare(x)
        with torch.inference_mode():
            return self.runner.evaluate(x, self.chunk_length(x))

    def _full(self, batch: Batch, x: Tensor) -> Unoccluded:
        emb, out = self.runner.evaluate(x, self.chunk_length(x))
        target = valid = None
        if any(lv.reference is not None for lv in self.levels):
            dev = out.device if out is not None else x.device
            target = None if batch.target is None else batch.target.to(dev)
            valid = None if batch.valid is None else batch.valid.to(dev)
        full = Evaluation(emb, out, torch.arange(x.shape[0]), target, valid)
        refs = {
            lv.name: None if lv.reference is None else lv.reference(full, self.loss_fn)
            for lv in self.levels
        }
        return Unoccluded(full, refs)

    def _scores(
        self,
        emb: Tensor | None,
        out: Tensor | None,
        rows: Tensor,
        full: Unoccluded,
        batch: Batch,
        kinds: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Scores ``[n, len(metrics)]`` of evaluated inputs of batch rows ``rows`` (with the
        distances ``kinds`` instead of the options' when given)."""
        res = np.full((rows.shape[0], len(self.metrics)), np.nan)
        dev = out.device if out is not None else "cpu"
        valid = None if batch.valid is None else batch.valid.to(dev)[rows]
        target = None
        if self.need_target and batch.target is not None:
            target = batch.target.to(dev)[rows]
        occ = Evaluation(emb, out, rows, target, valid)
        col = 0
        for lv in self.levels:
            inputs = LevelInputs(
                full.evaluation,
                occ,
                full.references[lv.name],
                self.options.distances if kinds is None else kinds,
                self.loss_fn,
            )
            k = len(self.options.distances) if lv.uses_distances else 1
            res[:, col : col + k] = lv.fn(inputs)
            col += k
        return res

    def compute(
        self,
        batch: Batch,
        occluded: np.ndarray,
        scorer: Scorer | None = None,
        n_metrics: int | None = None,
        auto: bool = False,
    ) -> np.ndarray:
        """Scores ``[B, F, K, M]`` of batch rows x fills (:meth:`fill_keys`) x occlusion masks.

        Args:
            batch: the batch.
            occluded: bool ``[K, G]`` (True = group occluded).
            scorer: ``scorer(emb, out, rows, full, batch) -> [n, M]`` replacing the level
                scores (``full`` = the unoccluded evaluation).
            n_metrics: ``M`` of ``scorer`` (default: the options' metrics).
            auto: with ``precision="auto"`` and native bf16, evaluate the occlusions in bf16
                and redo in fp32 what bf16 cannot resolve (:mod:`~.autoprec`; level scores
                only, ``scorer`` must be None); else everything runs in the base precision.

        Returns:
            float64 scores, NaN where a fill is missing.
        """
        self._resolve(batch)
        x = batch.image.to(self.device)
        self.prepare(x)
        occluded = np.asarray(occluded, dtype=bool)
        fast = self.fast if auto and scorer is None else None
        bounded = all(lv.bounded for lv in self.levels)  # else every occlusion needs fp32
        straight = fast is not None and (not bounded or not self.pace.use_bf16())
        fast = None if straight else fast
        with torch.inference_mode():
            start = time.perf_counter()
            if scorer is None:
                full = self._full(batch, x)
            else:
                emb, out = self.runner.evaluate(x, self.chunk_length(x))
                full = Unoccluded(Evaluation(emb, out, torch.arange(x.shape[0]), None, None), {})
            t32 = time.perf_counter() - start
            start = time.perf_counter()
            errors = None if fast is None else self._bf16_errors(fast, x, full, batch)
            t16 = time.perf_counter() - start
            job = self._plan(batch, x, occluded, full, scorer or self._scores, n_metrics)
            if fast is None or errors is None:
                job.run(self.runner, job.tasks, self.options.chunk_size)
                if straight:
                    self._count((len(job.tasks), 0, len(job.tasks)))
            else:
                counts = self._run_auto(job, fast, occluded, *errors)
                self.pace.record(t16, t32, x.shape[0], counts)
        return job.result

    def _count(self, counts: tuple[int, int, int]) -> None:
        for key, n in zip(("occlusions", "bf16", "fp32"), counts, strict=True):
            self.auto_counts[key] += n

    def _bf16_errors(
        self, fast: Runner, x: Tensor, full: Unoccluded, batch: Batch
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(bounds, scales)`` ``[B, M]``: the observed bf16 error of every sample and metric
        (:func:`~.autoprec.error_bounds`) and the scores of all-zero evaluations."""
        e16, o16 = fast.evaluate(x, fast.chunk_length(x, self.options.chunk_size))
        kinds = error_distances(self.options.distances)
        rows = torch.arange(x.shape[0])
        bounds = error_bounds(self._scores(e16, o16, rows, full, batch, kinds))
        self.auto_bounds = bounds  # [B, M] of the last batch (tests, diagnostics)
        ev = full.evaluation
        ze = None if ev.embedding is None else torch.zeros_like(ev.embedding)
        zo = None if ev.output is None else torch.zeros_like(ev.output)
        return bounds, self._scores(ze, zo, rows, full, batch, kinds)

    def _plan(
        self,
        batch: Batch,
        x: Tensor,
        occluded: np.ndarray,
        full: Unoccluded,
        score: Scorer,
        n_metrics: int | None,
    ) -> OcclusionJob:
        """The job of one batch: its fills, and every occlusion either scored at once (a mask
        replacing every channel by a constant or donor fill) or left as a task."""
        ax = self.axis(x)
        gm = self.group_matrix(x.shape[ax])
        cmask = (torch.as_tensor(occluded, dtype=torch.float32) @ gm.float()) > 0  # [K, C]
        b, k_masks, keys = x.shape[0], occluded.shape[0], self.fill_keys()
        m = n_metrics if n_metrics is not None else len(self.metrics)
        result = np.full((b, len(keys), k_masks, m), np.nan)
        exact = np.zeros((b, len(keys), k_masks), dtype=bool)
        job = OcclusionJob(batch, x, ax, cmask, [], score, full, result, exact)
        covers = bool(gm.any(0).all())
        whole = [bool(occluded[k].all()) and covers for k in range(k_masks)]  # every channel
        for fi, (strategy, draw) in enumerate(keys):
            fill = self.make_fill(strategy, draw, batch.ids, x)
            job.fills.append(fill)
            if fill.kind == "missing":
                if fill.reason:
                    warnings.warn(fill.reason, stacklevel=3)
                continue
            for k in range(k_masks):
                if whole[k] and fill.kind in ("constant", "donor"):
                    job.score_all_rows(fi, k, *self._whole(job, fill, strategy, k))
                else:
                    job.tasks.extend((i, fi, k) for i in range(b))
        return job

    def _whole(
        self, job: OcclusionJob, fill: Fill, strategy: str, k: int
    ) -> tuple[Tensor | None, Tensor | None]:
        """``(embedding, output)`` of every row with all channels replaced by ``fill``: the
        donors' unoccluded evaluation, or one forward of the constant input per shape."""
        ev, b = job.full.evaluation, job.x.shape[0]
        if fill.kind == "donor":
            assert fill.donor is not None
            d = fill.donor
            return (
                None if ev.embedding is None else ev.embedding[d],
                None if ev.output is None else ev.output[d],
            )
        assert fill.value is not None
        values = tuple(fill.value.flatten().tolist())
        key = (strategy, tuple(job.x.shape[1:]), str(job.x.dtype), values)
        cached = self._all_cache.get(key)
        if cached is None:
            single = torch.where(job.cmask[k].reshape(job.shape(1)), fill.value, job.x[:1])
            cached = self._all_cache[key] = self.runner.run(single)
        e, o = cached
        return (
            None if e is None else e.expand(b, *e.shape[1:]),
            None if o is None else o.expand(b, *o.shape[1:]),
        )

    def _run_auto(
        self,
        job: OcclusionJob,
        fast: Runner,
        occluded: np.ndarray,
        bounds: np.ndarray,
        scales: np.ndarray,
    ) -> tuple[int, int, int]:
        """``precision="auto"``: the job's tasks in bf16, in fp32 for samples bf16 cannot
        resolve at all, then batched fp32 re-evaluations of what bf16 did not resolve;
        ``(occlusions, bf16, fp32)`` counted."""
        tol, chunk = self.options.tolerance, self.options.chunk_size
        lost = hopeless(bounds, scales, tol)  # every score would be redone: fp32 at once
        direct = [t for t in job.tasks if lost[t[0]]]
        quick = [t for t in job.tasks if not lost[t[0]]]
        job.run(self.runner, direct, chunk)
        job.exact[lost] = True
        job.run(fast, quick, chunk)
        redo = needs_fp32(job.result, job.exact, bounds, occluded.sum(1) == 1, tol, scales)
        again = [t for t in quick if redo[t]]
        job.run(self.runner, again, chunk)
        counts = (len(job.tasks), len(quick), len(direct) + len(again))
        self._count(counts)
        return counts

    # ------------------------------------------------------------------ rows
    def occlusion_masks(self) -> tuple[np.ndarray, list[str]]:
        """Bool ``[K, G]`` masks of the occlusion rows (one per group, then ``ALL``) and
        their labels."""
        g = len(self.group_names)
        masks = list(np.eye(g, dtype=bool))
        names = list(self.group_names)
        if self.options.include_all:
            masks.append(np.ones(g, dtype=bool))
            names.append(ALL)
        return np.stack(masks), names

    def score_batch(self, batch: Any) -> pd.DataFrame:
        """Long-form scores of one batch (see :mod:`~.rows`); with the ``shapley`` option
        Shapley values (and exact pairwise interactions) are added from the same forwards."""
        batch = as_batch(batch)
        self._resolve(batch)
        o = self.options
        occ, names = self.occlusion_masks()
        method = shapley_method(o.shapley, len(self.group_names), o.max_players)
        plan = None
        all_masks = occ
        if method is not None:
            plan = CoalitionPlan.create(method, len(self.group_names), o.permutations, o.seed)
            all_masks = np.concatenate([occ, plan.occlusions()])
        uniq_masks, inverse = unique_masks(all_masks)
        # Shapley values are differences of coalition scores: fp32 under "auto" (autoprec)
        scores = self.compute(batch, uniq_masks, auto=plan is None)  # [B, F, U, M]
        keys = self.fill_keys()
        occ_scores = scores[:, :, inverse[: len(names)]]
        frames = [long_rows(batch, keys, self.metrics, names, occ_scores, "occlusion")]
        if plan is not None:
            lookup = {m.tobytes(): i for i, m in enumerate(uniq_masks)}
            for kind, labels, values in plan.blocks(
                scores, lookup, self.group_names, o.interactions
            ):
                frames.append(long_rows(batch, keys, self.metrics, labels, values, kind))
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ Shapley API
    def shapley(self, x: Any, value_fn: ValueFunction | None = None) -> ShapleyResult:
        """Shapley values ``[B, G]`` of one batch (see :func:`~.coalitions.batch_shapley`)."""
        batch = as_batch(x)
        self._resolve(batch)
        return batch_shapley(self, batch, value_fn)
