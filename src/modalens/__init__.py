"""modalens: which input modality does my Earth-observation model rely on?

Python API overview (each CLI command is a call into one of these):

- :mod:`modalens.modalities` – modality / dataset specs, YAML loading, channel layout.
- :mod:`modalens.presets` – built-in specs (``mapinwild``, ``bigearthnet``).
- :mod:`modalens.rasters` – windowed GeoTIFF reading, resampling, atomic GeoTIFF writing.
- :mod:`modalens.data` – sample dicts, splits, sample weights, whole-scene reading.
- :mod:`modalens.stats` – train-split normalisation statistics (cached JSON).
- :mod:`modalens.augment` – kornia augmentations applied identically to image and target.
- :mod:`modalens.checks` – ``data check``: every sample and modality opened and validated.
- :mod:`modalens.synthetic` – synthetic MapInWild-layout data with planted importances.
- :mod:`modalens.models` – the paper's U-Net with ``encode``/``decode``.
- :mod:`modalens.training` – Lightning modules, run folders, fit/test/predict.
- :mod:`modalens.occlusion` – the deep occlusion framework (strategies, distances, levels).
- :mod:`modalens.shapley` – exact modality Shapley values and interactions.
- :mod:`modalens.aggregation` – dataset-level summaries with bootstrap intervals.
- :mod:`modalens.figures` – figures for papers.
"""

from .errors import ModalensError

__version__ = "0.1.0"
__all__ = ["ModalensError", "__version__"]
