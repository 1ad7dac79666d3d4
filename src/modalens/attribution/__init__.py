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
    "DISTANCES": "distances",
    "LEVELS": "levels",
    "STRATEGIES": "strategies",
    "AttributionOptions": "options",
    "paper_options": "options",
    "Fill": "strategies",
    "FillContext": "strategies",
    "LevelInputs": "levels",
    "OcclusionEngine": "engine",
    "ShapleyResult": "shapley",
    "attribute": "api",
    "attribute_run": "run",
    "exact_shapley": "shapley",
    "format_summary": "aggregation",
    "groups_from_spec": "groups",
    "influence_figure": "figures",
    "map_figure": "figures",
    "modality_shapley": "api",
    "occlusion_map_fn": "maps",
    "occlusion_maps": "maps",
    "precision_agreement": "api",
    "register_distance": "distances",
    "register_level": "levels",
    "register_strategy": "strategies",
    "sampled_shapley": "shapley",
    "sample_views": "views",
    "stratify": "strata",
    "summarize": "aggregation",
    "summarize_scores": "aggregation",
    "DictLayout": "dictinput",
    "NonFiniteInputWarning": "api",
}

if TYPE_CHECKING:  # static view of the lazy exports
    from .aggregation import format_summary, summarize_scores
    from .aggregation import summarize as summarize  # deprecated alias (not in __all__)
    from .api import NonFiniteInputWarning, attribute, modality_shapley, precision_agreement
    from .dictinput import DictLayout
    from .distances import DISTANCES, register_distance
    from .engine import OcclusionEngine
    from .figures import influence_figure, map_figure
    from .groups import ALL, groups_from_spec
    from .levels import LEVELS, LevelInputs, register_level
    from .maps import occlusion_map_fn, occlusion_maps
    from .options import AttributionOptions, paper_options
    from .run import attribute_run
    from .shapley import ShapleyResult, exact_shapley, sampled_shapley
    from .strata import stratify
    from .strategies import STRATEGIES, Fill, FillContext, register_strategy
    from .views import sample_views

__all__ = [
    "ALL",
    "attribute",
    "attribute_run",
    "AttributionOptions",
    "DictLayout",
    "DISTANCES",
    "exact_shapley",
    "Fill",
    "FillContext",
    "format_summary",
    "groups_from_spec",
    "influence_figure",
    "LevelInputs",
    "LEVELS",
    "map_figure",
    "modality_shapley",
    "NonFiniteInputWarning",
    "occlusion_map_fn",
    "occlusion_maps",
    "OcclusionEngine",
    "paper_options",
    "precision_agreement",
    "register_distance",
    "register_level",
    "register_strategy",
    "sample_views",
    "sampled_shapley",
    "ShapleyResult",
    "STRATEGIES",
    "stratify",
    "summarize_scores",
]


__getattr__, __dir__ = lazy_exports(
    __name__, {k: f"{__name__}.{v}" for k, v in _EXPORTS.items()}, globals()
)
