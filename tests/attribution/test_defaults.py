"""The defaults, defined once: the ``auto`` level (loss with targets, output without), the
paper's protocol as :func:`paper_options`, the CLI's options taking the library's defaults and
the summary's recommended block order."""

from __future__ import annotations

import argparse
import functools
import inspect
import itertools

import numpy as np
import pandas as pd
import pytest
from helpers import GROUPS, batch, make_x, tiny_unet

from modalens.attribution import (
    AttributionOptions,
    OcclusionEngine,
    attribute,
    attribute_run,
    paper_options,
    summarize_scores,
)
from modalens.attribution.aggregation import choose_block
from modalens.attribution.maps import occlusion_maps
from modalens.attribution.options import AUTO_LEVEL
from modalens.attribution.strategies import paper_strategies
from modalens.cli import build_parser, main
from modalens.errors import SpecError
from modalens.tasks import masked_mse


# ============================================================================ the auto level
def test_default_level_is_auto_and_resolves_by_targets() -> None:
    o = AttributionOptions()
    assert o.levels == ("auto",) == (AUTO_LEVEL,)
    # loss level only with a known loss: never a guessed one (a classifier scored by MSE)
    assert o.for_targets(True).levels == ("output",)
    known = AttributionOptions(loss_fn=masked_mse)
    assert known.for_targets(True).levels == ("loss",)
    assert known.for_targets(False).levels == ("output",)
    assert o.for_targets(False).levels == ("output",)
    named = AttributionOptions(levels="embedding,output")
    assert named.for_targets(True) is named and named.for_targets(False) is named
    with pytest.raises(SpecError, match="auto"):
        AttributionOptions(levels="auto,embedding")


def _without_target(b: dict) -> dict:
    return {k: v for k, v in b.items() if k not in ("target", "valid")}


def test_attribute_resolves_auto_to_loss_with_targets_and_output_without() -> None:
    model = tiny_unet()
    b = batch(3)
    # a dict batch with a target, and an (image, target) tuple, with a known loss: loss level
    with_target = attribute(model, [b], GROUPS, optimize=False, loss_fn=masked_mse)
    assert set(with_target["level"]) == {"loss"}
    pd.testing.assert_frame_equal(
        with_target,
        attribute(model, [b], GROUPS, levels="loss", optimize=False, loss_fn=masked_mse),
    )
    pair = attribute(model, [(b["image"], b["target"])], GROUPS, optimize=False,
                     loss_fn=masked_mse)  # fmt: skip
    assert set(pair["level"]) == {"loss"}
    # a target but no loss given: output level, not a guessed loss
    assert set(attribute(model, [b], GROUPS, optimize=False)["level"]) == {"output"}
    # the same images without a target (dict, plain tensor): output level
    without = attribute(model, [_without_target(b)], GROUPS, optimize=False)
    assert set(without["level"]) == {"output"}
    ref = attribute(model, [_without_target(b)], GROUPS, levels="output", optimize=False)
    pd.testing.assert_frame_equal(without, ref)
    plain = attribute(model, [make_x(2)], GROUPS, optimize=False)
    assert set(plain["level"]) == {"output"}
    assert (plain["method"] == "occlusion").all() and plain["value"].notna().all()


def test_an_engine_with_the_default_level_resolves_on_its_first_batch() -> None:
    model = tiny_unet()
    b = batch(3)
    eng = OcclusionEngine(model, GROUPS, optimize=False, loss_fn=masked_mse)
    assert eng.options.levels == ("auto",)
    rows = attribute(model, [b], GROUPS, engine=eng)
    assert set(rows["level"]) == {"loss"} and eng.options.levels == ("loss",)
    # resolved per batch, not pinned by the first: a batch without a target gets output level
    rows = attribute(model, [_without_target(b)], GROUPS, engine=eng)
    assert set(rows["level"]) == {"output"} and eng.options.levels == ("output",)


def test_attribute_run_defaults_to_the_loss_level_on_a_split_with_targets(
    tiny_run, tmp_path
) -> None:
    scores, summary = attribute_run(
        tiny_run, out=tmp_path / "attr", progress=False, figure=False, strategies="zeros"
    )
    occ = scores[scores["method"] == "occlusion"]
    assert set(occ["level"]) == {"loss"} and occ["value"].notna().all()
    assert set(summary["level"]) == {"loss"}


# ============================================================================ the paper's protocol
def test_paper_options_are_the_papers_protocol() -> None:
    o = paper_options()
    assert o.levels == ("embedding",)
    assert o.strategies == ("zeros", "ones", "uniform", "gaussian") == paper_strategies()
    assert o.distances == ("euclidean",)
    assert o.include_all is True
    # the other fields are the defaults, or what is given
    assert o.replace(strategies=("mean",), levels=(AUTO_LEVEL,)) == AttributionOptions()
    assert paper_options(seed=3, draws=2).seed == 3


@pytest.mark.parametrize(
    "override",
    [
        {"levels": "output"},
        {"levels": ("embedding",)},  # fixed even where it repeats the protocol
        {"strategies": "mean"},
        {"distances": "cosine"},
        {"include_all": False},
    ],
)
def test_paper_options_refuse_an_override_of_the_protocol(override: dict) -> None:
    with pytest.raises(SpecError, match="paper") as err:
        paper_options(**override)
    assert next(iter(override)) in str(err.value) and "\n" not in str(err.value)


# ============================================================================ the CLI's defaults
def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings}


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


#: the ``attribute`` options' flags and the AttributionOptions fields they set (their dests)
OPTION_FIELDS = {
    "--strategy": "strategies",
    "--distance": "distances",
    "--level": "levels",
    "--draws": "draws",
    "--seed": "seed",
    "--precision": "precision",
    "--tolerance": "tolerance",
}


def test_attribute_options_take_the_library_defaults() -> None:
    options = _options(_subparser("attribute"))
    default = AttributionOptions()
    for flag, field in OPTION_FIELDS.items():
        action = options[field]
        assert flag in action.option_strings
        assert action.default is None, field  # left out: the library's default applies
        assert f"default {_shown(getattr(default, field))}" in action.help, (field, action.help)
    assert "default auto" in options["levels"].help and "default mean" in options["strategies"].help
    assert "default 1" in options["draws"].help
    batch_size = inspect.signature(attribute_run).parameters["batch_size"].default
    assert options["batch_size"].default is None
    assert f"default {batch_size}" in options["batch_size"].help
    # the flags are off by default, as the library's
    assert options["shapley"].default is False and not default.shapley
    assert options["paper"].default is False
    # options named as attribute_run's parameters: left out, its signature's defaults apply
    params = inspect.signature(attribute_run).parameters
    for dest in ("split", "groups", "devices", "num_nodes", "accelerator"):
        assert options[dest].default is None, dest
        assert f"default {params[dest].default}" in options[dest].help, dest


def test_maps_options_take_the_library_defaults() -> None:
    options = _options(_subparser("maps"))
    params = inspect.signature(occlusion_maps).parameters
    for dest in ("tile", "overlap", "devices", "num_nodes", "accelerator"):
        assert options[dest].default is None, dest
        assert f"default {params[dest].default}" in options[dest].help, dest
    assert options["strategies"].default is None
    assert f"default {_shown(AttributionOptions().strategies)}" in options["strategies"].help
    for dest in ("ids", "window"):
        assert options[dest].default is None and params[dest].default is None, dest


def test_cli_attribute_passes_the_library_defaults(monkeypatch, tmp_path, capsys) -> None:
    import modalens.attribution.run as run_module

    calls: list[dict] = []

    @functools.wraps(run_module.attribute_run)  # the parser reads its signature's defaults
    def fake(run: object, **kw: object) -> tuple[pd.DataFrame, pd.DataFrame]:
        calls.append(kw)
        return pd.DataFrame(), pd.DataFrame()

    monkeypatch.setattr(run_module, "attribute_run", fake)
    assert main(["attribute", str(tmp_path), "--quiet"]) == 0
    assert calls[-1]["options"] == AttributionOptions()
    assert "batch_size" not in calls[-1]  # attribute_run's own default
    assert main(["attribute", str(tmp_path), "--quiet", "--paper", "--seed", "2"]) == 0
    assert calls[-1]["options"] == paper_options(seed=2)
    assert main(["attribute", str(tmp_path), "--quiet", "--level", "output", "--draws", "3"]) == 0
    assert calls[-1]["options"] == AttributionOptions(levels="output", draws=3)
    n = len(calls)
    capsys.readouterr()
    assert main(["attribute", str(tmp_path), "--quiet", "--paper", "--level", "output"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(calls) == n and "paper" in err and len(err.splitlines()) == 1


# ============================================================================ block order
def _scores(levels: list[str], methods: tuple[str, ...] = ("occlusion",)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method in methods:
        for level in levels:
            distance = "loss" if level == "loss" else "euclidean"
            for i in range(6):
                for group in ("s2", "s1", "viirs"):
                    rows.append(
                        {"sample_id": f"s{i}", "window": "0,0,8,8", "method": method,
                         "level": level, "distance": distance, "strategy": "zeros",
                         "group": group, "draw": 0, "value": float(rng.random())}
                    )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("levels", list(itertools.permutations(["embedding", "output", "loss"])))
def test_summary_puts_the_loss_level_first(levels: tuple[str, ...]) -> None:
    summary = summarize_scores(_scores(list(levels)), n_boot=20)
    assert list(dict.fromkeys(summary["level"])) == ["loss", "output", "embedding"]
    assert choose_block(summary)["level"] == "loss"
    # without the loss level the output level comes first and is chosen
    rest = summarize_scores(_scores([lv for lv in levels if lv != "loss"]), n_boot=20)
    assert list(dict.fromkeys(rest["level"])) == ["output", "embedding"]
    assert choose_block(rest)["level"] == "output"


def test_summary_orders_levels_within_each_method() -> None:
    scores = _scores(["embedding", "output", "loss"], methods=("shapley", "occlusion"))
    summary = summarize_scores(scores, n_boot=20)
    blocks = list(dict.fromkeys(zip(summary["method"], summary["level"], strict=True)))
    assert blocks == [
        (m, lv) for m in ("occlusion", "shapley") for lv in ("loss", "output", "embedding")
    ]
    # rows within a block keep their groups
    for _, block in summary.groupby(["method", "level"], sort=False):
        assert sorted(block["group"]) == ["s1", "s2", "viirs"]
