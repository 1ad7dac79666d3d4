"""The attribution stage: the deep occlusion framework (Ekim & Schmitt, IEEE GRSL 2024),
generalised.

For every sample and every channel group (a modality by default; any named groups of channels
on any channel axis), the input is occluded -- the group's channels are replaced in the
model's *normalised* input space -- and compared with the unoccluded input. An ``ALL`` row
occludes every grouped channel at once (the reference). How is chosen by one
:class:`AttributionOptions` (module :mod:`~.options`), from three registries of small
functions, each open to new entries:

- strategies (:mod:`~.strategies`, :func:`register_strategy`): the fill -- ``zeros``,
  ``ones``, ``uniform`` (U[0,1)), ``gaussian`` (N(0,1)) -- the paper's four -- ``mean``
  (per-channel train mean) and ``permute`` (another sample's values). Noise and permutations
  are seeded per ``(seed, strategy, draw, sample id)``, so results do not depend on batch
  composition or on resuming; ``draws=k`` repeats them k times.
- distances (:mod:`~.distances`, :func:`register_distance`): ``euclidean`` (the paper's),
  ``cosine``, ``relative``, ``mae``, ``delta`` -- per sample, float64.
- levels (:mod:`~.levels`, :func:`register_level`): ``embedding`` (the paper's: the
  ``encode()`` bottleneck, ``embed()``, a hooked submodule or a callable), ``output``
  (predictions over valid pixels) and ``loss`` (loss increase against the target).

Data path::

    a batch (as_batch: image, target, valid, ids, windows)
      -> fills, one per (strategy, draw)                     strategies.py
      -> batched forwards of the occluded inputs             engine.py, forward.py
         (every group, ALL and Shapley coalition, deduplicated, in chunks)
      -> distances per level                                 levels.py, distances.py
      -> long-form rows: sample_id, window, method, level,   rows.py (coalitions.py adds
         distance, strategy, group, draw, value               Shapley and interaction rows)
      -> parts: OUT/parts/part-NNNNNN.parquet, resumable      store.py
      -> OUT/scores.parquet
      -> summarize_scores (per-sample draw means, bootstrap   aggregation.py
         CI, share, rank, tier: the order with ties)          ranking.py
      -> OUT/summary.csv (and summary.txt, pairwise.csv,      run.py, figures.py
         influence.png)
      -> per stratum: OUT/stratified.csv (and .png)           strata.py

Entry points: :func:`attribute` (any model, any batches), :func:`attribute_run` (a trained
run folder on a split), :func:`modality_shapley` and :func:`precision_agreement` (bf16 vs
fp32), :class:`OcclusionEngine` (one batch at a time), :func:`occlusion_maps` /
:func:`occlusion_map_fn` (per-pixel sensitivity maps of whole scenes). Shapley values
(``shapley=True``) use ``v(S) = -score`` of occluding the groups outside ``S`` and come from
the same forwards (:mod:`~.coalitions`; the maths in :mod:`~.shapley`).

The names below are imported on first use, so importing one module of this package (the
command line reads the registries) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

#: public name -> module of this package that defines it (imported on first access)
_EXPORTS = {
    "ALL": "groups",
    "COLUMNS": "rows",
    "DISTANCES": "distances",
    "LEVELS": "levels",
    "STRATEGIES": "strategies",
    "AUTO_LEVEL": "options",
    "AttributionOptions": "options",
    "paper_options": "options",
    "Batch": "batches",
    "Evaluation": "batches",
    "Fill": "strategies",
    "FillContext": "strategies",
    "LazyBatch": "batches",
    "LevelInputs": "levels",
    "OcclusionEngine": "engine",
    "ShapleyResult": "shapley",
    "as_batch": "batches",
    "attribute": "api",
    "attribute_run": "run",
    "block_order": "aggregation",
    "choose_block": "aggregation",
    "describe_strata": "strata",
    "exact_shapley": "shapley",
    "format_order": "ranking",
    "format_summary": "aggregation",
    "groups_from_spec": "groups",
    "influence_bar_chart": "figures",
    "influence_figure": "figures",
    "map_figure": "figures",
    "modality_shapley": "api",
    "normalize_groups": "groups",
    "occlusion_map_fn": "maps",
    "occlusion_map_preview": "figures",
    "occlusion_maps": "maps",
    "pairwise": "aggregation",
    "pairwise_probabilities": "ranking",
    "paper_strategies": "strategies",
    "precision_agreement": "api",
    "register_distance": "distances",
    "register_level": "levels",
    "register_strategy": "strategies",
    "resolve_options": "options",
    "sampled_shapley": "shapley",
    "sample_views": "views",
    "sensitivity_map_fn": "maps",
    "strategy_comparison": "figures",
    "stratify": "strata",
    "summarize": "aggregation",
    "summarize_scores": "aggregation",
    "tiers": "ranking",
    "DictLayout": "dictinput",
    "NonFiniteInputWarning": "api",
    "mask_inputs": "batches",
}

if TYPE_CHECKING:  # static view of the lazy exports
    from .aggregation import (
        block_order,
        choose_block,
        format_summary,
        pairwise,
        summarize_scores,
    )
    from .aggregation import summarize as summarize  # deprecated alias (not in __all__)
    from .api import NonFiniteInputWarning, attribute, modality_shapley, precision_agreement
    from .batches import Batch, Evaluation, LazyBatch, as_batch, mask_inputs
    from .dictinput import DictLayout
    from .distances import DISTANCES, register_distance
    from .engine import OcclusionEngine
    from .figures import (
        influence_bar_chart,
        influence_figure,
        map_figure,
        occlusion_map_preview,
        strategy_comparison,
    )
    from .groups import ALL, groups_from_spec, normalize_groups
    from .levels import LEVELS, LevelInputs, register_level
    from .maps import occlusion_map_fn, occlusion_maps, sensitivity_map_fn
    from .options import AUTO_LEVEL, AttributionOptions, paper_options, resolve_options
    from .ranking import format_order, pairwise_probabilities, tiers
    from .rows import COLUMNS
    from .run import attribute_run
    from .shapley import ShapleyResult, exact_shapley, sampled_shapley
    from .strata import describe_strata, stratify
    from .strategies import STRATEGIES, Fill, FillContext, paper_strategies, register_strategy
    from .views import sample_views

__all__ = [
    "ALL",
    "AUTO_LEVEL",
    "AttributionOptions",
    "Batch",
    "COLUMNS",
    "DISTANCES",
    "DictLayout",
    "Evaluation",
    "Fill",
    "FillContext",
    "LEVELS",
    "LazyBatch",
    "NonFiniteInputWarning",
    "LevelInputs",
    "OcclusionEngine",
    "STRATEGIES",
    "ShapleyResult",
    "as_batch",
    "attribute",
    "attribute_run",
    "block_order",
    "choose_block",
    "describe_strata",
    "exact_shapley",
    "format_order",
    "format_summary",
    "groups_from_spec",
    "influence_bar_chart",
    "influence_figure",
    "map_figure",
    "mask_inputs",
    "modality_shapley",
    "normalize_groups",
    "occlusion_map_fn",
    "occlusion_map_preview",
    "occlusion_maps",
    "pairwise",
    "pairwise_probabilities",
    "paper_options",
    "paper_strategies",
    "precision_agreement",
    "register_distance",
    "register_level",
    "register_strategy",
    "resolve_options",
    "sampled_shapley",
    "sample_views",
    "sensitivity_map_fn",
    "strategy_comparison",
    "stratify",
    "summarize_scores",
    "tiers",
]


__getattr__, __dir__ = lazy_exports(
    __name__, {k: f"{__name__}.{v}" for k, v in _EXPORTS.items()}, globals()
)
