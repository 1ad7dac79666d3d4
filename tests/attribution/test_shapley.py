"""Shapley values: axioms on value tables and on models, sampling, caps, bands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import GROUPS, tiny_unet
from torch import nn

from modalens.attribution import (
    ALL,
    OcclusionEngine,
    attribute,
    groups_from_spec,
    modality_shapley,
)
from modalens.attribution.shapley import (
    coalition_masks,
    exact_shapley,
    interactions_from_table,
    masks_to_index,
    sampled_shapley,
    shapley_from_table,
)
from modalens.errors import ModalensError
from modalens.models import UNet


def test_table_axioms_on_random_games() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        v = rng.normal(size=(4, 2**n))
        phi = shapley_from_table(v)
        np.testing.assert_allclose(phi.sum(-1), v[:, -1] - v[:, 0], rtol=1e-12)
        inter = interactions_from_table(v)
        np.testing.assert_allclose(np.diagonal(inter, axis1=-2, axis2=-1), phi)
        np.testing.assert_allclose(inter, np.swapaxes(inter, -1, -2))


def test_known_games() -> None:
    masks = coalition_masks(3)
    np.testing.assert_array_equal(masks_to_index(masks), np.arange(8))
    w = np.array([1.0, 2.0, -0.5])
    additive = exact_shapley(lambda m: m.astype(float) @ w, ["x", "y", "z"])
    np.testing.assert_allclose(additive.values, w)
    np.testing.assert_allclose(additive.interactions[0, 1], 0.0, atol=1e-12)
    # pure synergy of players 0 and 1; player 2 is a dummy
    synergy = exact_shapley(lambda m: (m[:, 0] & m[:, 1]).astype(float), 3)
    np.testing.assert_allclose(synergy.values, [0.5, 0.5, 0.0])
    assert synergy.interactions[0, 1] == pytest.approx(1.0)
    assert synergy.interactions[0, 2] == pytest.approx(0.0)


def test_sampled_is_efficient_and_close_to_exact() -> None:
    rng = np.random.default_rng(1)
    table = rng.normal(size=2**4)

    def vf(m: np.ndarray) -> np.ndarray:
        return table[masks_to_index(m)]

    exact = exact_shapley(vf, 4).values
    est = sampled_shapley(vf, 4, permutations=400, seed=0)
    assert est.values.sum() == pytest.approx(table[-1] - table[0])
    np.testing.assert_allclose(est.values, exact, atol=4 * est.stderr.max() + 1e-9)
    assert (
        sampled_shapley(vf, 4, permutations=10, seed=3).values.tolist()
        == sampled_shapley(vf, 4, permutations=10, seed=3).values.tolist()
    )


def test_exact_cap_suggests_sampling() -> None:
    with pytest.raises(ModalensError, match="sampled"):
        exact_shapley(lambda m: m.sum(1), 17)


def test_model_efficiency_symmetry_and_dummy() -> None:
    model = tiny_unet(randomize_bn=False)
    with torch.no_grad():
        w = model.stem[0].weight
        w[:, 5] = 0.0  # group c (channel 5) is a dummy player
        w[:, 4] = w[:, 3]  # channels 3 and 4 are interchangeable
    x = torch.randn(3, 6, 16, 16)
    x[:, 4] = x[:, 3]
    groups = {"a": [0, 1, 2], "p": [3], "q": [4], "c": [5]}
    res = modality_shapley(model, x, groups, optimize=False)
    eng = OcclusionEngine(model, groups, optimize=False)
    occl = eng.score_batch(x)
    d_all = occl[occl["group"] == ALL].sort_values("sample_id")["value"].to_numpy()
    np.testing.assert_allclose(res.values.sum(1), d_all, rtol=1e-9)  # sum = v(N) - v(empty)
    np.testing.assert_allclose(res.values[:, 1], res.values[:, 2], rtol=1e-5)  # symmetry
    # dummy: 0 up to float32 rounding (conv kernels round differently per batch size) ...
    tol = 1e-6 * np.abs(res.values).max()
    np.testing.assert_allclose(res.values[:, 3], 0.0, atol=tol)
    np.testing.assert_allclose(res.interactions[:, 3, :3], 0.0, atol=tol)
    # ... and exactly 0 when every input is evaluated at the same batch size
    one = modality_shapley(model, x[:1], groups, optimize=False, chunk_size=1)
    assert (one.values[:, 3] == 0.0).all()


def test_shapley_rows_in_attribute_and_user_value_fn() -> None:
    model = tiny_unet(randomize_bn=False)
    x = torch.randn(2, 6, 16, 16)
    df = attribute(
        model, [x], GROUPS, strategies="zeros,uniform", levels="embedding,output", shapley=True
    )
    for _key, sub in df.groupby(["strategy", "level"]):
        sh = sub[sub["method"] == "shapley"].groupby("sample_id")["value"].sum()
        ref = sub[(sub["method"] == "occlusion") & (sub["group"] == ALL)].set_index("sample_id")
        np.testing.assert_allclose(sh.to_numpy(), ref.loc[sh.index, "value"], rtol=1e-9)
    inter = df[df["method"] == "interaction"]
    assert set(inter["group"]) == {"a&b", "a&c", "b&c"}

    def mean_output(occ, full):  # noqa: ANN001, ANN202
        return occ.output.flatten(1).mean(1)

    res = modality_shapley(model, x, GROUPS, levels="output", value_fn=mean_output)
    with torch.no_grad():
        xo = x.clone()
        xo[:, :] = 0
        v_all = model(x).flatten(1).mean(1) - model(xo).flatten(1).mean(1)
    np.testing.assert_allclose(res.values.sum(1), v_all.numpy(), rtol=1e-4, atol=1e-7)


def test_band_level_sampled_shapley_through_grouping_api() -> None:
    from modalens.data.presets import mapinwild_spec

    bands = groups_from_spec(mapinwild_spec("/nonexistent"), "bands")
    assert len(bands) == 14
    torch.manual_seed(0)
    model = UNet(14, 1, base_width=4, depth=2).eval()
    x = torch.randn(1, 14, 16, 16)
    with pytest.raises(ModalensError, match="sampled"):
        OcclusionEngine(model, bands, shapley="exact", max_players=12).shapley(x)
    df = attribute(model, [x], bands, shapley="auto", permutations=4)  # 14 > 10 -> sampled
    sh = df[df["method"] == "shapley"]
    assert len(sh) == 14
    d_all = df[(df["method"] == "occlusion") & (df["group"] == ALL)]["value"].iloc[0]
    assert sh["value"].sum() == pytest.approx(d_all, rel=1e-9)


def test_sampled_matches_exact_through_attribute() -> None:
    model = tiny_unet(randomize_bn=False)
    x = torch.randn(2, 6, 16, 16, generator=torch.Generator().manual_seed(3))

    def shap(method: str, **kw: object) -> np.ndarray:
        df = attribute(model, [x], GROUPS, shapley=method, optimize=False, **kw)
        sh = df[df["method"] == "shapley"].sort_values(["sample_id", "group"])
        return sh["value"].to_numpy()

    exact = shap("exact")
    sampled = shap("sampled", permutations=600)
    # 3 players: 600 sampled orders of the 6 -> within a few percent of the scale
    np.testing.assert_allclose(sampled, exact, atol=0.05 * np.abs(exact).max())


def test_tabular_shapley_channel_axis() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 1)
    x = torch.randn(5, 4)
    res = modality_shapley(
        lin,
        x,
        {"a": [0, 1], "b": [2], "c": [3]},
        levels="output",
        distances="delta",
        channel_axis=-1,
    )
    # v(S) = -(f(x) - f(x_S)) = f(x_S) - f(x): additive model -> phi_g = w_g . x_g
    w = lin.weight.detach()[0]
    ref = torch.stack([x[:, :2] @ w[:2], x[:, 2] * w[2], x[:, 3] * w[3]], 1)
    np.testing.assert_allclose(res.values, ref.numpy(), rtol=1e-5, atol=1e-7)
