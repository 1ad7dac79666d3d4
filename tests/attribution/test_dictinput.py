"""Dict-of-tensors batches and models (TerraTorch-style) against plain per-modality loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modalens.attribution import OcclusionEngine, attribute, modality_shapley
from modalens.errors import DataError, SpecError


class DictNet(nn.Module):
    """Two modalities (S2 3 bands at 8x8, S1 2 bands at ``s1_size``) -> one score per sample;
    ``encoder`` is the fused embedding."""

    def __init__(self, s1_size: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.s2 = nn.Conv2d(3, 4, 3, padding=1)
        self.s1 = nn.Conv2d(2, 4, 3, padding=1)
        self.encoder = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(4, 1)
        self.s1_size = s1_size

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        a = torch.relu(self.s2(x["s2"]))
        b = torch.relu(self.s1(x["s1"]))
        if b.shape[-1] != a.shape[-1]:
            b = nn.functional.interpolate(b, size=a.shape[-2:], mode="nearest")
        z = self.encoder(a + b)
        return self.head(z.mean(dim=(2, 3)))


def dict_batch(s1_size: int = 8, n: int = 3) -> dict:
    g = torch.Generator().manual_seed(5)
    return {
        "image": {
            "s2": torch.randn(n, 3, 8, 8, generator=g),
            "s1": torch.randn(n, 2, s1_size, s1_size, generator=g),
        },
        "id": [f"x{i}" for i in range(n)],
    }


def loop(model: DictNet, b: dict, occlude: dict[str, list[int] | None], emb: bool) -> np.ndarray:
    """|f(x) - f(x occluded with zeros)| per sample, by hand."""
    with torch.no_grad():
        img = b["image"]
        occ = {k: v.clone() for k, v in img.items()}
        for k, chans in occlude.items():
            occ[k][:, chans if chans is not None else slice(None)] = 0.0
        if emb:
            f = {}
            h = model.encoder.register_forward_hook(lambda m, i, o: f.__setitem__("z", o))
            model(img)
            full = f["z"]
            model(occ)
            h.remove()
            return (f["z"] - full).flatten(1).norm(dim=1).numpy()
        return (model(occ) - model(img)).flatten(1).norm(dim=1).numpy()


def by_group(df, level: str) -> dict[str, np.ndarray]:
    sub = df[(df["level"] == level) & (df["method"] == "occlusion")]
    return {
        g: s.set_index("sample_id").loc[["x0", "x1", "x2"], "value"].to_numpy()
        for g, s in sub.groupby("group")
    }


@pytest.mark.parametrize("s1_size", [8, 4])  # equal shapes (concatenated), unequal (padded)
def test_dict_groups_by_key_equal_plain_loop(s1_size: int) -> None:
    model = DictNet(s1_size).eval()
    b = dict_batch(s1_size)
    df = attribute(
        model, [b], None, strategies="zeros", levels="output,embedding", embedding="encoder"
    )
    for level, emb in (("output", False), ("embedding", True)):
        got = by_group(df, level)
        assert set(got) == {"s2", "s1", "ALL"}
        for g, occ in (
            ("s2", {"s2": None}),
            ("s1", {"s1": None}),
            ("ALL", {"s2": None, "s1": None}),
        ):
            np.testing.assert_allclose(got[g], loop(model, b, occ, emb), rtol=1e-5, atol=1e-7)


def test_dict_band_groups_and_explicit_channel_groups() -> None:
    model = DictNet().eval()
    b = dict_batch()
    bands = by_group(attribute(model, [b], "bands", strategies="zeros", levels="output"), "output")
    assert set(bands) == {"s2:0", "s2:1", "s2:2", "s1:0", "s1:1", "ALL"}
    np.testing.assert_allclose(bands["s1:1"], loop(model, b, {"s1": [1]}, False), rtol=1e-5)
    groups = {"rgb": {"s2": [0, 1]}, "radar_nir": {"s1": None, "s2": [2]}}
    got = by_group(attribute(model, [b], groups, strategies="zeros", levels="output"), "output")
    np.testing.assert_allclose(got["rgb"], loop(model, b, {"s2": [0, 1]}, False), rtol=1e-5)
    ref = loop(model, b, {"s1": None, "s2": [2]}, False)
    np.testing.assert_allclose(got["radar_nir"], ref, rtol=1e-5)


def test_dict_embedding_callable_gets_the_dict_and_shapley_runs() -> None:
    model = DictNet().eval()
    b = dict_batch()

    def emb(m: nn.Module, x: dict) -> torch.Tensor:
        assert isinstance(x, dict) and set(x) == {"s2", "s1"}
        return m.s2(x["s2"])

    df = attribute(model, iter([b]), None, strategies="zeros", levels="embedding", embedding=emb)
    got = by_group(df, "embedding")
    assert np.all(got["s1"] == 0) and np.all(got["s2"] > 0)  # s1 does not reach s2's branch
    res = modality_shapley(model, b, None, strategies="zeros", levels="output")
    assert res.values.shape == (3, 2)


def test_dict_matches_captum_feature_ablation() -> None:
    captum = pytest.importorskip("captum.attr")
    model = DictNet().eval()
    b = dict_batch()
    img = b["image"]
    fa = captum.FeatureAblation(lambda s2, s1: model({"s2": s2, "s1": s1})[:, 0])
    masks = (torch.zeros(1, 3, 8, 8, dtype=torch.long), torch.ones(1, 2, 8, 8, dtype=torch.long))
    a2, a1 = fa.attribute((img["s2"], img["s1"]), baselines=(0.0, 0.0), feature_mask=masks)
    got = by_group(attribute(model, [b], None, strategies="zeros", levels="output"), "output")
    np.testing.assert_allclose(got["s2"], a2[:, 0, 0, 0].abs().numpy(), rtol=1e-5)
    np.testing.assert_allclose(got["s1"], a1[:, 0, 0, 0].abs().numpy(), rtol=1e-5)


def test_dict_errors_are_one_line() -> None:
    model = DictNet().eval()
    b = dict_batch()
    with pytest.raises(SpecError, match="names key 'vv'"):
        attribute(model, [b], {"x": ["vv"]}, strategies="zeros", levels="output")
    other = dict_batch()
    other["image"] = {"s1": other["image"]["s1"], "s2": other["image"]["s2"]}
    with pytest.raises(DataError, match="differ from the first batch"):
        attribute(model, [b, other], None, strategies="zeros", levels="output")
    eng = OcclusionEngine(model, {"a": [0]}, strategies="zeros", levels="output")
    with pytest.raises(DataError, match="dict of modality tensors"):
        attribute(model, [b], None, engine=eng)
