"""Built-in dataset specs, one module per dataset, registered by name in :mod:`.registry`."""

from .bigearthnet import BIGEARTHNET_43_LABELS, BIGEARTHNET_S2_BANDS, bigearthnet_spec
from .mapinwild import (
    S2_10_BANDS,
    WORLDCOVER_CLASSES,
    WORLDCOVER_NAMES,
    mapinwild_spec,
    prepare_mapinwild,
)
from .registry import GENERIC_OPTIONS, PRESETS, get_preset, preset_options, register_preset
from .sen1floods11 import SEN1FLOODS11_S2_BANDS, sen1floods11_layout, sen1floods11_spec

__all__ = [
    "BIGEARTHNET_43_LABELS",
    "BIGEARTHNET_S2_BANDS",
    "GENERIC_OPTIONS",
    "PRESETS",
    "S2_10_BANDS",
    "SEN1FLOODS11_S2_BANDS",
    "WORLDCOVER_CLASSES",
    "WORLDCOVER_NAMES",
    "bigearthnet_spec",
    "get_preset",
    "mapinwild_spec",
    "preset_options",
    "prepare_mapinwild",
    "register_preset",
    "sen1floods11_layout",
    "sen1floods11_spec",
]
