"""The options object, the registries and extending them with user code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import GROUPS, batch, tiny_unet

from modalens.attribution import (
    ALL,
    DISTANCES,
    LEVELS,
    STRATEGIES,
    AttributionOptions,
    Fill,
    FillContext,
    OcclusionEngine,
    attribute,
    occlusion_map_fn,
    register_distance,
    register_strategy,
)
from modalens.attribution.options import resolve_options
from modalens.cli import build_parser, main
from modalens.errors import ModalensError, SpecError


# ============================================================================ options
def test_options_normalise_and_validate() -> None:
    o = AttributionOptions(strategies="zeros, ones", distances=["cosine"], precision="BF16")
    assert o.strategies == ("zeros", "ones") and o.distances == ("cosine",)
    assert o.precision == "bf16"
    assert o.replace(draws=3).draws == 3 and o.draws == 1
    assert AttributionOptions(shapley="off").shapley is False
    # frozen, equal and hashable by value (a pydantic model)
    same = AttributionOptions(strategies=["zeros", "ones"], distances="cosine", precision="bf16")
    assert same == o and hash(same) == hash(o) and len({o, same}) == 1
    assert o != o.replace(seed=1)
    with pytest.raises(Exception, match="frozen"):
        o.draws = 2  # type: ignore[misc]
    assert AttributionOptions(mean=np.array([0.1, 0.2])).mean == (
        float(np.float32(0.1)),
        float(np.float32(0.2)),
    )
    bad = [
        ({"strategies": "blur"}, "--strategy"),
        ({"distances": ""}, "--distance"),
        ({"levels": "pixels"}, "--level"),
        ({"draws": 0}, "--draws"),
        ({"precision": "fp16"}, "--precision"),
        ({"shapley": "maybe"}, "--shapley"),
        ({"permutations": "x"}, "permutations"),
        ({"channel_axis": 0}, "channel_axis"),
        ({"chunk_size": -2}, "chunk_size"),
        ({"mean": ["a", "b"]}, "mean"),
        ({"strategy": "zeros"}, "strategy"),
    ]
    for kw, where in bad:
        with pytest.raises(SpecError) as err:
            resolve_options(**kw)
        assert where in str(err.value) and "\n" not in str(err.value)


def test_fingerprint_is_the_resume_configuration() -> None:
    o = AttributionOptions(strategies="zeros,gaussian", shapley=True, mean=[0.5] * 6)
    cfg = OcclusionEngine(tiny_unet(), GROUPS, o).config()
    assert cfg == {
        "groups": GROUPS,
        "strategies": ["zeros", "gaussian"],
        "distances": ["euclidean"],
        "levels": ["auto"],  # the default, resolved by the first batch (loss or output)
        "embedding": "auto",
        "channel_axis": 1,
        "draws": 1,
        "seed": 0,
        "mean": [0.5] * 6,
        "precision": "fp32",
        "include_all": True,
        "shapley": "True",
        "permutations": 64,
    }
    assert AttributionOptions().resume_settings()["permutations"] is None


#: ``parts/config.json`` as the dataclass options (before the pydantic model) wrote it
DATACLASS_CONFIG = {
    "groups": GROUPS,
    "strategies": ["zeros", "gaussian"],
    "distances": ["euclidean"],
    "levels": ["embedding"],
    "embedding": "auto",
    "channel_axis": 1,
    "draws": 2,
    "seed": 0,
    "mean": None,
    "precision": "fp32",
    "include_all": True,
    "shapley": "False",
    "permutations": None,
}


def test_a_folder_of_the_dataclass_options_resumes_and_others_are_refused(tmp_path) -> None:
    model, batches = tiny_unet(), [batch(3, s) for s in (1, 2)]
    kw = {"strategies": "zeros,gaussian", "levels": "embedding", "draws": 2}
    ref = attribute(model, batches, GROUPS, **kw)

    def stop(index: int, rows: pd.DataFrame) -> None:
        if index == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attribute(model, batches, GROUPS, out=tmp_path, on_batch=stop, **kw)
    config = tmp_path / "parts" / "config.json"
    stored = json.loads(config.read_text())
    assert set(stored.pop("provenance")) == {"version", "threads"}  # what produced the scores
    assert stored == DATACLASS_CONFIG  # the stored form of the options is unchanged
    config.write_text(json.dumps(DATACLASS_CONFIG))  # as an old folder holds it
    eng = OcclusionEngine(model, GROUPS, **kw)
    pd.testing.assert_frame_equal(attribute(model, batches, GROUPS, out=tmp_path, engine=eng), ref)
    second = OcclusionEngine(model, GROUPS, **kw)
    attribute(model, batches[1:], GROUPS, engine=second)
    assert eng.forwards == second.forwards > 0  # the first batch was reused, not recomputed
    with pytest.raises(ModalensError, match="draws") as err:
        attribute(model, batches, GROUPS, out=tmp_path, **{**kw, "draws": 3})
    assert "\n" not in str(err.value) and "--overwrite" in str(err.value)


def test_options_object_and_keywords_give_the_same_scores() -> None:
    model, b = tiny_unet(), batch(3)
    kw = {"strategies": "ones,gaussian", "levels": "embedding,output", "seed": 4}
    by_kw = attribute(model, [b], GROUPS, **kw)
    by_obj = attribute(model, [b], GROUPS, AttributionOptions(**kw))
    pd.testing.assert_frame_equal(by_kw, by_obj)
    eng = OcclusionEngine(model, GROUPS, AttributionOptions(**kw))
    pd.testing.assert_frame_equal(attribute(model, [b], GROUPS, engine=eng), by_kw)
    with pytest.raises(SpecError, match="engine"):
        attribute(model, [b], GROUPS, engine=eng, strategies="zeros")


# ============================================================================ registries
def test_registries_hold_the_paper_vocabulary() -> None:
    assert STRATEGIES.names() == (
        "zeros",
        "ones",
        "uniform",
        "gaussian",
        "mean",
        "nodata",
        "permute",
    )
    assert STRATEGIES.names(lambda s: s.random) == ("uniform", "gaussian", "permute")
    assert DISTANCES.names() == ("euclidean", "cosine", "relative", "mae", "delta")
    assert LEVELS.names() == ("embedding", "output", "loss")
    with pytest.raises(SpecError, match="already registered"):
        register_strategy("zeros", help="again")(lambda ctx: Fill.constant([0.0]))


def test_cli_choices_and_help_come_from_the_registries(capsys) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["attribute", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for registry in (STRATEGIES, DISTANCES, LEVELS):
        for entry in registry:
            assert f"{entry.name}: {' '.join(entry.help.split())}" in text
    assert "{euclidean,cosine,relative,mae,delta}" in text


def test_cli_unknown_strategy_is_a_one_line_error(tiny_run, capsys) -> None:
    rc = main(["attribute", str(tiny_run), "--strategy", "zeros,blur", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "unknown strategy 'blur'" in err[0] and "--strategy" in err[0]


@pytest.fixture
def half_and_laplace() -> Iterator[None]:
    """Two user strategies: a constant 0.5 and seeded Laplace noise (random)."""

    @register_strategy("half", help="0.5 everywhere")
    def half(ctx: FillContext) -> Fill:
        return Fill.constant(torch.full((ctx.n_channels,), 0.5))

    @register_strategy("laplace", noise=True, help="Laplace(0, 1) noise")
    def laplace(ctx: FillContext) -> Fill:
        def draw(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
            u = torch.rand(shape, generator=g) - 0.5
            return -u.sign() * torch.log1p(-2 * u.abs())

        return Fill.per_sample(ctx.noise(draw))

    yield
    STRATEGIES.remove("half")
    STRATEGIES.remove("laplace")


def test_a_user_strategy_is_one_registered_function(half_and_laplace: None) -> None:
    model, b = tiny_unet(), batch(3)
    df = attribute(
        model, [b], GROUPS, strategies="half,laplace", levels="embedding", draws=2, optimize=False
    )
    assert set(df["strategy"]) == {"half", "laplace"}
    assert sorted(df[df["strategy"] == "laplace"]["draw"].unique()) == [0, 1]
    assert sorted(df[df["strategy"] == "half"]["draw"].unique()) == [0]
    eng = OcclusionEngine(model, GROUPS, strategies="laplace", levels="embedding", optimize=False)
    with torch.no_grad():
        x = b["image"]
        full = model.encode(x)[-1]
        for name, chans in [*GROUPS.items(), (ALL, sum(GROUPS.values(), []))]:
            xo = x.clone()
            xo[:, chans] = 0.5
            ref = (model.encode(xo)[-1] - full).flatten(1).norm(dim=1).numpy()
            got = df[(df["strategy"] == "half") & (df["group"] == name)]["value"].to_numpy()
            np.testing.assert_allclose(got, ref, rtol=1e-5)
            noise = torch.stack([eng.noise("laplace", i, x.shape[1:]) for i in b["id"]])
            xo = x.clone()
            xo[:, chans] = noise[:, chans]
            ref = (model.encode(xo)[-1] - full).flatten(1).norm(dim=1).numpy()
            sub = df[(df["strategy"] == "laplace") & (df["group"] == name) & (df["draw"] == 0)]
            np.testing.assert_allclose(sub["value"].to_numpy(), ref, rtol=1e-5)
    maps = occlusion_map_fn(model, GROUPS, "half", optimize=False)(b["image"])
    assert maps.shape == (3, len(GROUPS), 16, 16) and bool((maps >= 0).all())


def test_a_user_distance_is_one_registered_function() -> None:
    @register_distance("chebyshev", help="largest absolute difference")
    def chebyshev(full: torch.Tensor, occ: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return (full - occ).abs().amax(1)

    try:
        model, b = tiny_unet(), batch(2)
        df = attribute(
            model, [b], GROUPS, distances="chebyshev", levels="embedding", optimize=False
        )
        with torch.no_grad():
            x = b["image"]
            xo = x.clone()
            xo[:, GROUPS["b"]] = 0.0
            ref = (model.encode(x)[-1] - model.encode(xo)[-1]).flatten(1).abs().amax(1)
        got = df[df["group"] == "b"]["value"].to_numpy()
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5)
    finally:
        DISTANCES.remove("chebyshev")
