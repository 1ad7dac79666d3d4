"""Smooth Gaussian random fields of synthetic scenes, synthesised in the Fourier domain.

:func:`smooth_fields` gives the (cached) generator of a scene size; its
:meth:`SmoothFields.field` draws a field of about unit variance at the given scales
(:data:`LANDSCAPE`, :data:`TEXTURE`, :data:`SMOOTH`) and :meth:`SmoothFields.blur` blurs an
image with the same machinery. :func:`clear_field_cache` frees the cached filters.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: latent field scales: (sigma px at 256 px and above, weight) of the landscape latents
LANDSCAPE = ((4.0, 0.15), (12.0, 0.3), (40.0, 0.6), (120.0, 0.8))
#: fine texture
TEXTURE = ((1.2, 1.0),)
#: water and high ground
SMOOTH = ((12.0, 0.2), (40.0, 0.6), (120.0, 1.0))


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (a quick FFT length)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


class SmoothFields:
    """Smooth Gaussian random fields, synthesised in the Fourier domain on a padded grid.

    A field is Gaussian-filtered unit white noise (a weighted sum of Gaussian filters of a few
    widths), divided by its theoretical standard deviation, so it has unit variance over the
    ensemble while each scene keeps its own mean and spread. The white noise is drawn directly
    as its (Hermitian) spectrum, which saves the forward FFT; the grid is padded beyond the scene
    so that the FFT's wrap-around does not tie opposite edges together.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.sf = float(np.clip(size / 256.0, 0.25, 1.0))
        pad = int(min(size, 2 * max(s for s, _ in LANDSCAPE) * self.sf))
        self.n = _fast_len(size + pad)
        fy = np.fft.fftfreq(self.n).astype(np.float32)[:, None]
        fx = np.fft.rfftfreq(self.n).astype(np.float32)[None, :]
        self.f2 = fy**2 + fx**2
        # rfft half-spectrum weights for Parseval: columns other than 0 and n/2 count twice
        self.w = np.full(self.f2.shape[1], 2.0, np.float32)
        self.w[0] = 1.0
        if self.n % 2 == 0:
            self.w[-1] = 1.0
        self.neg = (-np.arange(self.n)) % self.n  # row index of -k
        self._cache: dict[tuple, tuple[np.ndarray, float, np.ndarray, int]] = {}

    def _filter(self, scales: tuple) -> tuple[np.ndarray, float, np.ndarray, int]:
        if scales not in self._cache:
            h = np.zeros_like(self.f2)
            for sigma, weight in scales:
                s = sigma * self.sf
                h += weight * np.exp(-2.0 * math.pi**2 * s * s * self.f2)
            var = float(np.sum((h.astype(np.float64) ** 2) * self.w)) / self.n**2
            # the low-frequency block outside which the filter is negligible: noise is drawn
            # only there (fewer random numbers for smooth fields)
            keep = h > 1e-7 * float(h.max())
            r = int(np.max(np.minimum(np.arange(self.n), self.n - np.arange(self.n))[keep.any(1)]))
            c = int(np.max(np.nonzero(keep.any(0))[0])) + 1
            rows = np.unique(np.r_[np.arange(r + 1), (self.n - np.arange(1, r + 1)) % self.n])
            self._cache[scales] = (h, math.sqrt(var), rows, c)
        return self._cache[scales]

    def field(self, rng: np.random.Generator, scales: tuple = LANDSCAPE) -> np.ndarray:
        """A field of about unit variance (per-scene mean and spread vary naturally)."""
        h, std, rows, c = self._filter(scales)
        n, m = self.n, self.f2.shape[1]
        # spectrum of real unit white noise: E|X_k|^2 = n^2, Hermitian where rfft needs it
        ri = rng.standard_normal((2, rows.size, c), dtype=np.float32)
        spec = np.zeros((n, m), np.complex64)
        spec[rows, :c] = (ri[0] + 1j * ri[1]) * np.float32(n / math.sqrt(2.0))
        cols = [0, m - 1] if n % 2 == 0 and c == m else [0]
        for k in cols:
            col = spec[:, k]
            spec[:, k] = (col + np.conj(col[self.neg])) / np.float32(math.sqrt(2.0))
        spec *= h
        out = np.fft.irfft2(spec, s=(n, n))[: self.size, : self.size]
        return (out / np.float32(std)).astype(np.float32)

    def blur(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian blur (zero padded) of a [size, size] image."""
        buf = np.zeros((self.n, self.n), np.float32)
        buf[: self.size, : self.size] = image
        h = np.exp(-2.0 * math.pi**2 * (sigma * self.sf) ** 2 * self.f2)
        out = np.fft.irfft2(np.fft.rfft2(buf) * h, s=(self.n, self.n))[: self.size, : self.size]
        return np.maximum(out, 0.0).astype(np.float32)


@functools.lru_cache(maxsize=2)
def smooth_fields(size: int) -> SmoothFields:
    """The (cached) generator of smooth Gaussian random fields of ``size`` px scenes."""
    return SmoothFields(size)


def clear_field_cache() -> None:
    """Free the cached Fourier filters of the latent fields (after a dataset is written)."""
    smooth_fields.cache_clear()
