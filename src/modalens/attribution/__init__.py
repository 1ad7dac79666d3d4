"""The attribution stage: the deep occlusion framework (Ekim & Schmitt, IEEE GRSL 2024).

TODO
"""

from .aggregation import format_summary, summarize
from .api import attribute, modality_shapley, precision_agreement
from .batches import Batch, LazyBatch, as_batch
from .engine import OcclusionEngine
from .figures import influence_bar_chart, occlusion_map_preview, strategy_comparison
from .groups import ALL, groups_from_spec, normalize_groups
from .maps import occlusion_map_fn, occlusion_maps
from .run import attribute_run
from .shapley import ShapleyResult, exact_shapley, sampled_shapley
from .store import COLUMNS

__all__ = [
    "format_summary",
    "influence_bar_chart",
    "occlusion_map_preview",
    "strategy_comparison",
    "ALL",
    "COLUMNS",
    "Batch",
    "LazyBatch",
    "OcclusionEngine",
    "ShapleyResult",
    "as_batch",
    "attribute",
    "attribute_run",
    "exact_shapley",
    "groups_from_spec",
    "modality_shapley",
    "normalize_groups",
    "occlusion_map_fn",
    "occlusion_maps",
    "precision_agreement",
    "sampled_shapley",
    "summarize",
]
