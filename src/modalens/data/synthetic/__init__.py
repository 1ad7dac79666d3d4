"""Synthetic MapInWild-layout data with planted modality importances.

:mod:`.scenes` draws one scene (shared landscape structure, per-modality rasters and their
signals); :mod:`.generate` writes a dataset of them as tiled GeoTIFFs with a split file and
``metadata.json`` (planted and realised importances).
"""

from .generate import DEFAULT_IMPORTANCE, generate, normalize_importance, parse_importance
from .scenes import FOLDERS, MODALITIES, modality_signals, read_signals

__all__ = [
    "DEFAULT_IMPORTANCE",
    "FOLDERS",
    "MODALITIES",
    "generate",
    "modality_signals",
    "normalize_importance",
    "parse_importance",
    "read_signals",
]
