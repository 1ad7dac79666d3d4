"""Writing a synthetic dataset: planted importances, scenes as tiled GeoTIFFs, split and metadata.

:func:`generate` is ``modalens synth``; :func:`parse_importance` reads the CLI's
``s2=0.4,s1=0.3,...`` form and :func:`normalize_importance` checks and normalises the weights.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from tqdm.auto import tqdm

from ...errors import SpecError
from ...io import atomic_write_json, atomic_write_text
from ..presets.mapinwild import S2_10_BANDS, WORLDCOVER_CLASSES, WORLDCOVER_NAMES
from ..rasters import write_geotiff
from .scenes import (
    EPSG,
    FOLDERS,
    GENERATOR_VERSION,
    ID_OFFSET,
    MODALITIES,
    NOISE_STD,
    PIXEL_SIZE,
    S1_RATIO_LOW,
    S1_RATIO_SPAN,
    VIIRS_SCALE,
    WORLDCOVER_NATURALNESS,
    clear_field_cache,
    make_scene,
    modality_signals,
    seeded_rng,
)

DEFAULT_IMPORTANCE = {"s2": 0.4, "s1": 0.3, "esa_wc": 0.2, "viirs": 0.1}


def _importance_error(what: str, fix: str | None = None) -> SpecError:
    return SpecError(
        what,
        "--importance",
        fix or "write e.g. s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1 (keys s2, s1, esa_wc, viirs)",
    )


def parse_importance(text: str) -> dict[str, float]:
    """Parse ``"s2=0.5,s1=0.5"`` into ``{"s2": 0.5, "s1": 0.5}`` (not normalised).

    Raises :class:`SpecError` on bad syntax, an unknown modality, a repeated key or a negative
    or non-finite value.
    """
    if not isinstance(text, str) or not text.strip():
        raise _importance_error("empty importance string")
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise _importance_error(f"bad importance item {part!r}: expected MODALITY=WEIGHT")
        if key not in MODALITIES:
            raise _importance_error(f"unknown modality {key!r} in importance")
        if key in out:
            raise _importance_error(f"modality {key!r} given twice in importance")
        try:
            out[key] = float(value)
        except ValueError:
            raise _importance_error(
                f"importance of {key!r} is not a number: {value.strip()!r}"
            ) from None
        _check_weight(key, out[key])
    if not out:
        raise _importance_error("empty importance string")
    return out


def _check_weight(key: str, value: float) -> None:
    if not math.isfinite(value):
        raise _importance_error(f"importance of {key!r} is not finite: {value}")
    if value < 0:
        raise _importance_error(
            f"importance of {key!r} is negative: {value}",
            f"give {key} a weight >= 0, e.g. {key}=0.2 (0 plants no own information)",
        )


def normalize_importance(importance: Mapping[str, float] | str | None) -> dict[str, float]:
    """Planted importances over all four modalities (missing -> 0), summing to 1."""
    if importance is None:
        importance = DEFAULT_IMPORTANCE
    if isinstance(importance, str):
        importance = parse_importance(importance)
    if not isinstance(importance, Mapping):
        raise _importance_error(f"importance must be a mapping, got {type(importance).__name__}")
    raw: dict[str, float] = {}
    for key, value in importance.items():
        if key not in MODALITIES:
            raise _importance_error(f"unknown modality {key!r} in importance")
        try:
            raw[key] = float(value)
        except (TypeError, ValueError):
            raise _importance_error(f"importance of {key!r} is not a number: {value!r}") from None
        _check_weight(key, raw[key])
    total = sum(raw.values())
    if total <= 0:
        raise _importance_error(
            "importances sum to 0", "give at least one modality a positive weight, e.g. s2=1"
        )
    return {m: raw.get(m, 0.0) / total for m in MODALITIES}


class _Moments:
    """Streaming pooled moments for metadata (float64 sums)."""

    def __init__(self) -> None:
        self.n = 0
        self.s: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        self.s[key] = self.s.get(key, 0.0) + float(value)


def _split_csv(ids: list[str], seed: int) -> tuple[str, dict[str, list[str]]]:
    n = len(ids)
    order = seeded_rng(seed, 1).permutation(n)
    n_val = max(1, round(0.1 * n)) if n >= 3 else 0
    n_test = max(1, round(0.1 * n)) if n >= 3 else 0
    n_train = n - n_val - n_test
    parts = {
        "train": sorted(ids[i] for i in order[:n_train]),
        "validation": sorted(ids[i] for i in order[n_train : n_train + n_val]),
        "test": sorted(ids[i] for i in order[n_train + n_val :]),
    }
    rows = ["train,validation,test"]
    for r in range(max(len(v) for v in parts.values())):
        rows.append(",".join(v[r] if r < len(v) else "" for v in parts.values()))
    return "\n".join(rows) + "\n", parts


def _as_int(value: Any, name: str, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}", f"--{name}", fix)
    return int(value)


def generate(
    out: str | Path,
    samples: int = 24,
    size: int = 256,
    seed: int = 0,
    importance: Mapping[str, float] | str | None = None,
    progress: bool = True,
    shared: float = 0.6,
) -> Path:
    """Write a synthetic MapInWild-layout dataset with planted importances to ``out``.

    Files of sample ``i`` depend only on ``(seed, i, size, shared)``, except ``NI`` which also
    depends on the importances. ``metadata.json`` is removed first and written last, so its
    presence marks a complete dataset.

    Args:
        out: the dataset folder (created).
        samples: number of scenes, >= 3 (split 80/10/10, at least one each).
        size: scene width and height in pixels, >= 16.
        seed: the seed; the same seed gives the same bytes.
        importance: planted weights per modality (s2, s1, esa_wc, viirs; missing -> 0), >= 0,
            normalised to sum 1 (default s2=0.4, s1=0.3, esa_wc=0.2, viirs=0.1); a string such
            as ``"s2=0.5,s1=0.5"`` is parsed with :func:`parse_importance`.
        progress: show a progress bar.
        shared: weight (0-1) of the shared naturalness latent in every modality's score (0: the
            modalities share only water, high ground, settlements and roads).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        SpecError: a bad count, size, seed, weight or ``shared``.
    """
    weights = normalize_importance(importance)
    samples = _as_int(samples, "samples", 3, "at least 3 (one each for train, validation, test)")
    size = _as_int(size, "size", 16, "at least 16 px, e.g. --size 256")
    seed = _as_int(seed, "seed", 0, "an integer >= 0, e.g. --seed 0")
    try:
        shared = float(shared)
    except (TypeError, ValueError):
        shared = float("nan")
    if not 0.0 <= shared <= 1.0:
        raise SpecError(f"shared must be in [0, 1], got {shared!r}", "shared", "use e.g. 0.6")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metadata.json").unlink(missing_ok=True)  # written last: marks a complete dataset
    crs = CRS.from_epsg(EPSG)
    ids = [str(ID_OFFSET + i) for i in range(samples)]
    w = np.array([weights[m] for m in MODALITIES], np.float64)
    acc = _Moments()
    wc_counts = np.zeros(256, np.int64)
    names = {
        "s2": list(S2_10_BANDS),
        "s1": ["VV", "VH"],
        "esa_wc": ["landcover"],
        "viirs": ["avg_rad"],
        "target": ["NI"],
    }
    tags = {"MODALENS_SYNTHETIC": GENERATOR_VERSION}
    for index in tqdm(range(samples), desc="synth", unit="sample", disable=not progress):
        sid = ids[index]
        scene = make_scene(seed, index, size, shared)
        z = modality_signals(scene["s2"], scene["s1"], scene["esa_wc"], scene["viirs"])
        zs = np.stack([z[m] for m in MODALITIES])  # [4, H, W]
        noise = scene["noise_rng"].normal(0.0, NOISE_STD, (size, size))
        mix = sum(np.float32(100.0 * w[k]) * zs[k] for k in range(len(MODALITIES)))
        ni = np.clip(mix + noise, 0.0, 100.0).astype(np.float32)
        invalid = scene["invalid"] | ~np.isfinite(ni)
        ni[invalid] = np.nan

        tr = scene["transform"]
        for m, nodata in (("s2", None), ("s1", None), ("esa_wc", 0), ("viirs", None)):
            write_geotiff(
                out / FOLDERS[m] / f"{sid}.tif",
                scene[m],
                crs,
                tr,
                nodata=nodata,
                band_names=names[m],
                tags=tags,
            )
        write_geotiff(
            out / FOLDERS["target"] / f"{sid}.tif",
            ni,
            crs,
            tr,
            nodata=float("nan"),
            band_names=names["target"],
            tags=tags,
        )

        # pooled moments over valid pixels
        valid = ~invalid
        # (no BLAS calls here: on a busy machine its spinning threads stall tiny products)
        zv = np.concatenate([zs[:, valid], ni[valid][None]]).astype(np.float64)
        gram = np.einsum("ip,jp->ij", zv, zv)
        sums = zv.sum(axis=1)
        acc.n += zv.shape[1]
        acc.add("t", sums[4])
        acc.add("tt", gram[4, 4])
        for i, a in enumerate(MODALITIES):
            acc.add(f"z_{a}", sums[i])
            acc.add(f"zt_{a}", gram[i, 4])
            for j in range(i, 4):
                acc.add(f"zz_{a}_{MODALITIES[j]}", gram[i, j])
        for k, name in enumerate(("vv", "vh")):
            x = scene["s1"][k].astype(np.float64)
            acc.add(name, x.sum())
            acc.add(name + "2", np.sum(x * x))
        v = scene["viirs"].astype(np.float64)
        acc.add("viirs", v.sum())
        acc.add("viirs2", np.sum(v * v))
        acc.add("viirs_dark", np.count_nonzero(v < 1.0))
        acc.add("s2max", 0.0)
        acc.s["s2max"] = max(acc.s["s2max"], float(scene["s2"].max()))
        for b in range(10):
            acc.add(f"s2_{b}", scene["s2"][b].astype(np.float64).sum())
        wc_counts += np.bincount(scene["esa_wc"].ravel(), minlength=256)
        acc.add("nan", np.count_nonzero(invalid))

    csv_text, parts = _split_csv(ids, seed)
    atomic_write_text(out / "split_IDs.csv", csv_text)
    meta = _metadata(acc, wc_counts, weights, samples, size, seed, shared, ids, parts)
    atomic_write_json(out / "metadata.json", meta)
    clear_field_cache()
    return out


def _metadata(
    acc: _Moments,
    wc_counts: np.ndarray,
    weights: dict[str, float],
    samples: int,
    size: int,
    seed: int,
    shared: float,
    ids: list[str],
    parts: dict[str, list[str]],
) -> dict[str, Any]:
    s, n = acc.s, max(acc.n, 1)
    npx = samples * size * size
    t_mean = s["t"] / n
    t_var = max(s["tt"] / n - t_mean**2, 1e-12)
    z_mean = {m: s[f"z_{m}"] / n for m in MODALITIES}

    def cov_zz(a: str, b: str) -> float:
        i, j = sorted((MODALITIES.index(a), MODALITIES.index(b)))
        return s[f"zz_{MODALITIES[i]}_{MODALITIES[j]}"] / n - z_mean[a] * z_mean[b]

    share = {}
    for m in MODALITIES:
        cov_zt = s[f"zt_{m}"] / n - z_mean[m] * t_mean
        share[m] = round(100.0 * weights[m] * cov_zt / t_var, 4)
    corr = {
        a: {
            b: round(cov_zz(a, b) / math.sqrt(max(cov_zz(a, a) * cov_zz(b, b), 1e-12)), 4)
            for b in MODALITIES
        }
        for a in MODALITIES
    }

    def mean_std(key: str) -> dict[str, float]:
        mu = s[key] / npx
        return {
            "mean": round(mu, 4),
            "std": round(math.sqrt(max(s[key + "2"] / npx - mu**2, 0)), 4),
        }

    total_wc = max(int(wc_counts.sum()), 1)
    return {
        "generator": "modalens.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "samples": samples,
        "ids": ids,
        "split": {k: len(v) for k, v in parts.items()},
        "importance": {m: round(weights[m], 6) for m in MODALITIES},
        "shared": shared,
        "crs": f"EPSG:{EPSG}",
        "pixel_size_m": PIXEL_SIZE,
        "target": {
            "file": "NI/<id>.tif",
            "formula": "NI = clip(100 * sum_m w_m * z_m + N(0, noise_std), 0, 100); NaN = no-data",
            "noise_std": NOISE_STD,
            "signals": {
                "s2": "max(clip((NDVI - 0.1) / 0.7, 0, 1), 0.95 * clip((MNDWI - 0.2) / 0.4, 0, 1))"
                " with NDVI = (B8 - B4) / (B8 + B4), MNDWI = (B3 - B11) / (B3 + B11)",
                "s1": f"clip((VH - VV - ({S1_RATIO_LOW})) / {S1_RATIO_SPAN}, 0, 1) (dB)",
                "esa_wc": "per-class naturalness "
                + ", ".join(f"{k}: {v}" for k, v in WORLDCOVER_NATURALNESS.items()),
                "viirs": f"exp(-radiance / {VIIRS_SCALE})",
            },
            "nodata_share": round(s["nan"] / npx, 4),
        },
        "description": (
            "Each modality m is driven by a latent score q_m = sigmoid(1.8 (shared * N + "
            "sqrt(1 - shared^2) * O_m)) of a shared naturalness field N and an own field O_m "
            "independent of everything else; water, rivers, high ground, settlements and roads "
            "are shared by all modalities. z_m is computed from the written raster of modality m "
            "alone and the target is their weighted sum, so a modality planted at 0 is "
            "uninformative beyond what it shares with the others. Inputs do not depend on the "
            "importances; only NI does."
        ),
        "realised": {
            "variance_share": share,
            "variance_share_note": "cov(100 w_m z_m, NI) / var(NI) over valid pixels; the rest "
            "is noise and clipping",
            "signal_mean": {m: round(z_mean[m], 4) for m in MODALITIES},
            "signal_std": {m: round(math.sqrt(max(cov_zz(m, m), 0.0)), 4) for m in MODALITIES},
            "signal_correlation": corr,
            "target_mean": round(t_mean, 4),
            "target_std": round(math.sqrt(t_var), 4),
            "s1_vv_db": mean_std("vv"),
            "s1_vh_db": mean_std("vh"),
            "viirs": {**mean_std("viirs"), "share_below_1": round(s["viirs_dark"] / npx, 4)},
            "s2_band_mean": {b: round(s[f"s2_{i}"] / npx, 1) for i, b in enumerate(S2_10_BANDS)},
            "s2_max": s["s2max"],
            "worldcover_share": {
                f"{c} {WORLDCOVER_NAMES.get(c, 'no-data')}": round(int(wc_counts[c]) / total_wc, 4)
                for c in (*WORLDCOVER_CLASSES, 0)
            },
        },
    }
