"""Attribution of a model over batches: :func:`attribute`, :func:`modality_shapley` and
:func:`precision_agreement`.

These are the Python entry points for any model and any batches (the run-level entry point is
:func:`~.run.attribute_run`). Each takes an :class:`~.options.AttributionOptions` and/or its
fields as keywords (turned into one options object by :func:`~.options.resolve_options`).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from ..errors import SpecError
from ..fingerprint import PROVENANCE, provenance
from .aggregation import BLOCK, summarize_scores
from .batches import Batch, LazyBatch, as_batch, mask_inputs
from .coalitions import ValueFunction
from .dictinput import adapt_to_dict, is_dict_batch, pack_batch
from .engine import OcclusionEngine
from .groups import ALL, Groups
from .options import AUTO_LEVEL, AttributionOptions, resolve_options
from .rows import empty_rows
from .shapley import ShapleyResult
from .sharding import Shard
from .store import ScoreStore, check_store


class NonFiniteInputWarning(UserWarning):
    """NaN or inf values reached :func:`attribute` and were set to 0."""


def _peek(batches: Iterable[Any]) -> tuple[Iterable[Any], Any]:
    """``(batches, first batch or None)`` without consuming a one-pass iterable; a lazy first
    batch is not read (None)."""
    if isinstance(batches, Sequence):
        first = batches[0] if len(batches) else None
    else:
        it = iter(batches)
        try:
            first = next(it)
        except StopIteration:
            return [], None
        batches = itertools.chain([first], it)
    return batches, None if isinstance(first, LazyBatch) else first


def _carries_target(first: Any, batches: Iterable[Any]) -> bool:
    """Whether the batches carry targets, judged by the first (a lazy one is read)."""
    if first is None and isinstance(batches, Sequence) and len(batches):
        head = batches[0]
        first = head.load() if isinstance(head, LazyBatch) else head
    if isinstance(first, Mapping):
        return first.get("target") is not None
    if isinstance(first, tuple | list):
        return len(first) > 1 and first[1] is not None
    return getattr(first, "target", None) is not None


def _channel_groups(groups: Groups | str | None) -> Groups:
    """``groups`` for stacked (non-dict) input: a grouping name or None only applies to dict
    images.

    Raises:
        SpecError: ``groups`` is a name or None.
    """
    if groups is None or isinstance(groups, str):
        raise SpecError(
            f"groups={groups!r} needs dict images (one group per key)",
            "groups",
            "with a stacked image tensor give {name: [channel indices]}",
        )
    return groups


def _owned(batches: Iterable[Any], done: set[str], shard: Shard) -> set[int] | None:
    """The global indices of ``shard``'s batches: round robin over the lazy batches with
    samples still to do (None for other batches: every ``world``-th index instead)."""
    if not shard.sharded or not isinstance(batches, Sequence):
        return None
    if not all(isinstance(b, LazyBatch) for b in batches):
        return None
    todo = [k for k, b in enumerate(batches) if not all(i in done for i in b.ids)]
    return set(shard.pick(todo))


def attribute(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups | str | None,
    options: AttributionOptions | None = None,
    *,
    input_fn: Callable[[Batch], Batch] | None = None,
    mask_invalid: bool = False,
    out: str | Path | None = None,
    resume: bool = True,
    on_batch: Callable[[int, pd.DataFrame], None] | None = None,
    progress: bool = False,
    engine: OcclusionEngine | None = None,
    resume_config: Mapping[str, Any] | None = None,
    shard: Shard | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Occlusion scores (and Shapley values) of ``model`` over an iterable of batches.

    Args:
        model: any ``nn.Module`` taking the stacked input, or (with dict images) the dict of
            modality tensors.
        batches: dicts (``image``, optional ``target``, ``valid``, ``id``, ``window``),
            tensors, ``(image, target)`` tuples or :class:`~.batches.LazyBatch`; ``image``
            may be a dict ``{modality: [B, C, ...]}`` (:mod:`~.dictinput`).
        groups: channel groups (see :func:`~.groups.normalize_groups`); with dict images
            None/``"keys"`` (one group per key), ``"bands"``, ``{name: [keys]}`` or
            ``{name: {key: [channels]}}``.
        options: the :class:`~.options.AttributionOptions` (default: all defaults).
        input_fn: ``input_fn(batch) -> batch`` prepares each batch (e.g. masks invalid input
            pixels).
        mask_invalid: also zero the input where ``valid`` is False, as training does by
            default (``mask_invalid_inputs``; :func:`~.attribute_run` passes the run's
            setting). NaN/inf input values are always set to 0 (the normalised train mean):
            a model fed NaN returns NaN scores. Those at pixels ``valid`` does not mark
            invalid give one :class:`NonFiniteInputWarning` per call.
        out: stream every batch's rows to ``out/parts`` atomically; ``out/scores.parquet``
            holds the rows of the samples of ``batches`` at the end.
        resume: with ``out``, skip samples already written (a configuration change is
            refused); False deletes the parts and starts over.
        on_batch: ``on_batch(index, rows)`` after every scored batch.
        progress: show a progress bar.
        engine: an engine to reuse (its options are the call's; giving other options too is
            an error).
        resume_config: entries added to the configuration a rerun must match (e.g. the
            split); ``provenance`` (default :func:`modalens.fingerprint.provenance`: the
            package version and thread count) names what produced the scores, e.g. the
            checkpoint's hash (:func:`~.run.attribute_run` adds it and the data identity).
        shard: this process's share of a sharded run (:func:`~.sharding.launch`; needs
            ``out``): it scores only its batches -- round robin over the batches with
            samples still to do, for lazy batches, else every ``world``-th batch -- and
            writes them as parts named by their global index; after all ranks are done rank
            0 assembles ``scores.parquet`` and returns it, the other ranks return no rows.
        **overrides: fields of :class:`~.options.AttributionOptions`.

    Returns:
        The long-form DataFrame (:data:`~.rows.COLUMNS`); ``attrs["precision"]`` is the
        engine's :meth:`~.engine.OcclusionEngine.precision_report` (with ``auto``: the share
        of occluded inputs re-evaluated in fp32 in this call).

    Raises:
        SpecError: invalid options, an engine with other options, or a shard without
            ``out``.
    """
    shard = shard or Shard()
    if shard.sharded and out is None:
        raise SpecError(
            "a sharded attribution needs an output folder", "out", "pass out= (a shared folder)"
        )
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    engine, batches, layout = _engine_for(model, batches, groups, options, engine, overrides)
    store = _open_store(out, engine, resume_config, resume, shard)
    done = store.done if store is not None else set()
    owned = _owned(batches, done, shard)
    walk = _Pass(done, layout)
    if progress:
        walk.bar = _progress_bar(batches, total, done, owned, shard)
    frames: list[pd.DataFrame] = []
    try:
        for index, raw in enumerate(batches):
            mine = index in owned if owned is not None else index % shard.world == shard.rank
            batch = walk.read(raw, mine, owned is None)
            if batch is None:
                continue
            rows = engine.score_batch(walk.prepare(batch, index, input_fn, mask_invalid))
            if store is not None:
                store.write(index, rows)
            else:
                frames.append(rows)
            if on_batch is not None:
                on_batch(index, rows)
            walk.tick()
    finally:
        if walk.bar is not None:
            walk.bar.close()
    if store is not None:
        shard.barrier()  # every rank has written its parts
        result = store.assemble(walk.ids) if shard.main else empty_rows()
    else:
        result = pd.concat(frames, ignore_index=True) if frames else empty_rows()
    # with several ranks: summed over them (every rank takes part in the sum)
    result.attrs["precision"] = engine.precision_report(shard.total(engine.auto_counts))
    return result


def _engine_for(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups | str | None,
    options: AttributionOptions | None,
    engine: OcclusionEngine | None,
    overrides: Mapping[str, Any],
) -> tuple[OcclusionEngine, Iterable[Any], Any]:
    """``(engine, batches, dict layout or None)`` of an :func:`attribute` call: the given
    engine (refusing other options) or a new one, its ``auto`` level resolved by whether the
    first batch carries targets and a dict-input model adapted (:mod:`~.dictinput`)."""
    if engine is not None:
        if (options is not None or overrides) and resolve_options(
            options, **overrides
        ) != engine.options:
            raise SpecError(
                "attribute() got an engine and other options",
                "engine",
                "pass the options to the engine only (or leave the engine out)",
            )
        return engine, batches, None
    opts = resolve_options(options, **overrides)
    batches, first = _peek(batches)
    if opts.levels == (AUTO_LEVEL,):
        opts = opts.for_targets(_carries_target(first, batches))
    layout = None
    if is_dict_batch(first):
        model, groups, opts, layout = adapt_to_dict(model, groups, opts, first)
    return OcclusionEngine(model, _channel_groups(groups), opts), batches, layout


def _open_store(
    out: str | Path | None,
    engine: OcclusionEngine,
    resume_config: Mapping[str, Any] | None,
    resume: bool,
    shard: Shard,
) -> ScoreStore | None:
    """The score store of ``out`` (None without): rank 0 creates or clears it, the other
    ranks check it and open it once it exists."""
    if out is None:
        return None
    cfg = {**engine.config(), PROVENANCE: provenance(), **(resume_config or {})}
    if not shard.main:  # the same one-line error on every rank
        check_store(Path(out), cfg, resume)
    store = ScoreStore(Path(out), cfg, resume) if shard.main else None
    shard.barrier()  # rank 0 has created (or cleared) the folder
    if store is None:
        store = ScoreStore(Path(out), cfg, resume, create=False)
    shard.barrier()  # every rank knows what was done before any writes
    return store


def _progress_bar(
    batches: Iterable[Any],
    total: int | None,
    done: set[str],
    owned: set[int] | None,
    shard: Shard,
) -> Any:
    """The progress bar over this rank's batches (those with samples to do, when known)."""
    desc = f"attribute (rank {shard.rank}/{shard.world})" if shard.sharded else "attribute"
    if owned is not None:
        lazy = cast(Sequence[LazyBatch], batches)  # _owned: only for lazy sequences
        total = sum(1 for k in owned if not done.issuperset(lazy[k].ids))
    elif shard.sharded and total is not None:
        total = len(range(shard.rank, total, shard.world))
    return tqdm(total=total, desc=desc, unit="batch")


@dataclass
class _Pass:
    """One pass of :func:`attribute` over the batches: the samples seen (their ids, in order,
    for the assembled table), the samples already done and the progress bar."""

    done: set[str]
    layout: Any
    bar: Any = None
    seen: int = 0
    ids: list[str] = field(default_factory=list)
    warned: bool = False

    def tick(self) -> None:
        """One batch of this rank finished (or skipped)."""
        if self.bar is not None:
            self.bar.update(1)

    def read(self, raw: Any, mine: bool, count_done: bool) -> Batch | None:
        """The samples of ``raw`` still to score, or None (not this rank's batch, or all
        done; a lazy batch is then not read). ``count_done``: a finished lazy batch of this
        rank ticks the bar (it is in its total)."""
        lazy = isinstance(raw, LazyBatch)
        if lazy:
            self.ids.extend(str(i) for i in raw.ids)
            if not mine or all(i in self.done for i in raw.ids):
                self.seen += len(raw.ids)
                if mine and count_done:
                    self.tick()
                return None
            raw = raw.load()
        if self.layout is not None and is_dict_batch(raw):
            raw = pack_batch(raw, self.layout)
        batch = as_batch(raw, start=self.seen)
        if not lazy:
            self.ids.extend(str(i) for i in batch.ids)
        self.seen += len(batch.ids)
        if not mine:
            return None
        keep = [i for i, sid in enumerate(batch.ids) if sid not in self.done]
        if not keep:
            self.tick()
            return None
        return batch.subset(keep) if len(keep) < len(batch.ids) else batch

    def prepare(
        self,
        batch: Batch,
        index: int,
        input_fn: Callable[[Batch], Batch] | None,
        mask_invalid: bool,
    ) -> Batch:
        """``batch`` through ``input_fn`` and :func:`~.batches.mask_inputs`, warning once per
        pass about non-finite input values."""
        if input_fn is not None:
            batch = input_fn(batch)
        batch, n_bad = mask_inputs(batch, mask_invalid)
        if n_bad and not self.warned:
            self.warned = True
            warnings.warn(
                f"{n_bad} NaN/inf input values in batch {index} (samples "
                f"{', '.join(batch.ids[:3])}{', ...' if len(batch.ids) > 3 else ''}) "
                "were set to 0, the normalised train mean; mark them invalid with a "
                "'valid' mask or clean the input",
                NonFiniteInputWarning,
                stacklevel=3,
            )
        return batch


def precision_agreement(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups,
    options: AttributionOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """How far bf16 scores are from fp32 on the same data.

    Runs :func:`attribute` in both precisions (the ``precision`` option is ignored).

    Args:
        model: the model.
        batches: the batches (read once, kept in memory).
        groups: channel groups.
        options: the :class:`~.options.AttributionOptions` (default: all defaults).
        **overrides: fields of :class:`~.options.AttributionOptions`.

    Returns:
        ``max_rel_error`` / ``median_rel_error`` of the occlusion scores,
        ``dataset_rank_agreement`` (share of (level, distance, strategy) blocks whose
        dataset-level group ranking is identical), ``sample_top1_agreement`` (share of
        samples x blocks with the same most influential group) and the two score tables
        (``fp32``, ``bf16``).
    """
    opts = resolve_options(options, **overrides)
    batches = list(batches)
    a = attribute(model, batches, groups, opts.replace(precision="fp32"))
    b = attribute(model, batches, groups, opts.replace(precision="bf16"))
    keys = ["sample_id", "method", "level", "distance", "strategy", "group", "draw"]
    m = a.merge(b, on=keys, suffixes=("_fp32", "_bf16"))
    m = m[m["method"] == "occlusion"]
    rel = (m["value_bf16"] - m["value_fp32"]).abs() / m["value_fp32"].abs().clip(lower=1e-12)
    block = BLOCK
    sa, sb = summarize_scores(a, n_boot=0), summarize_scores(b, n_boot=0)
    sm = sa.merge(sb, on=[*block, "group"], suffixes=("_fp32", "_bf16"))
    sm = sm[(sm["group"] != ALL) & (sm["method"] == "occlusion")]
    agree = [
        bool(np.array_equal(g["rank_fp32"].to_numpy(), g["rank_bf16"].to_numpy()))
        for _, g in sm.groupby(block)
    ]
    ms = m[m["group"] != ALL]
    per = [*block, "sample_id", "draw"]
    top_a = ms.loc[ms.groupby(per)["value_fp32"].idxmax(), "group"].to_numpy()
    top_b = ms.loc[ms.groupby(per)["value_bf16"].idxmax(), "group"].to_numpy()
    top1 = float(np.mean(top_a == top_b)) if len(top_a) else math.nan
    return {
        "max_rel_error": float(rel.max()) if len(rel) else math.nan,
        "median_rel_error": float(rel.median()) if len(rel) else math.nan,
        "dataset_rank_agreement": float(np.mean(agree)) if agree else math.nan,
        "sample_top1_agreement": top1,
        "fp32": a,
        "bf16": b,
    }


def modality_shapley(
    model: nn.Module,
    x: Any,
    groups: Groups | str | None,
    options: AttributionOptions | None = None,
    *,
    value_fn: ValueFunction | None = None,
    **overrides: Any,
) -> ShapleyResult:
    """Modality (or band) Shapley values of a model for one batch ``x``.

    The value function is ``v(S) = -score(N \\ S)`` with the occlusion score of the first
    strategy, level and distance of the options (the others are not computed), or
    ``value_fn(occluded, full)``: a callable getting the model evaluation of the coalition's
    input and of the full input (:class:`~.batches.Evaluation`: ``embedding``, ``output``,
    ``sample``, ``target``, ``valid``) and returning one value per row. Values are exact
    unless the ``shapley`` option asks for ``"sampled"`` (or ``"auto"`` with more than 10
    groups).

    Args:
        model: the model.
        x: one batch (its ``image`` may be a dict of modality tensors, as in
            :func:`attribute`).
        groups: channel groups (the players).
        options: the :class:`~.options.AttributionOptions` (default: all defaults).
        value_fn: replaces ``v(S) = -score``.
        **overrides: fields of :class:`~.options.AttributionOptions`.

    Returns:
        Values ``[B, n]`` (and interactions ``[B, n, n]`` when exact).

    Raises:
        ModalensError: exact values for more than ``max_players`` groups.
    """
    opts = resolve_options(options, **overrides)
    first = opts.replace(
        strategies=opts.strategies[:1], levels=opts.levels[:1], distances=opts.distances[:1]
    )
    if is_dict_batch(x):
        model, groups, first, layout = adapt_to_dict(model, groups, first, x)
        x = pack_batch(x, layout)
    return OcclusionEngine(model, _channel_groups(groups), first).shapley(x, value_fn=value_fn)
