"""The occlusion engine against Captum, plain loops and constructed models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import GROUPS, C, H, batch, make_x, tiny_unet
from torch import nn

from modalens.attribution import (
    ALL,
    OcclusionEngine,
    attribute,
    occlusion_map_fn,
    precision_agreement,
)
from modalens.errors import ModalensError
from modalens.models import UNet
from modalens.tasks import masked_mse


def pick(df: pd.DataFrame, **kw: object) -> pd.DataFrame:
    for k, v in kw.items():
        df = df[df[k] == v]
    return df


def values(df: pd.DataFrame, ids: list[str], group: str, **kw: object) -> np.ndarray:
    sub = pick(df, group=group, **kw).set_index("sample_id")
    return sub.loc[ids, "value"].to_numpy(dtype=np.float64)


def feature_mask() -> torch.Tensor:
    mask = torch.zeros(1, C, H, H, dtype=torch.long)
    for k, chans in enumerate(GROUPS.values()):
        mask[:, chans] = k
    return mask


def baselines_for(engine: OcclusionEngine, strategy: str, ids: list[str]) -> object:
    if strategy == "zeros":
        return 0.0
    if strategy == "ones":
        return 1.0
    return torch.stack([engine.noise(strategy, i, (C, H, H)) for i in ids])


# ============================================================================ Captum
@pytest.mark.parametrize("strategy", ["zeros", "ones", "uniform", "gaussian"])
def test_output_matches_captum_feature_ablation(strategy: str) -> None:
    from captum.attr import FeatureAblation

    model = tiny_unet("classification")  # per-sample scalar output [B, 1]
    b = batch()
    eng = OcclusionEngine(
        model,
        GROUPS,
        strategies=(strategy,),
        levels=("output",),
        distances=("delta",),
        optimize=False,
        seed=3,
    )
    df = eng.score_batch({k: v for k, v in b.items() if k != "valid"})
    fa = FeatureAblation(lambda x: model(x)[:, 0])
    with torch.no_grad():
        attr = fa.attribute(
            b["image"],
            baselines=baselines_for(eng, strategy, b["id"]),
            feature_mask=feature_mask(),
            perturbations_per_eval=3,
        )
    for name, chans in GROUPS.items():
        ours = values(df, b["id"], name)
        np.testing.assert_allclose(ours, attr[:, chans[0], 0, 0].numpy(), rtol=1e-5, atol=1e-7)


def test_summed_map_output_matches_captum() -> None:
    from captum.attr import FeatureAblation

    model = tiny_unet("regression")
    b = batch()
    eng = OcclusionEngine(model, GROUPS, levels="output", distances="delta", optimize=False)
    df = eng.score_batch({"image": b["image"], "id": b["id"]})
    fa = FeatureAblation(lambda x: model(x).flatten(1).sum(1))
    with torch.no_grad():
        attr = fa.attribute(b["image"], baselines=0.0, feature_mask=feature_mask())
    for name, chans in GROUPS.items():
        ours = values(df, b["id"], name) * H * H  # delta is the mean difference
        np.testing.assert_allclose(ours, attr[:, chans[0], 0, 0].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["zeros", "ones", "uniform", "gaussian"])
def test_embedding_distance_matches_captum_distance_wrapper(strategy: str) -> None:
    from captum.attr import FeatureAblation

    model = tiny_unet()
    b = batch()
    x = b["image"]
    eng = OcclusionEngine(
        model, GROUPS, strategies=strategy, levels="embedding", optimize=False, seed=7
    )
    df = eng.score_batch(b)
    with torch.no_grad():
        ref = model.encode(x)[-1]

        def dist_to_ref(inp: torch.Tensor) -> torch.Tensor:
            r = ref.repeat(inp.shape[0] // ref.shape[0], 1, 1, 1)
            return (model.encode(inp)[-1] - r).flatten(1).norm(dim=1)

        attr = FeatureAblation(dist_to_ref).attribute(
            x,
            baselines=baselines_for(eng, strategy, b["id"]),
            feature_mask=feature_mask(),
            perturbations_per_eval=3,
        )
    for name, chans in GROUPS.items():
        # f(x) = 0, so the attribution is -distance
        np.testing.assert_allclose(
            values(df, b["id"], name), -attr[:, chans[0], 0, 0].numpy(), rtol=1e-5
        )


# ============================================================================ plain loops
def _loop_distances(model: UNet, x: torch.Tensor, fill: float = 0.0) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(x.shape[0]):
            full = model.encode(x[i : i + 1])[-1]
            for name, chans in [*GROUPS.items(), (ALL, sum(GROUPS.values(), []))]:
                xo = x[i : i + 1].clone()
                xo[:, chans] = fill
                d = (model.encode(xo)[-1] - full).flatten().norm()
                out.setdefault(name, []).append(float(d))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("optimize", [False, True])
def test_embedding_equals_plain_loop(optimize: bool) -> None:
    model = tiny_unet()
    b = batch(5)
    df = attribute(
        model,
        [b],
        GROUPS,
        strategies="zeros,ones",
        levels="embedding",
        optimize=optimize,
        chunk_size=3,
    )
    for fill, strategy in [(0.0, "zeros"), (1.0, "ones")]:
        loop = _loop_distances(model, b["image"], fill)
        for name, ref in loop.items():
            ours = values(df, b["id"], name, strategy=strategy)
            # BatchNorm folding / channels-last change float rounding only
            np.testing.assert_allclose(ours, ref, rtol=1e-4 if optimize else 1e-5)


def test_ungrouped_channels_stay_present() -> None:
    model = tiny_unet()
    b = batch(3)
    eng = OcclusionEngine(
        model, {"a": [0, 1], "c": [5]}, strategies="ones", levels="embedding", optimize=False
    )
    df = attribute(model, [b], {}, engine=eng)
    with torch.no_grad():
        full = model.encode(b["image"])[-1]
        xo = b["image"].clone()
        xo[:, [0, 1, 5]] = 1.0
        ref = (model.encode(xo)[-1] - full).flatten(1).norm(dim=1).numpy()
    np.testing.assert_allclose(values(df, b["id"], ALL), ref, rtol=1e-5)
    assert eng.forwards == 3 + 3 * 3  # no shared ALL input: channels 2-4 differ per sample


def test_all_reference_cached_once_for_deterministic_fills() -> None:
    model = tiny_unet()
    eng = OcclusionEngine(model, GROUPS, strategies="zeros")
    attribute(model, [batch(4, 1), batch(4, 2)], GROUPS, engine=eng)
    # 2 batches x (4 full + 4 x 3 groups) + the ALL input once
    assert eng.forwards == 2 * (4 + 12) + 1


def test_output_level_uses_valid_pixels_and_loss_level() -> None:
    model = tiny_unet()
    b = batch(3)
    df = attribute(
        model, [b], GROUPS, levels="output,loss", distances="euclidean,mae", optimize=False
    )
    x, valid, target = b["image"], b["valid"], b["target"]
    with torch.no_grad():
        full = model(x)
        for name, chans in GROUPS.items():
            xo = x.clone()
            xo[:, chans] = 0.0
            occ = model(xo)
            m = valid[:, None].expand_as(full)
            d = torch.stack([(full[i] - occ[i])[m[i]].norm() for i in range(3)])
            mae = torch.stack([(full[i] - occ[i])[m[i]].abs().mean() for i in range(3)])
            dl = masked_mse(occ, target, valid) - masked_mse(full, target, valid)
            np.testing.assert_allclose(
                values(df, b["id"], name, level="output", distance="euclidean"),
                d.numpy(),
                rtol=1e-5,
            )
            np.testing.assert_allclose(
                values(df, b["id"], name, level="output", distance="mae"), mae.numpy(), rtol=1e-5
            )
            np.testing.assert_allclose(
                values(df, b["id"], name, level="loss"), dl.numpy(), rtol=1e-5, atol=1e-9
            )


def test_distances_cosine_and_relative() -> None:
    model = tiny_unet()
    b = batch(3)
    df = attribute(
        model,
        [b],
        GROUPS,
        distances="euclidean,cosine,relative",
        levels="embedding",
        optimize=False,
    )
    with torch.no_grad():
        full = model.encode(b["image"])[-1].flatten(1).double()
        xo = b["image"].clone()
        xo[:, GROUPS["a"]] = 0
        occ = model.encode(xo)[-1].flatten(1).double()
    cos = 1 - torch.nn.functional.cosine_similarity(full, occ, dim=1)
    rel = (full - occ).norm(dim=1) / full.norm(dim=1)
    np.testing.assert_allclose(values(df, b["id"], "a", distance="cosine"), cos, rtol=1e-5)
    np.testing.assert_allclose(values(df, b["id"], "a", distance="relative"), rel, rtol=1e-5)


# ============================================================================ properties
def test_ignored_modality_has_exactly_zero_influence() -> None:
    model = tiny_unet()
    with torch.no_grad():
        model.stem[0].weight[:, GROUPS["c"]] = 0.0  # the model cannot see group c
    df = attribute(
        model,
        [batch(4)],
        GROUPS,
        strategies="zeros,ones,uniform,gaussian,mean,permute",
        levels="embedding,output",
        distances="euclidean,mae",
        mean=[0.5] * C,
    )
    c = pick(df, group="c", method="occlusion")
    assert len(c) > 0 and (c["value"] == 0.0).all()
    assert (pick(df, group="a", level="output", distance="euclidean")["value"] > 0).all()


def test_seeded_noise_reproducible_and_seed_dependent() -> None:
    model = tiny_unet()
    kw = {"strategies": "uniform,gaussian,permute,zeros", "draws": 2}
    a = attribute(model, [batch(4)], GROUPS, seed=1, **kw)
    b = attribute(model, [batch(4)], GROUPS, seed=1, **kw)
    c = attribute(model, [batch(4)], GROUPS, seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    for s in ("uniform", "gaussian", "permute"):
        assert not np.allclose(pick(a, strategy=s)["value"], pick(c, strategy=s)["value"])
    np.testing.assert_array_equal(
        pick(a, strategy="zeros")["value"], pick(c, strategy="zeros")["value"]
    )
    # draws differ from each other and are reported separately
    u = pick(a, strategy="uniform", group="a")
    assert sorted(u["draw"].unique()) == [0, 1]
    assert not np.allclose(pick(u, draw=0)["value"], pick(u, draw=1)["value"])


def test_noise_does_not_depend_on_batch_composition() -> None:
    model = tiny_unet()
    b = batch(4)
    halves = [
        {k: v[:2] for k, v in b.items()},
        {k: v[2:] for k, v in b.items()},
    ]
    a = attribute(model, [b], GROUPS, strategies="gaussian", optimize=False)
    h = attribute(model, halves, GROUPS, strategies="gaussian", optimize=False)
    np.testing.assert_allclose(a["value"], h["value"], rtol=1e-5)


def test_permute_all_is_distance_to_another_sample() -> None:
    model = tiny_unet()
    b = batch(4)
    df = attribute(model, [b], GROUPS, strategies="permute", levels="embedding", optimize=False)
    with torch.no_grad():
        e = model.encode(b["image"])[-1].flatten(1)
    pair = torch.cdist(e, e).numpy()
    got = values(df, b["id"], ALL)
    for i in range(4):
        others = np.delete(pair[i], i)
        assert np.isclose(others, got[i], rtol=1e-4).any()
    with pytest.warns(UserWarning, match="permute"):
        one = attribute(model, [batch(1)], GROUPS, strategies="permute")
    assert one["value"].isna().all()


def test_windows_ids_and_plain_tensors() -> None:
    model = tiny_unet()
    df = attribute(model, [batch(2)], GROUPS)
    assert set(df["window"]) == {"0,0,16,16", "0,1,16,16"}
    plain = attribute(model, [make_x(2), make_x(3, seed=5)], GROUPS)
    assert sorted(plain["sample_id"].unique()) == ["0", "1", "2", "3", "4"]
    assert set(plain["window"]) == {""}


# ============================================================================ resume
def test_resume_after_interruption(tmp_path) -> None:
    model = tiny_unet()
    batches = [batch(3, s) for s in (1, 2, 3)]
    kw = {"strategies": "zeros,gaussian", "levels": "embedding,output", "shapley": True}
    ref = attribute(model, batches, GROUPS, out=tmp_path / "ref", **kw)

    def stop(index: int, rows: pd.DataFrame) -> None:
        if index == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attribute(model, batches, GROUPS, out=tmp_path / "run", on_batch=stop, **kw)
    assert len(list((tmp_path / "run" / "parts").glob("part-*.parquet"))) == 1
    eng = OcclusionEngine(model, GROUPS, **kw)
    final = attribute(model, batches, GROUPS, out=tmp_path / "run", engine=eng, **kw)
    pd.testing.assert_frame_equal(final, ref)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "scores.parquet"), ref)
    # per batch of 3: 3 full + zeros 6 masks x 3 (ALL shared) + gaussian 7 masks x 3 = 42;
    # the finished first batch is skipped, the shared zeros ALL input runs once
    assert eng.forwards == 2 * 42 + 1
    assert set(final["sample_id"]) == {f"s{s}_{i}" for s in (1, 2, 3) for i in range(3)}
    again = OcclusionEngine(model, GROUPS, **kw)
    attribute(model, batches, GROUPS, out=tmp_path / "run", engine=again, **kw)
    assert again.forwards == 0  # everything done: nothing recomputed


def test_resume_refuses_other_configuration(tmp_path) -> None:
    model = tiny_unet()
    attribute(model, [batch(2)], GROUPS, out=tmp_path)
    with pytest.raises(ModalensError, match="strategies"):
        attribute(model, [batch(2)], GROUPS, out=tmp_path, strategies="ones")


# ============================================================================ other models
class SeriesNet(nn.Module):
    """A time-series / tabular model: features on the last axis."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).mean(1)


def test_channel_axis_last_and_hook_embedding() -> None:
    model = SeriesNet().eval()
    x = torch.randn(5, 7, 6)  # [B, T, features]
    groups = {"f01": [0, 1], "f234": [2, 3, 4], "f5": [5]}
    df = attribute(
        model,
        [x],
        groups,
        channel_axis=-1,
        embedding="body",
        strategies="zeros,ones",
        levels="embedding",
    )
    with torch.no_grad():
        full = model.body(x).flatten(1)
        for fill, strategy in [(0.0, "zeros"), (1.0, "ones")]:
            for name, chans in groups.items():
                xo = x.clone()
                xo[..., chans] = fill
                ref = (model.body(xo).flatten(1) - full).norm(dim=1).numpy()
                got = values(df, [str(i) for i in range(5)], name, strategy=strategy)
                np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_hook_on_unet_submodule_equals_encode_and_skips_decoder() -> None:
    model = tiny_unet()
    b = batch(3)
    via_encode = attribute(model, [b], GROUPS, levels="embedding", optimize=False)
    eng = OcclusionEngine(model, GROUPS, embedding="downs.1", levels="embedding", optimize=False)
    via_hook = attribute(model, [b], GROUPS, engine=eng)
    np.testing.assert_allclose(via_hook["value"], via_encode["value"], rtol=1e-6)
    calls = []
    eng.model.head.register_forward_hook(lambda *a: calls.append(1))
    eng.score_batch(batch(2, 9))
    assert calls == []  # the forward stopped at the embedding
    with pytest.raises(ModalensError, match="no submodule"):
        attribute(model, [b], GROUPS, embedding="nope", levels="embedding")


class TupleEncodeNet(nn.Module):
    """encode() returns (skip, bottleneck) as a tuple; the bottleneck is the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.Conv2d(C, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.relu(self.skip(x))
        return s, torch.relu(self.down(s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[1].mean(1, keepdim=True)


def test_encode_returning_a_tuple_uses_the_last_element() -> None:
    torch.manual_seed(0)
    model = TupleEncodeNet().eval()
    b = batch(2)
    df = attribute(model, [b], GROUPS, strategies="zeros", levels="embedding", optimize=False)
    with torch.no_grad():
        xo = b["image"].clone()
        xo[:, GROUPS["a"]] = 0.0
        ref = (model.encode(b["image"])[1] - model.encode(xo)[1]).flatten(1).norm(dim=1)
    np.testing.assert_allclose(values(df, b["id"], "a"), ref.numpy(), rtol=1e-5)


def test_model_without_encode_needs_a_submodule_name() -> None:
    with pytest.raises(ModalensError, match="encode"):
        attribute(
            SeriesNet(), [torch.randn(2, 3, 6)], {"a": [0]}, channel_axis=-1, levels="embedding"
        )


# ============================================================================ maps / bf16
def test_occlusion_map_fn() -> None:
    model = tiny_unet()
    x = make_x(2)
    fn = occlusion_map_fn(model, GROUPS, "ones", optimize=False)
    with torch.inference_mode():
        maps = fn(x)
        full = model(x)
        assert maps.shape == (2, 3, H, H)
        for k, chans in enumerate(GROUPS.values()):
            xo = x.clone()
            xo[:, chans] = 1.0
            ref = (full - model(xo)).abs().mean(1)
            torch.testing.assert_close(maps[:, k], ref, rtol=1e-5, atol=1e-6)


def test_bf16_precision_agreement() -> None:
    model = tiny_unet()
    res = precision_agreement(
        model, [batch(4)], GROUPS, strategies="zeros,ones", levels="embedding"
    )
    assert res["max_rel_error"] < 0.2
    assert res["dataset_rank_agreement"] == 1.0  # bf16 keeps every block's group ranking
    assert set(res["bf16"]["group"]) == {"a", "b", "c", ALL}


def test_unknown_options_are_one_line_errors() -> None:
    model = tiny_unet()
    for kw in ({"strategies": "blur"}, {"distances": "l7"}, {"levels": "pixels"}):
        with pytest.raises(ModalensError) as err:
            attribute(model, [batch(2)], GROUPS, **kw)
        assert "\n" not in str(err.value)
    with pytest.raises(ModalensError, match="outside"):
        attribute(model, [batch(2)], {"a": [0, 9]})


# ============================================================================ run level
def test_attribute_run_writes_scores_summary_and_resumes(tiny_run, tmp_path) -> None:
    from modalens.attribution import attribute_run
    from modalens.attribution.rows import COLUMNS

    out = tmp_path / "attr"
    kw = {"strategies": "zeros,gaussian,mean", "levels": "embedding,output,loss", "out": out}
    scores, summary = attribute_run(tiny_run, shapley=True, progress=False, **kw)
    assert list(scores.columns) == COLUMNS
    for name in ("scores.parquet", "summary.csv", "summary.txt", "pairwise.csv", "influence.png"):
        assert (out / name).exists()
    pairs = pd.read_csv(out / "pairwise.csv")
    # every ordered pair of the four modalities in every occlusion and Shapley block
    ranked = summary[(summary["group"] != ALL) & summary["method"].isin(["occlusion", "shapley"])]
    blocks = ranked.groupby(["method", "level", "strategy"]).ngroups
    assert len(pairs) == blocks * 4 * 3 and ALL not in set(pairs["group_a"])
    assert summary["tier"].notna().sum() == blocks * 4
    occ = scores[scores["method"] == "occlusion"]
    assert set(occ["group"]) == {"s2", "s1", "esa_wc", "viirs", ALL}
    assert occ["window"].str.count(",").eq(3).all()
    assert set(summary["level"]) == {"embedding", "output", "loss"}
    calls = []
    again, _ = attribute_run(
        tiny_run, shapley=True, progress=False, on_batch=lambda *a: calls.append(a), **kw
    )
    assert calls == []
    pd.testing.assert_frame_equal(again, scores)


def test_attribute_run_does_not_mix_splits_or_accept_bad_batch_size(tiny_run, tmp_path) -> None:
    from modalens.attribution import attribute_run
    from modalens.errors import SpecError
    from modalens.training import load_run

    out = tmp_path / "attr"
    kw = {"strategies": "zeros", "out": out, "progress": False, "figure": False}
    test_scores, _ = attribute_run(tiny_run, split="test", **kw)
    run = load_run(tiny_run)
    test_ids, val_ids = set(run.dataset("test").ids), set(run.dataset("val").ids)
    assert set(test_scores["sample_id"]) == test_ids
    with pytest.raises(ModalensError, match="split") as err:
        attribute_run(tiny_run, split="val", **kw)
    assert "\n" not in str(err.value)
    val_scores, _ = attribute_run(tiny_run, split="val", resume=False, **kw)
    assert set(val_scores["sample_id"]) == val_ids
    assert set(pd.read_parquet(out / "scores.parquet")["sample_id"]) == val_ids
    with pytest.raises(SpecError, match="batch size"):
        attribute_run(tiny_run, batch_size=0, **kw)


def test_attribute_out_keeps_only_the_requested_samples(tmp_path) -> None:
    model = tiny_unet()
    first = attribute(model, [batch(2, prefix="x")], GROUPS, out=tmp_path)
    second = attribute(model, [batch(2, prefix="y")], GROUPS, out=tmp_path)
    assert set(first["sample_id"]) == {"x1_0", "x1_1"}
    assert set(second["sample_id"]) == {"y1_0", "y1_1"}


def test_out_that_is_a_file_is_a_one_line_error(tmp_path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ModalensError, match="file") as err:
        attribute(tiny_unet(), [batch(2)], GROUPS, out=f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_occlusion_maps_are_georeferenced(tiny_run, tmp_path) -> None:
    import rasterio

    from modalens.attribution import occlusion_maps
    from modalens.training import load_run

    files = occlusion_maps(tiny_run, out=tmp_path, tile=32, overlap=8)
    tifs = [f for f in files if f.suffix == ".tif"]
    pngs = [f for f in files if f.suffix == ".png"]
    assert tifs and len(pngs) == 4 * len(tifs)
    reader = load_run(tiny_run).reader()
    sid = tifs[0].name.split("_")[0]
    grid = reader.grid(sid)
    with rasterio.open(tifs[0]) as ds:
        assert ds.crs == grid.crs and ds.transform == grid.transform
        assert ds.descriptions == ("s2", "s1", "esa_wc", "viirs")
        arr = ds.read()
    assert arr.shape == (4, grid.height, grid.width)
    assert np.nanmin(arr) >= 0 and np.isfinite(arr).any()
