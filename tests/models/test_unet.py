"""The paper's U-Net: parameter count, encode/decode split, task heads."""

from __future__ import annotations

import torch

from modalens.models import UNet, count_parameters


def test_paper_parameter_count() -> None:
    model = UNet(in_channels=14, out_channels=1, base_width=64, depth=4, head="dense")
    assert count_parameters(model) == 17_273_729
    assert model.downsampling == 16
    assert model.embedding_channels == 512


def test_decode_of_encode_equals_forward() -> None:
    torch.manual_seed(0)
    model = UNet(14, 1, base_width=16, depth=4).eval()
    x = torch.randn(2, 14, 48, 48)
    with torch.no_grad():
        feats = model.encode(x)
        assert len(feats) == 5
        assert feats[-1].shape == (2, 128, 3, 3)  # bottleneck: width*8 at 1/16
        assert torch.equal(model.decode(feats), model(x))
        assert torch.equal(model.embed(x), feats[-1])


def test_task_heads_shapes() -> None:
    x = torch.randn(2, 5, 32, 32)
    seg = UNet(5, 4, base_width=8, depth=2, head="dense").eval()
    cls = UNet(5, 7, base_width=8, depth=2, head="scene").eval()
    reg = UNet(5, 1, base_width=8, depth=2, head="dense", activation=torch.nn.LeakyReLU(0.01))
    reg = reg.eval()
    with torch.no_grad():
        assert seg(x).shape == (2, 4, 32, 32)
        assert cls(x).shape == (2, 7)
        assert reg(x).shape == (2, 1, 32, 32)
        # odd sizes are padded back to the input size
        assert reg(torch.randn(1, 5, 30, 30)).shape == (1, 1, 30, 30)
