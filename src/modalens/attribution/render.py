"""How a modality, a target and a prediction are drawn in a sample view (:mod:`.views`).

A modality becomes a :class:`Picture` chosen from its spec (:func:`modality_picture`):

- bands named red/green/blue (``B4/B3/B2``, ``B04/B03/B02`` or ``red/green/blue``): an RGB
  composite with a 2-98 percentile stretch per band;
- SAR (bands ``VV``/``VH``): VH in dB, grey (linear backscatter is converted with 10 log10);
- a categorical modality whose classes are ESA WorldCover codes: the official WorldCover
  colours with a legend of the classes present; other categorical modalities a qualitative
  palette;
- night lights (a modality named ``viirs``/``*light*`` or a band ``avg_rad``): radiance on a
  dark-to-bright map;
- anything else: its first band, grey, 2-98 percentile stretch.

:func:`draw_picture` puts a picture on an axes with its colour bar or legend underneath, so
panels of one row keep the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.presets.mapinwild import WORLDCOVER_NAMES
from ..data.spec import Modality
from ..plotting import PALETTE, label

#: ESA WorldCover's official class colours (product user manual, v100/v200)
WORLDCOVER_COLOURS: dict[int, str] = {
    10: "#006400",
    20: "#ffbb22",
    30: "#ffff4c",
    40: "#f096ff",
    50: "#fa0000",
    60: "#b4b4b4",
    70: "#f0f0f0",
    80: "#0064c8",
    90: "#0096a0",
    95: "#00cf75",
    100: "#fae6a0",
}

RGB_NAMES = (("b4", "b04", "red"), ("b3", "b03", "green"), ("b2", "b02", "blue"))


@dataclass
class Picture:
    """An image ready to draw.

    Attributes:
        array: ``[H, W]`` values or ``[H, W, 3]`` RGB in [0, 1] (NaN = no data).
        caption: what is shown (the panel's subtitle).
        cmap: colour map of a single-band image.
        vmin: lower end of its colour scale.
        vmax: upper end.
        quantity: the colour bar's label (None: no colour bar).
        legend: ``(colour, name)`` entries of a class image (drawn instead of a colour bar).
    """

    array: np.ndarray
    caption: str
    cmap: Any = "gray"
    vmin: float | None = None
    vmax: float | None = None
    quantity: str | None = None
    legend: list[tuple[str, str]] = field(default_factory=list)


def stretch(a: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """``a`` scaled so that its ``lo``/``hi`` percentiles (of the finite values) map to 0/1,
    clipped; NaN stays NaN."""
    a = np.asarray(a, dtype=np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return a
    p0, p1 = np.percentile(finite, [lo, hi])
    return np.clip((a - p0) / max(float(p1 - p0), 1e-12), 0.0, 1.0)


def limits(*arrays: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> tuple[float, float]:
    """Shared ``lo``/``hi`` percentiles of the finite values of ``arrays`` ((0, 1) if none)."""
    vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 1.0
    p0, p1 = np.percentile(vals, [lo, hi])
    return float(p0), float(p1) if p1 > p0 else float(p0) + 1e-6


def rgb_indices(m: Modality) -> tuple[int, int, int] | None:
    """Indices of the red, green and blue bands of ``m`` (by name), or None."""
    names = [b.lower() for b in m.bands]
    idx = []
    for options in RGB_NAMES:
        hit = next((names.index(o) for o in options if o in names), None)
        if hit is None:
            return None
        idx.append(hit)
    return idx[0], idx[1], idx[2]


def class_palette(classes: tuple[Any, ...]) -> dict[Any, str]:
    """Colours of class codes: WorldCover's when every code is a WorldCover class, else the
    Okabe-Ito palette (tab20 beyond eight classes)."""
    if classes and all(int(c) in WORLDCOVER_COLOURS for c in classes):
        return {c: WORLDCOVER_COLOURS[int(c)] for c in classes}
    if len(classes) <= len(PALETTE):
        return {c: PALETTE[i] for i, c in enumerate(classes)}
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {c: matplotlib.colors.to_hex(cmap(i % 20)) for i, c in enumerate(classes)}


def class_picture(
    codes: np.ndarray, classes: tuple[Any, ...], names: dict[Any, str], caption: str
) -> Picture:
    """A class raster (codes, NaN = no data) as an RGB picture with a legend of the classes
    present."""
    palette = class_palette(classes)
    import matplotlib.colors as mcolors

    rgb = np.full((*codes.shape, 3), np.nan, np.float32)
    legend = []
    for c in classes:
        hit = codes == float(c)
        if hit.any():
            rgb[hit] = mcolors.to_rgb(palette[c])
            legend.append((palette[c], str(names.get(c, c))))
    return Picture(rgb, caption, legend=legend)


def modality_picture(m: Modality, raw: np.ndarray) -> Picture:
    """The picture of one modality from its raw values ``[B, H, W]`` (see the module
    docstring)."""
    name = label(m.name)
    bands_lower = [b.lower() for b in m.bands]
    rgb = rgb_indices(m)
    if rgb is not None:
        img = np.stack([stretch(raw[i]) for i in rgb], axis=-1)
        bands = "/".join(m.bands[i] for i in rgb)
        return Picture(img, f"{name}: RGB {bands}, 2-98 % stretch")
    if m.is_categorical and m.classes:
        names: dict[Any, str] = {}
        if all(int(c) in WORLDCOVER_NAMES for c in m.classes):
            names = {c: WORLDCOVER_NAMES[int(c)] for c in m.classes}
        return class_picture(raw[0], tuple(m.classes), names, f"{name}: classes")
    if "vh" in bands_lower or "vv" in bands_lower:
        i = bands_lower.index("vh") if "vh" in bands_lower else bands_lower.index("vv")
        band = raw[i].astype(np.float32)
        finite = band[np.isfinite(band)]
        if finite.size and finite.min() >= 0:  # linear backscatter
            band = 10 * np.log10(np.maximum(band, 1e-6))
        lo, hi = limits(band)
        return Picture(
            band, f"{name}: {m.bands[i]}", "gray", lo, hi, f"{m.bands[i]} backscatter (dB)"
        )
    if "light" in m.name.lower() or "viirs" in m.name.lower() or "avg_rad" in bands_lower:
        band = raw[0].astype(np.float32)
        lo, hi = limits(band, lo=1.0, hi=99.0)
        return Picture(
            band, f"{name}: {m.bands[0]}", "cividis", max(lo, 0.0), hi,
            "radiance (nW cm$^{-2}$ sr$^{-1}$)",
        )  # fmt: skip
    band = raw[0].astype(np.float32)
    lo, hi = limits(band)
    return Picture(band, f"{name}: band {m.bands[0]}", "gray", lo, hi, f"{m.bands[0]} (raw values)")


def draw_picture(fig: Any, ax: Any, pic: Picture, title: str | None = None) -> Any:
    """Draw ``pic`` on ``ax`` (axes off), with its colour bar or class legend below it.

    Returns:
        The image artist.
    """
    arr = pic.array
    if arr.ndim == 3:
        shown = np.ma.masked_invalid(arr).filled(1.0)  # no data: white
        im = ax.imshow(shown, interpolation="nearest")
    else:
        im = ax.imshow(
            np.ma.masked_invalid(arr), cmap=pic.cmap, vmin=pic.vmin, vmax=pic.vmax,
            interpolation="nearest",
        )  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or pic.caption, fontsize=8)
    if pic.quantity is not None and arr.ndim == 2:
        cax = ax.inset_axes((0.0, -0.09, 1.0, 0.05))
        cb = fig.colorbar(im, cax=cax, orientation="horizontal")
        cb.set_label(pic.quantity, fontsize=7)
        cb.ax.tick_params(labelsize=6)
        cb.ax.xaxis.get_offset_text().set(fontsize=6, y=1.0, va="bottom")  # not on the label
    if pic.legend:
        import matplotlib.patches as mpatches

        handles = [
            mpatches.Patch(facecolor=c, edgecolor="0.4", linewidth=0.4, label=n)
            for c, n in pic.legend
        ]
        ax.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2,
            fontsize=6, frameon=False, handlelength=1.0, columnspacing=0.8,
        )  # fmt: skip
    return im
