"""Synthetic MapInWild-layout data with PLANTED modality importances.

:func:`generate_synthetic` writes a dataset that :func:`~modalens.data.presets.mapinwild_spec` reads
unchanged::

    out/s2_temporal_subset/<id>.tif   10 bands uint16, reflectance x 10000 (B2 ... B12)
    out/s1/<id>.tif                   2 bands float32, VV and VH backscatter in dB
    out/ESA_WC/<id>.tif               uint8 ESA WorldCover codes 10 ... 100 (incl. 95), nodata 0
    out/VIIRS/<id>.tif                float32 night-light radiance (sparse, heavy tail)
    out/NI/<id>.tif                   float32 naturalness 0-100, nodata NaN
    out/split_IDs.csv                 columns train, validation, test (numeric ids, NaN-padded)
    out/metadata.json                 seed, size, planted and realised importances, recipe

Every raster is a tiled GeoTIFF in EPSG:32633 at 10 m with its own origin; ids are numeric
strings ``100000 + i``. The same seed gives the same bytes in every file, and sample ``i`` does not
depend on how many samples are generated nor on the planted importances (only ``NI`` does).

How a scene is made
-------------------
Smooth latent fields (Gaussian-filtered white noise at several scales, filtered in the Fourier
domain with numpy) make up every scene:

- *shared* structure seen by all modalities: a naturalness latent ``N``, water bodies and rivers,
  high ground (snow / moss), settlements (blobs) and roads (lines); settlements and roads are
  built-up in WorldCover, bright in VV, non-vegetated in S2 and lit in VIIRS;
- *own* latents ``O_m``, one per modality, independent of everything else.

Per modality ``m`` a latent score ``q_m = sigmoid(1.8 (rho N + sqrt(1 - rho^2) O_m))`` (``rho`` =
``shared``, default 0.6) drives the modality: the vegetation fraction of the S2 spectra, the
cross-polarisation ratio of S1, the WorldCover class thresholds and the rural background radiance
of VIIRS. A signal ``z_m`` in [0, 1] is then computed from the WRITTEN raster of modality ``m``
alone (:func:`.signals.modality_signals`):

- ``s2``:     max(clip((NDVI - 0.1) / 0.7), 0.95 clip((MNDWI - 0.2) / 0.4)) (vegetation or water)
- ``s1``:     clip((VH - VV + 11) / 7) (cross-polarisation ratio in dB: volume scattering)
- ``esa_wc``: a per-class naturalness value (:data:`.signals.WORLDCOVER_NATURALNESS`)
- ``viirs``:  exp(-radiance / 0.6) (dark = natural)

and the target is ``NI = clip(100 * sum_m w_m z_m + N(0, 1), 0, 100)`` with ``w`` the normalised
planted importances, NaN on a border strip or patch in every other sample (and where WorldCover
is no-data). So every modality carries its own share of the target, and a modality planted at 0
is uninformative beyond what it shares with the others (``N``, water, settlements, roads) while
still looking realistic. ``metadata.json`` records, per modality, the realised share of the
target variance ``cov(100 w_m z_m, NI) / var(NI)`` and the correlations between the ``z_m``.

Known truth for faithfulness benchmarks
---------------------------------------
- *Realised importance* (``metadata.json`` -> ``realised_importance``, per sample and over the
  dataset): how much NI changes when a modality's term is replaced by its dataset mean
  (:mod:`.truth`). A planted weight is not a realised effect: a modality whose signal hardly
  varies moves the target less than its weight.
- *Sparse modalities* (``sparsity={"viirs": 0.75}``, ``--sparsity``): the modality's own latent
  score falls back to a constant on about that share of pixels (whole scenes or parts of them),
  so its signal varies only elsewhere and it realises less than its weight.
- *Decoy* (``decoy=True`` or ``decoy=0`` in the importance): ``DECOY/<id>.tif``, one band of
  noise independent of everything (planted importance 0), and ``spec.yaml``, a generic dataset
  spec of all five modalities (:func:`.generate.synthetic_spec`; the ``mapinwild`` preset keeps
  its fixed four). Any real modality can be made a decoy-like modality by giving it weight 0.

Without sparsity and decoy, every raster and the split are those of the dense generator
(byte for byte); only ``metadata.json`` gains the new keys.

*Error link* (``error_link={"s1": 1}``, ``--error-link s1=1``; :mod:`.linking`): a smooth
field shared by the target's noise and S1 (the same dB offset on VV and VH, so ``z_s1`` is
unchanged), with a per-sample amplitude recorded in ``metadata.json``; the known truth of
``modalens mtl explain``. Off by default: no file changes.

Modules: :mod:`.signals` (the modalities and their signals ``z_m``), :mod:`.scenes` draws one
scene (latent fields, per-modality rasters, sparse presence, the decoy) from the smooth
random fields of :mod:`.fields`, :mod:`.planting` reads importances and sparsity,
:mod:`.truth` measures realised importances, :mod:`.linking` plants the error link and
:mod:`.generate` writes a dataset with the split file and ``metadata.json``.
"""

from .generate import SPEC_FILE, generate_synthetic, synthetic_spec
from .generate import generate as generate  # deprecated alias (not in __all__)
from .planting import DEFAULT_IMPORTANCE, parse_importance, parse_sparsity
from .scenes import DECOY
from .signals import MODALITIES
from .truth import RealisedImportance

__all__ = [
    "DECOY",
    "DEFAULT_IMPORTANCE",
    "generate_synthetic",
    "MODALITIES",
    "parse_importance",
    "parse_sparsity",
    "RealisedImportance",
    "SPEC_FILE",
    "synthetic_spec",
]
