"""Built-in dataset specs, one module per dataset, registered by name in :mod:`.registry`."""

from .bigearthnet import BIGEARTHNET_43_LABELS, BIGEARTHNET_S2_BANDS, bigearthnet_spec
from .mapinwild import (
    S2_10_BANDS,
    WORLDCOVER_CLASSES,
    WORLDCOVER_NAMES,
    mapinwild_spec,
    prepare_mapinwild,
)
from .registry import PRESETS, get_preset, register_preset

__all__ = [
    "BIGEARTHNET_43_LABELS",
    "BIGEARTHNET_S2_BANDS",
    "PRESETS",
    "S2_10_BANDS",
    "WORLDCOVER_CLASSES",
    "WORLDCOVER_NAMES",
    "bigearthnet_spec",
    "get_preset",
    "mapinwild_spec",
    "prepare_mapinwild",
    "register_preset",
]
