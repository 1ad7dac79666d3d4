"""The models stage: the paper's U-Net and inference-time model optimisation.

- :mod:`.unet` -- :class:`UNet` with ``encode`` (skip features, bottleneck last) and ``decode``.
- :mod:`.optimize` -- BatchNorm folding, Conv+ReLU fusion and :func:`prepare_model`.
"""

from .optimize import fold_batchnorm, fuse_conv_relu, prepare_model
from .unet import UNet, count_parameters

__all__ = ["UNet", "count_parameters", "fold_batchnorm", "fuse_conv_relu", "prepare_model"]
