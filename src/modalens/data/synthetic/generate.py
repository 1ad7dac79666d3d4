"""Writing a synthetic dataset: scenes as tiled GeoTIFFs, split, metadata and (with a decoy) spec.

:func:`generate_synthetic` is ``modalens synth``; what it plants is read by :mod:`.planting`,
the realised importances are measured by :mod:`.truth`, and :func:`synthetic_spec` is the
dataset spec of a folder with the decoy modality (written to ``spec.yaml``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, SupportsFloat

import numpy as np
from rasterio.crs import CRS
from tqdm.auto import tqdm

from ...deprecation import deprecated_alias
from ...errors import SpecError
from ...io import atomic_write_text, require_free_space
from ...progress import say
from ..presets.mapinwild import S2_10_BANDS, WORLDCOVER_CLASSES, WORLDCOVER_NAMES, mapinwild_spec
from ..rasters import COG_BLOCKSIZE, write_geotiff
from ..spec import DatasetSpec, Modality, Normalization, SourceFile
from ..specfile import FOLDER_SPEC, spec_to_yaml
from .fields import clear_field_cache
from .folder import finish_dataset, start_dataset
from .linking import LINK_DB, LINK_POINTS, apply_link, link_field, parse_error_link
from .planting import normalization_note, normalize_importance, parse_sparsity, wants_decoy
from .scenes import (
    DECOY,
    DECOY_FOLDER,
    EPSG,
    GENERATOR_VERSION,
    ID_OFFSET,
    NOISE_STD,
    PIXEL_SIZE,
    decoy_raster,
    make_scene,
    seeded_rng,
)
from .signals import (
    FOLDERS,
    MODALITIES,
    S1_RATIO_LOW,
    S1_RATIO_SPAN,
    VIIRS_SCALE,
    WORLDCOVER_NATURALNESS,
    modality_signals,
)
from .truth import RealisedImportance

#: the spec file a synthetic folder with the decoy carries (read with ``load_spec``)
SPEC_FILE = FOLDER_SPEC


def synthetic_spec(root: str | Path, decoy: bool = True) -> DatasetSpec:
    """The dataset spec of a synthetic folder: the ``mapinwild`` preset's, plus the decoy.

    Args:
        root: the dataset folder.
        decoy: add the ``decoy`` modality (``DECOY/<id>.tif``, one band of unit-variance noise,
            standardised with mean 0 and std 1).

    Returns:
        The :class:`~modalens.data.spec.DatasetSpec` (named ``synthetic``).
    """
    spec = mapinwild_spec(root)
    if not decoy:
        return spec
    noise = Modality(
        name=DECOY,
        bands=("noise",),
        sources=(SourceFile(f"{DECOY_FOLDER}/{{id}}.tif", (1,)),),
        normalization=Normalization("standard", mean=(0.0,), std=(1.0,)),
    )
    return replace(spec, name="synthetic", modalities=(*spec.modalities, noise))


class _Moments:
    """Streaming pooled moments for metadata (float64 sums) and WorldCover class counts."""

    def __init__(self) -> None:
        self.n = 0
        self.s: dict[str, float] = {}
        self.wc_counts = np.zeros(256, np.int64)

    def add(self, key: str, value: SupportsFloat) -> None:
        self.s[key] = self.s.get(key, 0.0) + float(value)

    def add_scene(
        self, scene: dict[str, Any], zs: np.ndarray, ni: np.ndarray, invalid: np.ndarray
    ) -> None:
        """Add one scene: signals ``zs`` [4, H, W] and target ``ni`` over valid pixels, the
        rasters' sums over all pixels."""
        valid = ~invalid
        # (no BLAS calls here: on a busy machine its spinning threads stall tiny products)
        zv = np.concatenate([zs[:, valid], ni[valid][None]]).astype(np.float64)
        gram = np.einsum("ip,jp->ij", zv, zv)
        sums = zv.sum(axis=1)
        self.n += zv.shape[1]
        self.add("t", sums[4])
        self.add("tt", gram[4, 4])
        for i, a in enumerate(MODALITIES):
            self.add(f"z_{a}", sums[i])
            self.add(f"zt_{a}", gram[i, 4])
            for j in range(i, 4):
                self.add(f"zz_{a}_{MODALITIES[j]}", gram[i, j])
        for k, name in enumerate(("vv", "vh")):
            x = scene["s1"][k].astype(np.float64)
            self.add(name, x.sum())
            self.add(name + "2", np.sum(x * x))
        v = scene["viirs"].astype(np.float64)
        self.add("viirs", v.sum())
        self.add("viirs2", np.sum(v * v))
        self.add("viirs_dark", np.count_nonzero(v < 1.0))
        self.add("s2max", 0.0)
        self.s["s2max"] = max(self.s["s2max"], float(scene["s2"].max()))
        for b in range(10):
            self.add(f"s2_{b}", scene["s2"][b].astype(np.float64).sum())
        self.wc_counts += np.bincount(scene["esa_wc"].ravel(), minlength=256)
        self.add("nan", np.count_nonzero(invalid))


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
    return split_csv_text(parts), parts


def split_csv_text(parts: Mapping[str, list[str]]) -> str:
    """``split_IDs.csv`` text: one column per split (train, validation, test), ids padded."""
    rows = [",".join(parts)]
    for r in range(max(len(v) for v in parts.values())):
        rows.append(",".join(v[r] if r < len(v) else "" for v in parts.values()))
    return "\n".join(rows) + "\n"


def _as_int(value: Any, name: str, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}", f"--{name}", fix)
    return int(value)


def generate_synthetic(
    out: str | Path,
    samples: int = 24,
    size: int = 256,
    seed: int = 0,
    importance: Mapping[str, float] | str | None = None,
    progress: bool = True,
    shared: float = 0.6,
    *,
    sparsity: Mapping[str, float] | str | None = None,
    decoy: bool = False,
    error_link: Mapping[str, float] | str | None = None,
    cog: bool = False,
    cog_blocksize: int = COG_BLOCKSIZE,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic MapInWild-layout dataset with planted importances to ``out``.

    Files of sample ``i`` depend only on ``(seed, i, size, shared, sparsity)``, except ``NI``
    which also depends on the importances (without ``sparsity`` and ``decoy`` the files are
    those of the dense four-modality generator). The folder must be empty (``overwrite``
    clears it), so old and new files never mix; ``metadata.json`` is written last and marks a
    complete dataset (until then ``unfinished.json`` says how to restart, :mod:`.folder`); it
    holds the planted weights (``importance``) and the realised importances
    (``realised_importance``, :mod:`.truth`).

    Args:
        out: the dataset folder (created; it must not hold anything unless ``overwrite``).
        samples: number of scenes, >= 3 (split 80/10/10, at least one each).
        size: scene width and height in pixels, >= 16.
        seed: the seed; the same seed gives the same bytes.
        importance: planted weights per modality (s2, s1, esa_wc, viirs; missing -> 0), >= 0,
            normalised to sum 1 (a note says so, :func:`~.planting.normalization_note`,
            when they do not; default s2=0.4, s1=0.3, esa_wc=0.2, viirs=0.1); a string such
            as ``"s2=0.5,s1=0.5"`` is parsed with :func:`parse_importance`; a ``decoy`` key
            (weight 0) asks for the decoy like ``decoy=True``.
        progress: show a progress bar.
        shared: weight (0-1) of the shared naturalness latent in every modality's score (0: the
            modalities share only water, high ground, settlements and roads).
        sparsity: per modality the share (0-1) of pixels where its own signal is absent (its
            latent score falls back to a constant there: night lights go dark), e.g.
            ``"viirs=0.75"``; a sparse modality realises less than its weight.
        decoy: also write ``DECOY/<id>.tif``, a modality of pure noise (planted importance 0),
            and ``spec.yaml`` (:func:`synthetic_spec`), the spec that reads all five modalities.
        error_link: strength (0-1) per modality of a latent field shared by the target's noise
            and that modality (:mod:`.linking`, e.g. ``"s1=1"``); recorded with every sample's
            amplitude in ``metadata.json`` (``error_link``). None: no file changes.
        cog: write Cloud-Optimized GeoTIFFs (GDAL's COG driver, ``cog_blocksize`` tiles, no
            overviews) for reading from object storage; the pixel values are the same.
        cog_blocksize: tile size of the COGs (a multiple of 16; default
            :data:`~modalens.data.rasters.COG_BLOCKSIZE`).
        overwrite: delete what ``out`` holds before writing (the file system's root, the home
            folder and the current folder are never cleared).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        SpecError: a bad count, size, seed, weight, sparsity or ``shared``.
        OutputError: ``out`` is a file, cannot be written, or holds files and ``overwrite`` is
            not set (:func:`~modalens.io.fresh_folder`).
    """
    weights = normalize_importance(importance)
    note = normalization_note(importance)
    if note:
        say(f"note: {note}", progress)
    decoy = bool(decoy) or wants_decoy(importance)
    sparse = parse_sparsity(sparsity)
    link = parse_error_link(error_link)
    samples = _as_int(samples, "samples", 3, "at least 3 (one each for train, validation, test)")
    size = _as_int(size, "size", 16, "at least 16 px, e.g. --size 256")
    seed = _as_int(seed, "seed", 0, "an integer >= 0, e.g. --seed 0")
    fmt = _cog_format(cog, cog_blocksize)
    shared = _as_share(shared)
    out = start_dataset(out, overwrite, {
        "samples": samples, "size": size, "seed": seed, "importance": weights,
        "sparsity": sparse or None, "decoy": decoy, "error_link": link or None, "cog": cog,
        "cog_blocksize": fmt["blocksize"] if cog else None,
    })  # fmt: skip
    ids = [str(ID_OFFSET + i) for i in range(samples)]
    w = np.array([weights[m] for m in MODALITIES], np.float64)
    acc = _Moments()
    realised = RealisedImportance([*MODALITIES, DECOY] if decoy else MODALITIES, weights)
    amplitudes: dict[str, float] = {}
    for index in tqdm(range(samples), desc="synth", unit="sample", disable=not progress):
        sid = ids[index]
        scene = make_scene(seed, index, size, shared, sparse)
        linked = None
        if link:
            field, amplitudes[sid] = link_field(seed, index, size)
            linked = apply_link(scene, field, link)
        z = modality_signals(scene["s2"], scene["s1"], scene["esa_wc"], scene["viirs"])
        zs = np.stack([z[m] for m in MODALITIES])  # [4, H, W]
        ni, invalid = _target(scene, zs, w, linked)
        _write_scene(out, sid, scene, ni, fmt)
        if decoy:
            _write_raster(
                out / DECOY_FOLDER / f"{sid}.tif",
                decoy_raster(seed, index, size),
                scene,
                ["noise"],
                None,
                fmt,
            )
        if index == 0 and samples > 1:  # the size of one sample is known now
            one = sum(f.stat().st_size for f in out.glob(f"**/{sid}.tif"))
            require_free_space(out, one * (samples - 1) + 2**20, f"{samples} samples")
        realised.add(sid, z, ~invalid)
        acc.add_scene(scene, zs, ni, invalid)

    csv_text, parts = _split_csv(ids, seed)
    atomic_write_text(out / "split_IDs.csv", csv_text)
    meta = _metadata(acc, weights, samples, size, seed, shared, ids, parts)
    meta["sparsity"] = {m: sparse.get(m, 0.0) for m in MODALITIES}
    if cog:
        meta["cog"] = {"blocksize": fmt["blocksize"], "overviews": None}
    meta["decoy"] = {"folder": DECOY_FOLDER, "spec": SPEC_FILE} if decoy else None
    meta["realised_importance"] = {"definition": REALISED_DEFINITION, **realised.result()}
    if link:
        meta["error_link"] = _link_metadata(link, amplitudes)
    if decoy:
        decoy_spec = replace(synthetic_spec("."), root=Path("."))
        atomic_write_text(out / SPEC_FILE, spec_to_yaml(decoy_spec))
    finish_dataset(out, meta)
    clear_field_cache()
    return out


#: how ``metadata.json`` defines the realised importances
REALISED_DEFINITION = (
    "mean |100 w_m (z_m - mean z_m)| over valid pixels, naturalness points: "
    "how much NI changes when modality m's term is replaced by its dataset mean (before "
    "noise and clipping); share = normalised to sum 1; the decoy's is 0 by construction"
)

#: band names of the written rasters
BAND_NAMES = {
    "s2": list(S2_10_BANDS),
    "s1": ["VV", "VH"],
    "esa_wc": ["landcover"],
    "viirs": ["avg_rad"],
    "target": ["NI"],
}


def _cog_format(cog: bool, blocksize: Any) -> dict[str, Any]:
    """The GeoTIFF format keywords: a COG of ``blocksize`` tiles, or none (plain GeoTIFF)."""
    blocksize = _as_int(blocksize, "cog-blocksize", 16, "a multiple of 16, e.g. 128")
    if blocksize % 16:
        raise SpecError(
            f"cog-blocksize must be a multiple of 16, got {blocksize}", "--cog-blocksize", "128"
        )
    return {"cog": True, "blocksize": blocksize} if cog else {}


def _as_share(shared: Any) -> float:
    """``shared`` as a float in [0, 1] (SpecError otherwise)."""
    try:
        shared = float(shared)
    except (TypeError, ValueError):
        shared = float("nan")
    if not 0.0 <= shared <= 1.0:
        raise SpecError(f"shared must be in [0, 1], got {shared!r}", "shared", "use e.g. 0.6")
    return float(shared)


def _target(
    scene: dict[str, Any], zs: np.ndarray, w: np.ndarray, linked: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(NI, invalid)``: the target (float32, NaN where invalid) of the weighted signals ``zs``
    plus the scene's noise (and the linked error field), clipped to 0-100."""
    noise = scene["noise_rng"].normal(0.0, NOISE_STD, zs.shape[1:])
    mix = sum(np.float32(100.0 * w[k]) * zs[k] for k in range(len(MODALITIES)))
    ni = np.clip(mix + noise if linked is None else mix + noise + linked, 0.0, 100.0)
    ni = ni.astype(np.float32)
    invalid = scene["invalid"] | ~np.isfinite(ni)
    ni[invalid] = np.nan
    return ni, invalid


def _write_raster(
    path: Path,
    data: np.ndarray,
    scene: dict[str, Any],
    bands: list[str],
    nodata: float | None,
    fmt: dict[str, Any],
) -> None:
    """Write one raster of a scene (its grid, the generator's tag)."""
    tags = {"MODALENS_SYNTHETIC": GENERATOR_VERSION}
    crs = CRS.from_epsg(EPSG)
    write_geotiff(
        path, data, crs, scene["transform"], nodata=nodata, band_names=bands, tags=tags, **fmt
    )


def _write_scene(
    out: Path, sid: str, scene: dict[str, Any], ni: np.ndarray, fmt: dict[str, Any]
) -> None:
    """Write a scene's four modalities and its target."""
    for m, nodata in (("s2", None), ("s1", None), ("esa_wc", 0), ("viirs", None)):
        _write_raster(out / FOLDERS[m] / f"{sid}.tif", scene[m], scene, BAND_NAMES[m], nodata, fmt)
    target = out / FOLDERS["target"] / f"{sid}.tif"
    _write_raster(target, ni, scene, BAND_NAMES["target"], float("nan"), fmt)


def _link_metadata(link: Mapping[str, float], amplitudes: Mapping[str, float]) -> dict[str, Any]:
    """The ``error_link`` entry of ``metadata.json``."""
    return {
        "strength": link,
        "amplitude": {k: round(v, 6) for k, v in amplitudes.items()},
        "definition": f"NI += k * {LINK_POINTS} * a_i * E_i (points); s1 VV and VH += "
        f"k * {LINK_DB} * a_i * E_i (dB); E_i a smooth field, mean 0 and std 1 per scene",
    }


def _metadata(
    acc: _Moments,
    weights: dict[str, float],
    samples: int,
    size: int,
    seed: int,
    shared: float,
    ids: list[str],
    parts: dict[str, list[str]],
) -> dict[str, Any]:
    """The dataset's description in ``metadata.json``: generator, settings, split, the
    target's definition and what the scenes realised (:func:`_realised`)."""
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
            "nodata_share": round(acc.s["nan"] / (samples * size * size), 4),
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
        "realised": _realised(acc, weights, samples * size * size),
    }


def _realised(acc: _Moments, weights: dict[str, float], npx: int) -> dict[str, Any]:
    """What the scenes realised (``metadata.json``'s ``realised``): variance shares, signal
    and target moments and correlations, raster statistics over ``npx`` pixels."""
    s, n = acc.s, max(acc.n, 1)
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

    total_wc = max(int(acc.wc_counts.sum()), 1)
    return {
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
            f"{c} {WORLDCOVER_NAMES.get(c, 'no-data')}": round(int(acc.wc_counts[c]) / total_wc, 4)
            for c in (*WORLDCOVER_CLASSES, 0)
        },
    }


#: deprecated name of :func:`generate_synthetic` (removed next release)
generate = deprecated_alias(generate_synthetic, "generate")
