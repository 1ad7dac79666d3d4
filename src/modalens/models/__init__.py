"""The models stage: the paper's U-Net and inference-time model optimisation.

- :mod:`.unet` -- :class:`UNet` with ``encode`` (skip features, bottleneck last) and ``decode``.
- :mod:`.multitask` -- :class:`MultiTaskUNet`: the U-Net plus auxiliary heads on its encoder.
- :mod:`.optimize` -- BatchNorm folding, Conv+ReLU fusion and :func:`prepare_model`.
"""

from .multitask import MultiTaskUNet
from .optimize import prepare_model
from .unet import UNet, count_parameters

__all__ = [
    "count_parameters",
    "MultiTaskUNet",
    "prepare_model",
    "UNet",
]
