"""The paper's multimodal U-Net and its task heads.

:class:`UNet` follows the reference architecture: a DoubleConv stem to ``base_width`` (64)
channels, ``depth`` (4) max-pool down blocks (64 -> 128 -> 256 -> 512 -> 512 with bilinear
upsampling), the same number of bilinear up blocks back to 64 channels and a 1x1 head. At
14 inputs and width 64 the regression model has 17,273,729 trainable parameters.

The model exposes :meth:`UNet.encode` (list of skip features, the last one being the bottleneck
embedding the occlusion framework compares) and :meth:`UNet.decode`, so the embedding is had
without running the decoder. ``forward(x) == decode(encode(x))``.

Input size: each of the ``depth`` down blocks halves the sides (a 2x2 max-pool, odd sides
rounded down; the up blocks pad the odd pixel back), so any side of at least
:func:`min_input_size` ``= 2**depth`` pixels works and a smaller one leaves nothing to pool.
:func:`check_input_size` refuses such an input in one line before it reaches the model.

Heads (the task says which, and which output activation; see :mod:`modalens.tasks`):
- ``dense``: the decoder and a 1x1 convolution give ``out_channels`` maps at input resolution
  (regression, with LeakyReLU(0.01) on the output as in the paper; segmentation logits).
- ``scene``: a linear layer on the global-average-pooled bottleneck gives ``out_channels``
  scene logits (classification; single- or multi-label is decided by the loss, not the model).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import DataError, ModalensError

#: a per-pixel output map (decoder + 1x1 convolution)
DENSE_HEAD = "dense"
#: one output vector per scene (linear layer on the pooled bottleneck)
SCENE_HEAD = "scene"
HEADS = (DENSE_HEAD, SCENE_HEAD)


class DoubleConv(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) x 2 (convolutions keep their bias, as in the reference)."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None) -> None:
        mid_ch = mid_ch or out_ch
        super().__init__(
            nn.Conv2d(in_ch, mid_ch, 3, padding=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pool then DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))


class Up(nn.Module):
    """Bilinear x2 upsampling, concatenation with the skip, DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, in_ch // 2)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Multimodal U-Net with ``encode``/``decode`` split.

    Args:
        in_channels: channels of the stacked input cube (14 in the paper).
        out_channels: output maps (1 for regression) or classes / labels.
        base_width: channels after the stem (64 in the paper; 8-16 for CPU demos).
        depth: number of down (and up) blocks (4 in the paper).
        head: ``dense`` (per-pixel maps) or ``scene`` (pooled scene logits).
        activation: module applied to the head's output (default: identity); the regression
            task gives LeakyReLU(0.01).
    """

    def __init__(
        self,
        in_channels: int = 14,
        out_channels: int = 1,
        base_width: int = 64,
        depth: int = 4,
        head: str = DENSE_HEAD,
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_width = base_width
        self.depth = depth
        self.head_type = head

        widths = [base_width * 2**i for i in range(depth)]  # skip widths 64,128,256,512
        self.stem = DoubleConv(in_channels, widths[0])
        downs = []
        for i in range(1, depth):
            downs.append(Down(widths[i - 1], widths[i]))
        bottleneck = widths[-1]  # bilinear: the last down keeps the width (1024 // 2)
        downs.append(Down(widths[-1], bottleneck))
        self.downs = nn.ModuleList(downs)
        self.embedding_channels = bottleneck

        self.head: nn.Module
        if head == SCENE_HEAD:
            self.ups = nn.ModuleList()
            self.head = nn.Linear(bottleneck, out_channels)
        else:
            self.ups = build_decoder(base_width, depth)
            self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        self.activation = activation if activation is not None else nn.Identity()

    @property
    def downsampling(self) -> int:
        """Spatial reduction of the bottleneck (inputs should be a multiple of it)."""
        return 2**self.depth

    def encode(self, x: Tensor) -> list[Tensor]:
        """Skip features from the stem down; the last element is the bottleneck embedding."""
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats

    def decode(self, features: list[Tensor]) -> Tensor:
        """Prediction from the features :meth:`encode` returned."""
        if self.head_type == SCENE_HEAD:
            pooled = features[-1].mean(dim=(-2, -1))
            return self.head(pooled)
        return self.activation(self.head(run_decoder(self.ups, features)))

    def embed(self, x: Tensor) -> Tensor:
        """The bottleneck embedding only (what the occlusion framework compares)."""
        return self.encode(x)[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def build_decoder(base_width: int, depth: int) -> nn.ModuleList:
    """The up blocks of a U-Net of ``base_width`` and ``depth`` (bottleneck to ``base_width``
    channels at input resolution)."""
    widths = [base_width * 2**i for i in range(depth)]
    ups = []
    ch = widths[-1]
    for i in reversed(range(depth)):
        out = widths[i] // 2 if i > 0 else widths[0]
        ups.append(Up(ch + widths[i], out))
        ch = out
    return nn.ModuleList(ups)


def run_decoder(ups: nn.ModuleList, features: list[Tensor]) -> Tensor:
    """The last decoder features (``base_width`` channels at input resolution) from the
    encoder's ``features``."""
    x = features[-1]
    for up, skip in zip(ups, reversed(features[:-1]), strict=True):
        x = up(x, skip)
    return x


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def min_input_size(depth: int) -> int:
    """The smallest side (pixels) a U-Net of ``depth`` down blocks takes: ``2**depth`` (each
    block halves the sides, rounding down; odd sides are fine)."""
    return 2 ** int(depth)


def largest_depth(side: int) -> int:
    """The deepest U-Net an input with shorter side ``side`` fits (0: none)."""
    return max(int(side), 1).bit_length() - 1


def check_input_size(
    height: int,
    width: int,
    where: str,
    *,
    depth: int,
    fix: str | None = None,
    error: type[ModalensError] = DataError,
    training: bool = False,
) -> None:
    """Refuse an input smaller than :func:`min_input_size` in one line.

    Args:
        height: input rows.
        width: input columns.
        where: what the input is (a sample id, a key or an option).
        depth: the U-Net's down blocks.
        fix: how to fix it (default: larger inputs or a shallower model).
        error: the error class (:class:`~modalens.errors.DataError` for data, a
            :class:`~modalens.errors.SpecError` for an option).
        training: a training input: its bottleneck must also hold more than one pixel
            (BatchNorm cannot train on one value per channel when a batch has one item).

    Raises:
        ModalensError: a side below ``2**depth``, or a training input with a 1x1 bottleneck
            (``error``).
    """
    need = min_input_size(depth)
    side = min(int(height), int(width))
    one_pixel = training and (height >> depth) * (width >> depth) < 2
    if side >= need and not one_pixel:
        return
    # training: the bottleneck needs more than one pixel, so twice the side (one depth less)
    fits = largest_depth(side) - int(training)
    shallower = f" or a model with depth {fits} (model.depth)" if fits >= 1 else ""
    fix = fix or f"use inputs of at least {need * (1 + int(training))} px{shallower}"
    if side >= need:
        raise error(
            f"a {height}x{width} px training input leaves a 1x1 bottleneck in a depth-{depth} "
            "U-Net (BatchNorm cannot train on one value per channel)",
            where,
            fix,
        )
    raise error(
        f"a {height}x{width} px input is below the {need} px minimum side of a depth-{depth} "
        f"U-Net, which halves the sides {depth} times",
        where,
        fix,
    )
