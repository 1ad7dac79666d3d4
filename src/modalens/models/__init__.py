"""The models stage: the paper's U-Net and inference-time model optimisation.

- :mod:`.unet` -- :class:`UNet` with ``encode`` (skip features, bottleneck last) and ``decode``;
  :func:`min_input_size` / :func:`check_input_size`: the smallest input it takes.
- :mod:`.multitask` -- :class:`MultiTaskUNet`: the U-Net plus auxiliary heads on its encoder.
- :mod:`.optimize` -- BatchNorm folding, Conv+ReLU fusion and :func:`prepare_model`.
"""

from .multitask import MultiTaskUNet
from .optimize import prepare_model
from .unet import UNet, check_input_size, count_parameters, min_input_size

__all__ = [
    "check_input_size",
    "count_parameters",
    "min_input_size",
    "MultiTaskUNet",
    "prepare_model",
    "UNet",
]
