"""A U-Net with several heads on one shared encoder: the main task and auxiliary tasks.

:class:`MultiTaskUNet` is a :class:`~modalens.models.unet.UNet` (its ``forward``, ``encode``,
``decode`` and ``embed`` are the main task's, so prediction, tiling and occlusion use it as any
run's model) with one extra head per auxiliary task, each a 1x1 convolution giving that task's
per-pixel maps. Where the auxiliary heads sit is the ``decoder`` choice:

- ``shared`` (default): every dense head reads the same decoder; the auxiliary tasks cost one
  1x1 convolution each, the decoder is trained by every task, and the main prediction costs what
  a single-task model costs. With a scene-level main head (which has no decoder) the auxiliary
  heads share one decoder of their own.
- ``separate``: each auxiliary head gets its own decoder (the encoder alone is shared), so the
  auxiliary tasks cannot pull the main task's decoder towards them, at about the decoder's
  parameters per auxiliary task.

:meth:`MultiTaskUNet.forward_all` gives every head's output (``{"main": ..., name: ...}``) from
one encoder pass; :meth:`MultiTaskUNet.parameter_counts` the trainable parameters per part.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from .unet import DENSE_HEAD, UNet, build_decoder, count_parameters, run_decoder

#: the key of the main head's output in :meth:`MultiTaskUNet.forward_all`
MAIN_HEAD = "main"
#: where the auxiliary heads sit (the first is the default)
DECODERS = ("shared", "separate")


class MultiTaskUNet(UNet):
    """The main task's U-Net plus one dense head per auxiliary task (see the module docstring).

    Args:
        in_channels: channels of the input modalities.
        out_channels: the main head's outputs.
        base_width: channels after the stem.
        depth: down (and up) blocks.
        head: the main head (``dense`` or ``scene``).
        activation: applied to the main head's output.
        auxiliary: output channels per auxiliary task, in order (bands or classes).
        decoder: ``shared`` or ``separate``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_width: int = 64,
        depth: int = 4,
        head: str = DENSE_HEAD,
        activation: nn.Module | None = None,
        auxiliary: Mapping[str, int] | None = None,
        decoder: str = DECODERS[0],
    ) -> None:
        super().__init__(in_channels, out_channels, base_width, depth, head, activation)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        auxiliary = dict(auxiliary or {})
        if MAIN_HEAD in auxiliary:
            raise ValueError(f"an auxiliary task cannot be named {MAIN_HEAD!r}")
        self.decoder_sharing = decoder
        self.aux_outputs = auxiliary
        #: auxiliary decoders: "shared" -> one (None: the main decoder), else one per task
        self.aux_decoders = nn.ModuleDict()
        if decoder == "separate":
            for name in auxiliary:
                self.aux_decoders[name] = build_decoder(base_width, depth)
        elif head != DENSE_HEAD and auxiliary:
            self.aux_decoders["shared"] = build_decoder(base_width, depth)
        self.aux_heads = nn.ModuleDict(
            {name: nn.Conv2d(base_width, n, kernel_size=1) for name, n in auxiliary.items()}
        )

    def _decoder(self, name: str) -> nn.ModuleList:
        """The auxiliary decoder ``name`` (``"shared"``: the one the heads share)."""
        decoder = self.aux_decoders[name]
        assert isinstance(decoder, nn.ModuleList)  # made by build_decoder
        return decoder

    def decode_all(self, features: list[Tensor]) -> dict[str, Tensor]:
        """Every head's output from the encoder's ``features`` (main first)."""
        dense = self.head_type == DENSE_HEAD
        main_x = run_decoder(self.ups, features) if dense else None
        if main_x is not None:
            main = self.activation(self.head(main_x))
        else:
            main = self.head(features[-1].mean(dim=(-2, -1)))
        out = {MAIN_HEAD: main}
        shared_x = main_x
        if "shared" in self.aux_decoders and self.decoder_sharing == "shared":
            shared_x = run_decoder(self._decoder("shared"), features)
        for name, conv in self.aux_heads.items():
            x: Tensor | None
            if self.decoder_sharing == "separate":
                x = run_decoder(self._decoder(name), features)
            else:
                x = shared_x
            assert x is not None
            out[name] = conv(x)
        return out

    def forward_all(self, x: Tensor) -> dict[str, Tensor]:
        """Every head's output for inputs ``x`` from one encoder pass."""
        return self.decode_all(self.encode(x))

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part: ``encoder``, ``decoder`` (the main one; the shared
        one), ``head:main``, ``decoder:<name>`` (separate auxiliary decoders, or
        ``decoder:auxiliary`` shared by the auxiliary heads of a scene-level model),
        ``head:<name>`` per auxiliary head, ``main`` (what predicting the main task uses) and
        ``total``."""
        counts = {
            "encoder": count_parameters(self.stem) + count_parameters(self.downs),
            "decoder": count_parameters(self.ups),
            "head:main": count_parameters(self.head),
        }
        for name, dec in self.aux_decoders.items():
            counts["decoder:auxiliary" if name == "shared" else f"decoder:{name}"] = (
                count_parameters(dec)
            )
        for name, conv in self.aux_heads.items():
            counts[f"head:{name}"] = count_parameters(conv)
        counts["main"] = counts["encoder"] + counts["decoder"] + counts["head:main"]
        counts["total"] = count_parameters(self)
        return counts
