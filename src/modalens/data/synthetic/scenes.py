"""One synthetic scene: shared latent fields and the per-modality rasters.

The signals ``z_m`` computed from the rasters are in :mod:`.signals`. The scene generator
draws the shared structure (naturalness latent, water, high ground, settlements, roads) and each
modality's own latent from seeds that depend only on ``(seed, sample index)``; a sparse
modality's presence mask and the decoy raster come from seed streams of their own. See
:mod:`modalens.data.synthetic` for the recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import ArrayLike

from .fields import SMOOTH, TEXTURE, SmoothFields, smooth_fields
from .signals import MODALITIES, S1_RATIO_LOW, S1_RATIO_SPAN, VIIRS_SCALE

GENERATOR_VERSION = "1.0"


#: folder of the optional decoy modality: pure noise, independent of everything
DECOY = "decoy"


DECOY_FOLDER = "DECOY"


#: latent score a sparse modality's own signal falls back to where it is absent (the
#: sigmoid's midpoint, near the median of the dense score: a flat, typical value)
SPARSE_LEVEL = 0.5


EPSG = 32633


PIXEL_SIZE = 10.0


ID_OFFSET = 100000


NOISE_STD = 1.0  # target noise, naturalness points


GAIN = 1.8  # sigmoid gain of the latent scores


# endmember spectra, reflectance x 10000, bands B2 B3 B4 B5 B6 B7 B8 B8A B11 B12
_VEG = np.array([250, 480, 280, 850, 2500, 3100, 3350, 3450, 1750, 850], np.float32)


_SOIL = np.array([800, 1100, 1400, 1700, 1900, 2050, 2200, 2300, 3100, 2500], np.float32)


_URBAN = np.array([1000, 1100, 1150, 1250, 1350, 1450, 1550, 1600, 1900, 1750], np.float32)


_WATER = np.array([550, 480, 300, 220, 160, 130, 110, 100, 60, 40], np.float32)


_SNOW = np.array([5600, 5500, 5300, 5100, 4900, 4700, 4500, 4400, 700, 500], np.float32)


_HAZE = np.array([1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.3, 0.1, 0.05], np.float32)


_RED_EDGE = np.array([0, 0, 0, 0.3, 1, 1, 1, 1, 0, 0], np.float32)  # bands that vigour scales


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _draw_polyline(canvas: np.ndarray, points: np.ndarray, width: float) -> None:
    """Max-paint an anti-aliased polyline of ``width`` px (points [K, 2] as row, col)."""
    size = canvas.shape[0]
    half = width / 2.0
    for p0, p1 in zip(points[:-1], points[1:], strict=True):
        r0 = int(max(0, math.floor(min(p0[0], p1[0]) - half - 2)))
        r1 = int(min(size, math.ceil(max(p0[0], p1[0]) + half + 2)))
        c0 = int(max(0, math.floor(min(p0[1], p1[1]) - half - 2)))
        c1 = int(min(size, math.ceil(max(p0[1], p1[1]) + half + 2)))
        if r0 >= r1 or c0 >= c1:
            continue
        rr = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5
        cc = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5
        d = p1 - p0
        length2 = float(d[0] * d[0] + d[1] * d[1]) or 1e-6
        t = np.clip(((rr - p0[0]) * d[0] + (cc - p0[1]) * d[1]) / length2, 0.0, 1.0)
        dist = np.hypot(rr - (p0[0] + t * d[0]), cc - (p0[1] + t * d[1]))
        value = np.clip(half + 0.5 - dist, 0.0, 1.0)
        np.maximum(canvas[r0:r1, c0:c1], value, out=canvas[r0:r1, c0:c1])


def _edge_point(rng: np.random.Generator, size: int) -> np.ndarray:
    side = rng.integers(4)
    t = rng.uniform(0, size)
    return np.array(
        [(0.0, t), (float(size), t), (t, 0.0), (t, float(size))][side], dtype=np.float32
    )


def _path(
    rng: np.random.Generator,
    start: ArrayLike,
    end: ArrayLike,
    via: ArrayLike | None = None,
    wiggle: float = 0.06,
) -> np.ndarray:
    """A gently bending polyline from ``start`` to ``end`` (through ``via``)."""
    anchors = [np.asarray(start, np.float32)]
    if via is not None:
        anchors.append(np.asarray(via, np.float32))
    anchors.append(np.asarray(end, np.float32))
    pts = [anchors[0]]
    for a, b in zip(anchors[:-1], anchors[1:], strict=True):
        seg = b - a
        length = float(np.hypot(*seg))
        normal = np.array([-seg[1], seg[0]], np.float32) / max(length, 1e-6)
        k = int(np.clip(length / 24.0, 2, 12))
        for j in range(1, k):
            offset = rng.normal(0.0, wiggle * length / math.sqrt(k))
            pts.append(a + seg * (j / k) + normal * offset)
        pts.append(b)
    return np.stack(pts).astype(np.float32)


def _seed_seq(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
    """A generator seeded by ``seed`` and a spawn key (independent streams per key)."""
    return np.random.Generator(np.random.PCG64(_seed_seq(seed, *key)))


def presence(seed: int, index: int, size: int, modality: str, sparsity: float) -> np.ndarray:
    """Where a sparse modality's own signal is present in sample ``index`` ([H, W] in [0, 1]).

    A smooth field thresholded at the ``sparsity`` quantile of the unit normal (with a soft
    edge): about a ``sparsity`` share of all pixels is 0 (absent), and since every scene keeps
    its own mean of the field, some scenes lack the signal entirely and others have it
    everywhere. Drawn from its own seed stream, so other rasters do not change.
    """
    if sparsity <= 0.0:
        return np.ones((size, size), np.float32)
    if sparsity >= 1.0:
        return np.zeros((size, size), np.float32)
    rng = seeded_rng(seed, 2, index, MODALITIES.index(modality))
    f = smooth_fields(size).field(rng, SMOOTH)
    t = NormalDist().inv_cdf(float(sparsity))
    return np.clip((f - t) * 3.0 + 0.5, 0.0, 1.0).astype(np.float32)


#: scales of the error-link field (:mod:`.linking`): blobs of a few tens of pixels
_ERROR = ((6.0, 0.5), (20.0, 1.0))


def error_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth [H, W] float32 field standardised within the scene (mean 0, std 1), drawn
    from ``rng`` (the error link of :mod:`.linking`)."""
    f = smooth_fields(size).field(rng, _ERROR).astype(np.float64)
    return ((f - f.mean()) / max(float(f.std()), 1e-6)).astype(np.float32)


def decoy_raster(seed: int, index: int, size: int) -> np.ndarray:
    """The decoy modality of sample ``index``: [1, H, W] float32 noise of about unit variance.

    A smooth field plus white noise from its own seed stream: it looks like a continuous
    raster but shares nothing with the scene or the target.
    """
    rng = seeded_rng(seed, 3, index)
    smooth = smooth_fields(size).field(rng)
    white = rng.standard_normal((size, size), dtype=np.float32)
    return ((0.8 * smooth + 0.6 * white)[None]).astype(np.float32)


def make_scene(
    seed: int,
    index: int,
    size: int,
    shared: float,
    sparsity: dict[str, float] | None = None,
) -> dict[str, Any]:
    """All input rasters of sample ``index`` (independent of importances).

    ``sparsity`` (modality -> share 0-1) makes a modality's own latent score fall back to
    :data:`SPARSE_LEVEL` where :func:`presence` says its signal is absent; without it the
    scene is exactly the dense one.
    """
    rngs = [seeded_rng(seed, 0, index, k) for k in range(12)]
    (r_struct, r_n, r_water, r_alt, r_s2, r_s1, r_wc, r_viirs, r_noise, r_geo, r_na, _) = rngs
    scene = _Structure.draw(size, r_n, r_water, r_alt, r_struct)
    score = _LatentScore(scene, shared, seed, index, sparsity or {})
    wc = _worldcover(scene, score, r_wc)
    invalid = _nodata(r_na, index, size, wc)
    # ---- georeferencing: a different 10 m UTM origin per sample
    x0 = 300000.0 + PIXEL_SIZE * float(r_geo.integers(0, 40000))
    y0 = 4500000.0 + PIXEL_SIZE * float(r_geo.integers(0, 100000))
    return {
        "s2": _sentinel2(scene, score, r_s2),
        "s1": _sentinel1(scene, score, r_s1),
        "esa_wc": wc,
        "viirs": _viirs(scene, score, r_viirs),
        "invalid": invalid,
        "noise_rng": r_noise,
        "transform": Affine(PIXEL_SIZE, 0.0, x0, 0.0, -PIXEL_SIZE, y0),
    }


@dataclass
class _Structure:
    """The structure every modality of a scene shares: the naturalness latent ``nat``, water
    (lakes, a river), high ground and snow, settlements and roads ([H, W] float32 fields)."""

    fields: SmoothFields
    nat: np.ndarray
    wet: np.ndarray
    water_thr: float
    water: np.ndarray
    alt: np.ndarray
    snow: np.ndarray
    light_src: np.ndarray  # settlements' light sources
    roads: np.ndarray
    human: np.ndarray  # built-up or road

    @classmethod
    def draw(
        cls,
        size: int,
        r_n: np.random.Generator,
        r_water: np.random.Generator,
        r_alt: np.random.Generator,
        r_struct: np.random.Generator,
    ) -> _Structure:
        """Draw the shared structure of one scene from its seed streams."""
        fields = smooth_fields(size)
        nat = fields.field(r_n)
        wet = fields.field(r_water, SMOOTH)
        alt = fields.field(r_alt, SMOOTH)
        water_thr = 1.5 + r_water.normal(0.0, 0.35)
        water = np.clip((wet - water_thr) * 4.0 + 0.5, 0.0, 1.0)
        if r_water.random() < 0.35:  # a river
            river = np.zeros((size, size), np.float32)
            a, b = _edge_point(r_water, size), _edge_point(r_water, size)
            path = _path(r_water, a, b, wiggle=0.1)  # (drawn before the width)
            _draw_polyline(river, path, r_water.uniform(3, 9) * fields.sf + 1)
            water = np.maximum(water, river)
        snow = np.clip((alt - 2.3) * 5.0 + 0.5, 0.0, 1.0)
        built, light_src, roads = _settlements(fields, r_struct, size, water)
        human = np.maximum(built, roads)
        return cls(fields, nat, wet, water_thr, water, alt, snow, light_src, roads, human)


def _settlements(
    fields: SmoothFields, r_struct: np.random.Generator, size: int, water: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(built-up share, light sources, roads)``: settlements as textured blobs, roads as
    lines between edges, most through a settlement."""
    sf = fields.sf
    n_settle = int(r_struct.poisson(max(1.0, 0.8 * (size / 256.0) ** 2)))
    rows, cols = np.arange(size, dtype=np.float32)[:, None], np.arange(size, dtype=np.float32)
    density = np.zeros((size, size), np.float32)
    light_src = np.zeros((size, size), np.float32)
    centres = []
    for _ in range(n_settle):
        cy, cx = r_struct.uniform(0, size, 2)
        radius = r_struct.uniform(8.0, 26.0) * sf
        intensity = float(r_struct.lognormal(math.log(60.0), 0.7))
        m = int(3.5 * radius) + 1
        r0, r1 = max(0, int(cy) - m), min(size, int(cy) + m)
        c0, c1 = max(0, int(cx) - m), min(size, int(cx) + m)
        d2 = (rows[r0:r1] - cy) ** 2 + (cols[c0:c1] - cx) ** 2
        g = np.exp(-d2 / (2.0 * radius**2))
        density[r0:r1, c0:c1] += g
        light_src[r0:r1, c0:c1] += intensity * g
        centres.append((cy, cx))
    texture = fields.field(r_struct, ((1.5, 1.0), (4.0, 0.5)))
    built = np.clip((density * (1.0 + 0.35 * texture) - 0.45) / 0.25, 0.0, 1.0)
    built *= 1.0 - water
    roads = np.zeros((size, size), np.float32)
    n_roads = int(r_struct.poisson(max(1.0, size / 256.0)))
    for k in range(n_roads):
        via = centres[k % len(centres)] if centres and r_struct.random() < 0.8 else None
        a, b = _edge_point(r_struct, size), _edge_point(r_struct, size)
        _draw_polyline(roads, _path(r_struct, a, b, via), r_struct.uniform(1.0, 2.5))
    return built, light_src, roads


@dataclass
class _LatentScore:
    """A modality's latent score ``q_m = sigmoid(GAIN (shared * nat + own * O_m))`` of the
    scene's naturalness and an own field drawn from the modality's stream; a sparse modality's
    falls back to :data:`SPARSE_LEVEL` where :func:`presence` says its signal is absent."""

    scene: _Structure
    shared: float
    seed: int
    index: int
    sparsity: dict[str, float]

    def __call__(self, rng: np.random.Generator, modality: str, extra: float = 0.0) -> np.ndarray:
        """The score of ``modality`` (``extra``: weight of added fine texture in ``O_m``)."""
        fields = self.scene.fields
        o = fields.field(rng)
        if extra:
            o = (o + extra * fields.field(rng, TEXTURE)) / math.sqrt(1.0 + extra**2)
        own = math.sqrt(1.0 - self.shared**2)
        q = _sigmoid(GAIN * (self.shared * self.scene.nat + own * o))
        share = self.sparsity.get(modality, 0.0)
        if share > 0.0:
            size = self.scene.nat.shape[0]
            level = np.float32(SPARSE_LEVEL)
            here = presence(self.seed, self.index, size, modality, share)
            q = (level + (q - level) * here).astype(np.float32)
        return q


def _sentinel2(scene: _Structure, score: _LatentScore, r_s2: np.random.Generator) -> np.ndarray:
    """Sentinel-2 [10, H, W] uint16: vegetation fraction from ``q_s2``, soil/urban/water/snow
    mixing, haze and noise."""
    fields, human, water, snow = scene.fields, scene.human, scene.water, scene.snow
    q_s2 = score(r_s2, "s2", extra=0.25)
    soil_b = 1.0 + 0.15 * fields.field(r_s2)
    vigour = 0.08 * fields.field(r_s2)
    urban_b = 1.0 + 0.15 * fields.field(r_s2, TEXTURE)
    haze = r_s2.uniform(0.0, 250.0)
    s2 = np.empty((10, *q_s2.shape), np.uint16)
    for b in range(10):
        veg = _VEG[b] * (1.0 + vigour * _RED_EDGE[b])
        band = q_s2 * veg + (1.0 - q_s2) * _SOIL[b] * soil_b
        band = band * (1.0 - human) + human * _URBAN[b] * urban_b
        band = band * (1.0 - water) + water * _WATER[b]
        band = band * (1.0 - snow) + snow * _SNOW[b]
        band += haze * _HAZE[b]
        band += r_s2.standard_normal(band.shape, dtype=np.float32) * (0.01 * band + 12.0)
        s2[b] = np.clip(np.rint(band), 1, 10000).astype(np.uint16)
    return s2


def _sentinel1(scene: _Structure, score: _LatentScore, r_s1: np.random.Generator) -> np.ndarray:
    """Sentinel-1 [2, H, W] float32 dB: VV level from nuisance and structure, VH - VV from
    ``q_s1``, speckle."""
    human, water = scene.human, scene.water
    q_s1 = score(r_s1, "s1") * (1.0 - human)
    nuis = scene.fields.field(r_s1)
    vv = -10.4 + 2.3 * nuis + 2.0 * (q_s1 - 0.5) + 9.0 * human
    vv = vv * (1.0 - water) + water * (-21.0 + 1.5 * nuis)
    vv -= 4.0 * scene.snow
    vh = vv + S1_RATIO_LOW + S1_RATIO_SPAN * q_s1
    s1 = np.stack([vv, vh]).astype(np.float32)
    del q_s1, nuis, vv, vh
    s1 += np.float32(0.4) * r_s1.standard_normal(s1.shape, dtype=np.float32)
    return s1


def _worldcover(scene: _Structure, score: _LatentScore, r_wc: np.random.Generator) -> np.ndarray:
    """WorldCover [H, W] uint8 classes: thresholds on ``q_wc``, shared water/built/snow, own
    aridity."""
    q_wc = score(r_wc, "esa_wc", extra=0.25)
    arid = scene.fields.field(r_wc)
    wc = np.full(q_wc.shape, 40, np.uint8)  # cropland
    wc[q_wc >= 0.28] = 30
    wc[q_wc >= 0.45] = 20
    wc[(q_wc >= 0.45) & (q_wc < 0.62) & (arid > 0.8)] = 60
    wc[q_wc >= 0.62] = 10
    wetland = (scene.wet > scene.water_thr - 0.6) & (q_wc > 0.45)
    wc[wetland] = 90
    wc[wetland & (arid < -1.3)] = 95
    wc[(scene.alt > 1.9) & (scene.alt <= 2.3)] = 100
    wc[scene.snow >= 0.5] = 70
    wc[scene.water >= 0.5] = 80
    wc[scene.human >= 0.5] = 50
    return wc


def _viirs(scene: _Structure, score: _LatentScore, r_viirs: np.random.Generator) -> np.ndarray:
    """VIIRS [H, W] float32 radiance: rural background from ``q_viirs``, settlement and road
    lights."""
    water = scene.water
    q_v = score(r_viirs, "viirs")
    background = -VIIRS_SCALE * np.log(np.maximum(q_v, 1e-6)) * (1.0 - 0.7 * water)
    lights = scene.fields.blur(scene.light_src * (1.0 - water) + 3.0 * scene.roads, 3.0)
    return (background + lights).astype(np.float32)


def _nodata(r_na: np.random.Generator, index: int, size: int, wc: np.ndarray) -> np.ndarray:
    """The invalid pixels [H, W] of sample ``index``: in every other sample a border strip
    (WorldCover no-data too, set in ``wc``) or an elliptic patch."""
    invalid = np.zeros((size, size), bool)
    if index % 2:
        return invalid
    if r_na.random() < 0.5:
        width = int(r_na.integers(max(1, size // 50), max(2, size // 10) + 1))
        side = int(r_na.integers(4))
        sl = [np.s_[:width, :], np.s_[-width:, :], np.s_[:, :width], np.s_[:, -width:]][side]
        invalid[sl] = True
        wc[sl] = 0
    else:
        rows, cols = np.arange(size, dtype=np.float32)[:, None], np.arange(size, dtype=np.float32)
        cy, cx = r_na.uniform(0, size, 2)
        ry, rx = r_na.uniform(0.05, 0.15, 2) * size
        invalid |= ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
    return invalid
