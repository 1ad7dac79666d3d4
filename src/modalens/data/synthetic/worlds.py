"""Benchmark worlds: datasets whose answer is known, each built unlike the others.

The faithfulness benchmark (:mod:`modalens.validation.faithfulness`) must not recommend a method
that only fits one generator. Each world here writes a dataset folder (``spec.yaml``,
``split_IDs.csv``, one GeoTIFF per modality and sample, ``target/<id>.tif`` and
``metadata.json``) with its *realised* truth: per sample and modality, the mean absolute change
of the target over valid pixels when the modality's inputs are replaced by their dataset mean in
the target's formula -- what the modality causes, not what it correlates with. Modalities
absent from the formula (a pure-noise decoy, a correlated but non-causal raster) realise 0 and
are listed as ``null`` in the metadata: a faithful method gives them almost nothing.

Worlds (:data:`WORLDS`):

- ``planted`` -- today's ``modalens synth`` generator (MapInWild layout, sparse S1 and night
  lights, a decoy), :func:`~.generate.generate_synthetic`.
- ``correlated`` -- S2 and S1 drive the target; an elevation raster shares S2's latent field
  (correlation about 0.8 with S2's term) but is absent from the formula; a decoy.
- ``interaction`` -- S2 adds a term everywhere; S1 adds a term only where night lights are on
  (a product: neither modality alone explains it); a decoy.
- ``scales`` -- raw scales six orders of magnitude apart (reflectance x 10,000, a 1e-3 index,
  elevation in metres, radiance that is zero on 85 % of pixels); a decoy.
- ``real`` -- real Sentinel-2 and Sentinel-1 rasters (the Sen1Floods11 chip cut into tiles);
  the target is McFeeters' NDWI, ``(B3 - B8) / (B3 + B8)``, a fixed function of two S2 bands,
  so S2 causes all of it and S1 (water is dark in radar) is correlated but not causal; a decoy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS

from ...errors import DataError, SpecError
from ...io import atomic_write_json, atomic_write_text, make_folder
from ..rasters import write_geotiff
from .fields import smooth_fields
from .generate import generate_synthetic, split_csv_text
from .scenes import seeded_rng

#: the real Sen1Floods11 chip of the ``real`` world, relative to a repository checkout
REAL_CHIP = Path("data") / "sen1floods11-example"

#: split shares of the worlds (more test scenes than the usual 10 %: the truth's sampling error
#: over the attributed samples shrinks with their number)
SPLIT = (0.6, 0.1, 0.3)

_CRS = CRS.from_epsg(32633)


@dataclass(frozen=True)
class WorldData:
    """A written world.

    Attributes:
        root: the dataset folder.
        spec: its ``spec.yaml``.
        modalities: input modalities in spec order.
        null: modalities the target's formula does not contain (realised importance 0).
        per_sample: realised importance per sample id and modality (target units).
    """

    root: Path
    spec: Path
    modalities: tuple[str, ...]
    null: tuple[str, ...]
    per_sample: dict[str, dict[str, float]]


def _split(ids: list[str], seed: int) -> dict[str, list[str]]:
    order = seeded_rng(seed, 7).permutation(len(ids))
    n_val = max(1, round(SPLIT[1] * len(ids)))
    n_test = max(1, round(SPLIT[2] * len(ids)))
    n_train = len(ids) - n_val - n_test
    pick = [ids[i] for i in order]
    return {
        "train": sorted(pick[:n_train]),
        "validation": sorted(pick[n_train : n_train + n_val]),
        "test": sorted(pick[n_train + n_val :]),
    }


def _write_split(root: Path, parts: Mapping[str, list[str]]) -> None:
    atomic_write_text(root / "split_IDs.csv", split_csv_text(parts))


def _modality(name: str, bands: list[str], nodata: float | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "bands": bands,
        "sources": [{"path": f"{name}/{{id}}.tif", "bands": list(range(1, len(bands) + 1))}],
        "kind": "continuous",
        "normalization": {"type": "standard", "mean": None, "std": None},
        "nodata": nodata,
    }


def _write_spec(root: Path, name: str, modalities: list[dict[str, Any]]) -> Path:
    spec = {
        "name": f"world-{name}",
        "root": ".",
        "crop_size": 256,
        "modalities": modalities,
        "target": {
            "kind": "continuous",
            "source": {"path": "target/{id}.tif", "bands": [1]},
            "scale": 1.0,
            "nodata": "nan",
        },
        "split": {
            "file": "split_IDs.csv",
            "columns": {"train": "train", "val": "validation", "test": "test"},
        },
    }
    path = root / "spec.yaml"
    atomic_write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return path


def _realised(
    formula: Callable[..., np.ndarray],
    terms: Mapping[str, np.ndarray],
    means: Mapping[str, float],
    valid: np.ndarray,
) -> dict[str, float]:
    """Mean |target - target with modality m's inputs at their dataset mean| per modality."""
    full = formula(**terms)
    out = {}
    for m in terms:
        held = {**terms, m: np.full_like(terms[m], means[m])}
        out[m] = float(np.abs(full - formula(**held))[valid].mean())
    return out


# ---------------------------------------------------------------- synthetic worlds


def _s2(rng: np.random.Generator, veg: np.ndarray) -> np.ndarray:
    """Four S2-like bands (B2, B4, B8, B11) x 10,000 mixing vegetation and soil."""
    v_refl = np.array([300, 250, 3500, 1500], np.float32)[:, None, None]
    s_refl = np.array([1200, 1800, 2600, 3000], np.float32)[:, None, None]
    bands = veg * v_refl + (1 - veg) * s_refl
    bands += rng.standard_normal(bands.shape, dtype=np.float32) * 40.0
    return np.clip(bands, 1, 10000).astype(np.float32)


def _ndvi(s2: np.ndarray) -> np.ndarray:
    red, nir = s2[1], s2[2]
    return (nir - red) / (nir + red)


def _s1(rng: np.random.Generator, moist: np.ndarray) -> np.ndarray:
    """VV, VH in dB; VH - VV carries the soil moisture term."""
    nuis = rng.standard_normal(moist.shape).astype(np.float32) * 0.5
    vv = -11.0 + 3.0 * nuis
    vh = vv - 8.0 + 4.0 * moist
    return np.stack([vv, vh]).astype(np.float32) + 0.2 * rng.standard_normal(
        (2, *moist.shape), dtype=np.float32
    )


def _moisture(s1: np.ndarray) -> np.ndarray:
    """The soil moisture S1 encodes, about 0-1: ``(VH - VV + 8) / 4``."""
    return (s1[1] - s1[0] + 8.0) / 4.0


def _sig(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-1.5 * x))).astype(np.float32)


def _scene(
    world: str, seed: int, index: int, size: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(rasters, terms)`` of one scene: the written inputs and the target's inputs."""
    rng = seeded_rng(seed, 11, index)
    f = smooth_fields(size)
    a, b, c = f.field(rng), f.field(rng), f.field(rng)
    decoy = rng.standard_normal((1, size, size)).astype(np.float32)
    if world == "correlated":
        s2 = _s2(rng, _sig(a))
        s1 = _s1(rng, _sig(b))
        dem = (800.0 + 300.0 * (0.8 * a + 0.6 * c))[None].astype(np.float32)
        rasters = {"s2": s2, "s1": s1, "dem": dem, "decoy": decoy}
        terms = {"s2": _ndvi(s2), "s1": _moisture(s1)}
    elif world == "interaction":
        s2 = _s2(rng, _sig(a))
        s1 = _s1(rng, _sig(b))
        lit = (c > 0.8).astype(np.float32)
        viirs = (lit * (20.0 + 10.0 * np.abs(rng.standard_normal((size, size)))))[None]
        rasters = {"s2": s2, "s1": s1, "viirs": viirs.astype(np.float32), "decoy": decoy}
        terms = {"s2": _ndvi(s2), "s1": _moisture(s1), "viirs": (viirs[0] > 0).astype(np.float32)}
    elif world == "scales":
        s2 = _s2(rng, _sig(a))
        index_ = (1e-3 * _sig(b))[None].astype(np.float32)
        dem = (2000.0 + 900.0 * c)[None].astype(np.float32)
        on = f.field(rng) > 1.0
        rad = (on * 400.0 * _sig(f.field(rng)))[None].astype(np.float32)
        rasters = {"s2": s2, "index": index_, "dem": dem, "viirs": rad, "decoy": decoy}
        terms = {"s2": _ndvi(s2), "index": index_[0], "dem": dem[0], "viirs": rad[0]}
    else:
        raise SpecError(f"unknown world {world!r}", "worlds=", f"use {', '.join(WORLDS)}")
    return rasters, terms


def _formula(world: str) -> Callable[..., np.ndarray]:
    if world == "correlated":
        return lambda s2, s1: 0.5 * s2 + 0.2 * s1
    if world == "interaction":
        return lambda s2, s1, viirs: 0.4 * s2 + 0.5 * s1 * viirs
    return lambda s2, index, dem, viirs: 0.5 * s2 + 150.0 * index + 2e-4 * dem + 4e-4 * viirs


_NULL = {"correlated": ("dem", "decoy"), "interaction": ("decoy",), "scales": ("decoy",)}


def _synthetic(world: str, out: Path, seed: int, samples: int, size: int) -> WorldData:
    ids = [str(100000 + i) for i in range(samples)]
    formula = _formula(world)
    scenes = {sid: _scene(world, seed, i, size) for i, sid in enumerate(ids)}
    names = list(scenes[ids[0]][0])
    term_names = list(scenes[ids[0]][1])
    means = {m: float(np.mean([s[1][m].mean() for s in scenes.values()])) for m in term_names}
    per_sample = {}
    transform = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4500000.0)
    for sid, (rasters, terms) in scenes.items():
        for m, arr in rasters.items():
            write_geotiff(out / m / f"{sid}.tif", arr, _CRS, transform)
        noise = seeded_rng(seed, 12, int(sid)).standard_normal((size, size)) * 0.005
        target = (formula(**terms) + noise).astype(np.float32)
        write_geotiff(out / "target" / f"{sid}.tif", target, _CRS, transform)
        valid = np.ones((size, size), bool)
        realised = _realised(formula, terms, means, valid)
        per_sample[sid] = {m: realised.get(m, 0.0) for m in names}
    mods = [
        _modality(m, [f"{m}{k + 1}" for k in range(scenes[ids[0]][0][m].shape[0])]) for m in names
    ]
    spec = _write_spec(out, world, mods)
    _write_split(out, _split(ids, seed))
    return WorldData(out, spec, tuple(names), _NULL[world], per_sample)


# ---------------------------------------------------------------- real rasters


def find_real_chip(start: Path | None = None) -> Path | None:
    """The Sen1Floods11 example chip in a ``shared`` folder beside the working directory (or one
    of its parents) or beside this package's checkout, if there is one."""
    here = (start or Path.cwd()).resolve()
    checkout = Path(__file__).resolve().parents[4]
    for folder in (here, *here.parents, checkout.parent):
        chip = folder / "shared" / REAL_CHIP
        if (chip / "S2Hand").is_dir():
            return chip
    return None


def _read_chip(chip: Path) -> tuple[np.ndarray, np.ndarray, Any, Affine]:
    s2_file = next((chip / "S2Hand").glob("*.tif"))
    s1_file = next((chip / "S1Hand").glob("*.tif"))
    with rasterio.open(s2_file) as src:
        s2, crs, transform = src.read().astype(np.float32), src.crs, src.transform
    with rasterio.open(s1_file) as src:
        s1 = src.read().astype(np.float32)
    return s2, s1, crs, transform


def _real(out: Path, seed: int, size: int, chip: Path | None) -> WorldData:
    chip = chip or find_real_chip()
    if chip is None:
        raise DataError(
            "the real world needs the Sen1Floods11 example chip",
            str(REAL_CHIP),
            "run beside ../shared or pass chip=, or leave 'real' out of the worlds",
        )
    s2, s1, crs, transform = _read_chip(chip)
    ndwi = (s2[2] - s2[7]) / np.maximum(s2[2] + s2[7], 1.0)  # B3, B8
    ok = np.isfinite(ndwi) & (s2[2] + s2[7] > 0)
    n = s2.shape[1] // size
    ids, per_sample = [], {}
    mean = float(ndwi[ok].mean())
    for r in range(n):
        for c in range(n):
            sid = f"{r:02d}{c:02d}"
            win = np.s_[r * size : (r + 1) * size, c * size : (c + 1) * size]
            valid = ok[win]
            if valid.mean() < 0.5:
                continue
            t = transform @ Affine.translation(c * size, r * size)
            decoy = seeded_rng(seed, 13, r, c).standard_normal((1, size, size))
            write_geotiff(out / "s2" / f"{sid}.tif", s2[(slice(None), *win)], crs, t)
            write_geotiff(
                out / "s1" / f"{sid}.tif", s1[(slice(None), *win)], crs, t, nodata=float("nan")
            )
            write_geotiff(out / "decoy" / f"{sid}.tif", decoy.astype(np.float32), crs, t)
            target = np.where(valid, ndwi[win], np.nan).astype(np.float32)
            write_geotiff(out / "target" / f"{sid}.tif", target, crs, t, nodata=float("nan"))
            ids.append(sid)
            per_sample[sid] = {
                "s2": float(np.abs(ndwi[win] - mean)[valid].mean()),
                "s1": 0.0,
                "decoy": 0.0,
            }
    s2_bands = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    mods = [
        _modality("s2", s2_bands),
        _modality("s1", ["VV", "VH"], float("nan")),
        _modality("decoy", ["noise"]),
    ]
    spec = _write_spec(out, "real", mods)
    _write_split(out, _split(ids, seed))
    return WorldData(out, spec, ("s2", "s1", "decoy"), ("s1", "decoy"), per_sample)


# ---------------------------------------------------------------- entry point


def _planted(
    out: Path, seed: int, samples: int, size: int, planted: Mapping[str, Any]
) -> WorldData:
    generate_synthetic(  # the world's own folder: a world of another call is replaced
        out, samples=samples, size=size, seed=seed, progress=False, overwrite=True, **planted
    )
    meta = json.loads((out / "metadata.json").read_text())
    per = meta["realised_importance"]["per_sample"]
    mods = (*meta["importance"], "decoy") if meta.get("decoy") else tuple(meta["importance"])
    per_sample = {sid: {m: float(v.get(m, 0.0)) for m in mods} for sid, v in per.items()}
    null = tuple(m for m in mods if meta["importance"].get(m, 0.0) == 0.0)
    return WorldData(out, out / "spec.yaml", tuple(mods), null, per_sample)


#: the benchmark's worlds, in the order the tables list them
WORLDS = ("planted", "correlated", "interaction", "scales", "real")


def make_world(
    world: str,
    out: str | Path,
    seed: int,
    samples: int = 120,
    size: int = 32,
    *,
    planted: Mapping[str, Any] | None = None,
    chip: str | Path | None = None,
) -> WorldData:
    """Write one world into ``out`` (reused when its ``world.json`` records the same call).

    Args:
        world: one of :data:`WORLDS`.
        out: the dataset folder.
        seed: the seed (scenes, split, decoy noise).
        samples: scenes of the synthetic worlds (the real world has one per tile of the chip).
        size: scene (tile) size in pixels.
        planted: keyword arguments of :func:`~.generate.generate_synthetic` for the ``planted``
            world (``importance``, ``sparsity``).
        chip: the Sen1Floods11 chip folder of the ``real`` world (default: found in
            ``../shared`` above the working directory).

    Returns:
        The :class:`WorldData`.

    Raises:
        SpecError: an unknown world.
        DataError: the real world without its chip.
    """
    if world not in WORLDS:
        raise SpecError(f"unknown world {world!r}", "--worlds", f"use {', '.join(WORLDS)}")
    out = Path(out)
    record = out / "world.json"
    call = {
        "world": world,
        "seed": int(seed),
        "samples": int(samples),
        "size": int(size),
        "planted": dict(planted or {}),
        "version": 1,
    }
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("call") == call:
            return WorldData(
                out,
                Path(saved["spec"]),
                tuple(saved["modalities"]),
                tuple(saved["null"]),
                saved["per_sample"],
            )
        record.unlink()
    make_folder(out)
    if world == "planted":
        data = _planted(out, seed, samples, size, planted or {})
    elif world == "real":
        data = _real(out, seed, size, Path(chip) if chip else None)
    else:
        data = _synthetic(world, out, seed, samples, size)
    atomic_write_json(
        record,
        {
            "call": call,
            "spec": str(data.spec),
            "modalities": list(data.modalities),
            "null": list(data.null),
            "per_sample": data.per_sample,
        },
    )
    return data


def realised_share(
    per_sample: Mapping[str, Mapping[str, float]], ids: list[str]
) -> dict[str, float]:
    """Realised importance shares over ``ids`` (the mean per modality, normalised to sum 1)."""
    mods = list(next(iter(per_sample.values())))
    mean = {m: float(np.mean([per_sample[i][m] for i in ids])) for m in mods}
    total = sum(mean.values())
    return {m: (v / total if total > 0 else math.nan) for m, v in mean.items()}
