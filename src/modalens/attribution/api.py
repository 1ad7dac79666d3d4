"""TODO docstring: attribution/api.py"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor, nn

from .aggregation import summarize
from .batches import Batch, LazyBatch, as_batch
from .engine import OcclusionEngine
from .groups import ALL, Groups
from .shapley import MAX_EXACT_PLAYERS, ShapleyResult
from .store import COLUMNS, _PartStore


def attribute(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups,
    *,
    strategies: str | Sequence[str] = ("zeros",),
    distances: str | Sequence[str] = ("euclidean",),
    levels: str | Sequence[str] = ("embedding",),
    embedding: Any = "auto",
    channel_axis: int = 1,
    draws: int = 1,
    seed: int = 0,
    mean: Sequence[float] | Tensor | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    shapley: bool | str = False,
    permutations: int = 64,
    interactions: bool = True,
    precision: str = "fp32",
    optimize: bool = True,
    chunk_size: int | None = None,
    include_all: bool = True,
    input_fn: Callable[[Batch], Batch] | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    on_batch: Callable[[int, pd.DataFrame], None] | None = None,
    progress: bool = False,
    engine: OcclusionEngine | None = None,
    resume_config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Occlusion scores (and Shapley values) of ``model`` over an iterable of batches.

    ``batches`` yields dicts (``image``, optional ``target``, ``valid``, ``id``, ``window``),
    tensors, ``(image, target)`` tuples or :class:`LazyBatch`. ``input_fn(batch) -> batch``
    prepares each batch (e.g. masks invalid input pixels). With ``out`` every batch's rows are
    written to ``out/parts`` atomically and ``on_batch(index, rows)`` is called; a rerun
    (``resume=True``) skips samples already written (a config change is refused;
    ``resume=False`` deletes the parts and starts over) and ``out/scores.parquet`` holds
    the rows of the samples of ``batches`` at the end (``resume_config`` adds entries, e.g. the
    split, to the configuration a rerun must match). Returns the long-form DataFrame.
    See :class:`OcclusionEngine` for the other arguments.
    """
    eng = engine or OcclusionEngine(
        model,
        groups,
        strategies=strategies,
        distances=distances,
        levels=levels,
        embedding=embedding,
        channel_axis=channel_axis,
        draws=draws,
        seed=seed,
        mean=mean,
        loss_fn=loss_fn,
        precision=precision,
        optimize=optimize,
        chunk_size=chunk_size,
        include_all=include_all,
    )
    store = None
    if out is not None:
        cfg = eng.config()
        cfg["shapley"] = str(shapley)
        cfg["permutations"] = int(permutations) if shapley else None
        cfg.update(resume_config or {})
        store = _PartStore(Path(out), cfg, resume)
    done = store.done if store is not None else set()
    frames: list[pd.DataFrame] = []
    it: Iterable[Any] = batches
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        bar = tqdm(total=total, desc="attribute", unit="batch")
    seen = 0
    seen_ids: list[str] = []
    try:
        for index, raw in enumerate(it):
            lazy = isinstance(raw, LazyBatch)
            if lazy:
                seen_ids.extend(str(i) for i in raw.ids)
                if all(i in done for i in raw.ids):
                    seen += len(raw.ids)
                    if bar is not None:
                        bar.update(1)
                    continue
                raw = raw.load()
            batch = as_batch(raw, start=seen)
            if not lazy:
                seen_ids.extend(str(i) for i in batch.ids)
            seen += len(batch.ids)
            keep = [i for i, sid in enumerate(batch.ids) if sid not in done]
            if not keep:
                if bar is not None:
                    bar.update(1)
                continue
            if len(keep) < len(batch.ids):
                batch = batch.subset(keep)
            if input_fn is not None:
                batch = input_fn(batch)
            rows = eng.score_batch(
                batch, shapley=shapley, permutations=permutations, interactions=interactions
            )
            if store is not None:
                store.write(index, rows)
            else:
                frames.append(rows)
            if on_batch is not None:
                on_batch(index, rows)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if store is not None:
        return store.assemble(seen_ids)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)


def precision_agreement(
    model: nn.Module,
    batches: Iterable[Any],
    groups: Groups,
    **options: Any,
) -> dict[str, Any]:
    """How far bf16 scores are from fp32 on the same data: runs :func:`attribute` in both
    precisions and returns ``max_rel_error`` / ``median_rel_error`` of the occlusion scores,
    ``dataset_rank_agreement`` (share of (level, distance, strategy) blocks whose
    dataset-level group ranking is identical), ``sample_top1_agreement`` (share of samples x
    blocks with the same most influential group) and the two score tables."""

    batches = list(batches)
    options = {k: v for k, v in options.items() if k not in ("precision", "out")}
    a = attribute(model, batches, groups, precision="fp32", **options)
    b = attribute(model, batches, groups, precision="bf16", **options)
    keys = ["sample_id", "method", "level", "distance", "strategy", "group", "draw"]
    m = a.merge(b, on=keys, suffixes=("_fp32", "_bf16"))
    m = m[m["method"] == "occlusion"]
    rel = (m["value_bf16"] - m["value_fp32"]).abs() / m["value_fp32"].abs().clip(lower=1e-12)
    block = ["method", "level", "distance", "strategy"]
    sa, sb = summarize(a, n_boot=0), summarize(b, n_boot=0)
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
    model: Any,
    x: Any,
    groups: Mapping[str, Sequence[int]] | Sequence[Sequence[int]],
    *,
    strategy: str = "zeros",
    level: str = "embedding",
    distance: str = "euclidean",
    value_fn: Callable[..., Any] | None = None,
    method: str = "exact",
    permutations: int = 64,
    interactions: bool = True,
    max_players: int = MAX_EXACT_PLAYERS,
    **engine_options: Any,
) -> ShapleyResult:
    """Modality (or band) Shapley values of a model for one batch ``x``.

    The value function is ``v(S) = -score(N \\ S)`` with the occlusion score of ``level`` /
    ``distance`` / ``strategy`` (see the module docstring), or ``value_fn(occluded, full)``:
    a callable getting the model evaluation of the coalition's input and of the full input
    (:class:`modalens.occlusion.Evaluation`: ``embedding``, ``output``, ``sample``,
    ``target``, ``valid``) and returning one value per row. Further keyword arguments go to
    :class:`modalens.occlusion.OcclusionEngine` (``embedding``, ``channel_axis``, ``seed``,
    ``mean``, ``precision``, ``optimize``, ``chunk_size``, ``loss_fn``...).

    Returns values ``[B, n]`` (and interactions ``[B, n, n]`` when exact).
    """

    engine = OcclusionEngine(
        model,
        groups,
        strategies=(strategy,),
        distances=(distance,),
        levels=(level,),
        **engine_options,
    )
    return engine.shapley(
        x,
        method=method,
        permutations=permutations,
        interactions=interactions,
        max_players=max_players,
        value_fn=value_fn,
    )
