"""The models stage: the paper's U-Net and inference-time model optimisation.

- :mod:`.unet` -- :class:`UNet` with ``encode`` (skip features, bottleneck last) and ``decode``.
- :mod:`.multitask` -- :class:`MultiTaskUNet`: the U-Net plus auxiliary heads on its encoder.
- :mod:`.optimize` -- BatchNorm folding, Conv+ReLU fusion and :func:`prepare_model`.
"""

from .multitask import DECODERS, MAIN_HEAD, MultiTaskUNet
from .optimize import fold_batchnorm, fuse_conv_relu, prepare_model
from .unet import UNet, count_parameters

__all__ = [
    "DECODERS",
    "MAIN_HEAD",
    "MultiTaskUNet",
    "UNet",
    "count_parameters",
    "fold_batchnorm",
    "fuse_conv_relu",
    "prepare_model",
]
