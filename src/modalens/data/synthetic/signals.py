"""The modalities of the synthetic data and the signal ``z_m`` each one carries into the target.

:func:`modality_signals` computes each modality's signal ``z_m`` in [0, 1] from its written
raster alone (the target is their weighted sum; the realised importances measure how much each
term moves it); :func:`read_signals` reads them back from a written sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

MODALITIES = ("s2", "s1", "esa_wc", "viirs")


FOLDERS = {
    "s2": "s2_temporal_subset",
    "s1": "s1",
    "esa_wc": "ESA_WC",
    "viirs": "VIIRS",
    "target": "NI",
}


#: naturalness (0-1) the WorldCover signal gives each class
WORLDCOVER_NATURALNESS = {
    10: 0.90,  # tree cover
    20: 0.75,  # shrubland
    30: 0.55,  # grassland
    40: 0.20,  # cropland
    50: 0.00,  # built-up
    60: 0.60,  # bare / sparse vegetation
    70: 1.00,  # snow and ice
    80: 0.95,  # permanent water
    90: 0.90,  # herbaceous wetland
    95: 1.00,  # mangroves
    100: 0.95,  # moss and lichen
}


VIIRS_SCALE = 0.6  # radiance scale of the VIIRS signal exp(-rad / VIIRS_SCALE)

S1_RATIO_LOW, S1_RATIO_SPAN = -11.0, 7.0  # VH - VV (dB) of z_s1 = 0 and its span to z_s1 = 1


def s2_signal(s2: np.ndarray) -> np.ndarray:
    """z_s2 in [0, 1] from S2 bands [10, H, W] (reflectance x 10000): vegetation or water."""
    s2 = np.asarray(s2, dtype=np.float32)
    b3, b4, b8, b11 = s2[1], s2[2], s2[6], s2[8]
    ndvi = (b8 - b4) / np.maximum(b8 + b4, 1.0)
    mndwi = (b3 - b11) / np.maximum(b3 + b11, 1.0)
    veg = np.clip((ndvi - 0.1) / 0.7, 0.0, 1.0)
    water = 0.95 * np.clip((mndwi - 0.2) / 0.4, 0.0, 1.0)
    return np.maximum(veg, water).astype(np.float32)


def s1_signal(s1: np.ndarray) -> np.ndarray:
    """z_s1 in [0, 1] from S1 [2, H, W] (VV, VH in dB): the cross-polarisation ratio."""
    s1 = np.asarray(s1, dtype=np.float32)
    return np.clip((s1[1] - s1[0] - S1_RATIO_LOW) / S1_RATIO_SPAN, 0.0, 1.0).astype(np.float32)


_WC_LUT = np.full(256, np.nan, np.float32)

for _code, _value in WORLDCOVER_NATURALNESS.items():
    _WC_LUT[_code] = _value


def esa_wc_signal(wc: np.ndarray) -> np.ndarray:
    """z_esa_wc in [0, 1] from WorldCover codes [H, W] (or [1, H, W]); NaN where no-data."""
    wc = np.asarray(wc)
    if wc.ndim == 3:
        wc = wc[0]
    return _WC_LUT[np.clip(wc, 0, 255).astype(np.uint8)]


def viirs_signal(viirs: np.ndarray) -> np.ndarray:
    """z_viirs in [0, 1] from radiance [H, W] (or [1, H, W]): dark is natural."""
    v = np.asarray(viirs, dtype=np.float32)
    if v.ndim == 3:
        v = v[0]
    return np.exp(-np.maximum(v, 0.0) / VIIRS_SCALE).astype(np.float32)


def modality_signals(
    s2: np.ndarray, s1: np.ndarray, esa_wc: np.ndarray, viirs: np.ndarray
) -> dict[str, np.ndarray]:
    """The per-modality signals ``z_m`` (each [H, W], in [0, 1]) the target is built from."""
    return {
        "s2": s2_signal(s2),
        "s1": s1_signal(s1),
        "esa_wc": esa_wc_signal(esa_wc),
        "viirs": viirs_signal(viirs),
    }


def read_signals(root: str | Path, sample_id: str) -> dict[str, np.ndarray]:
    """``z_m`` of one written sample, read back from its GeoTIFFs (for checks and tests)."""

    root = Path(root)
    arrays = {}
    for m in MODALITIES:
        with rasterio.open(root / FOLDERS[m] / f"{sample_id}.tif") as src:
            arrays[m] = src.read()
    return modality_signals(arrays["s2"], arrays["s1"], arrays["esa_wc"], arrays["viirs"])
