"""Model-parameter randomisation check: trained and randomised rankings differ for a model that
learned which group matters, a ranking fixed by a non-learned layer is flagged, the
re-initialisation is seeded and leaves the model and the global random state alone, and
``attribute --sanity`` writes sanity.csv that the report shows."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import tiny_unet
from torch import nn

from modalens.cli import build_parser, main
from modalens.errors import SpecError
from modalens.validation.sanity import (
    NOT_THE_MODEL,
    SANITY_COLUMNS,
    cascade,
    chance,
    describe_sanity,
    randomisation_check,
    randomised,
    reinitialise,
    sanity_check,
)

GROUPS = {"a": [0, 1, 2, 3], "b": [4, 5, 6], "c": [7]}
#: what the "trained" weights say: c matters, b a little, a hardly
TRAINED = [0.001] * 4 + [0.01] * 3 + [10.0]
OPTIONS = {"strategies": "zeros", "levels": "output", "include_all": False}


class Weighted(nn.Module):
    """``head(stem(x))``: a 1x1 convolution weighting the 8 channels, then a 1x1 scale."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(8, 1, 1, bias=False)
        self.head = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.stem.weight.copy_(torch.tensor(TRAINED).view(1, 8, 1, 1))
            self.head.weight.fill_(1.0)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x))


class FixedStem(nn.Module):
    """The same channel weighting as a fixed buffer: nothing to learn, nothing to re-initialise."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor(TRAINED).view(1, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(1, keepdim=True)


class Fixed(Weighted):
    def __init__(self) -> None:
        super().__init__()
        self.stem = FixedStem()


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randn(4, 8, 6, 6, generator=g), torch.randn(4, 8, 6, 6, generator=g)]


def _row(table: pd.DataFrame, randomised_as: str, modules: str | None = None) -> pd.Series:
    rows = table[table["randomised"] == randomised_as]
    if modules is not None:
        rows = rows[rows["modules"] == modules]
    (index,) = rows.index
    return table.loc[index]


def test_a_learned_ranking_does_not_survive_randomisation() -> None:
    table = randomisation_check(Weighted(), _batches(), GROUPS, **OPTIONS)
    assert list(table.columns) == SANITY_COLUMNS
    assert list(table["randomised"]) == ["none", "cascade", "cascade", "all"]
    assert list(table["modules"]) == ["", "head", "head+stem", "head+stem"]
    assert _row(table, "none")["ranking"] == "c > b > a"
    # a head that only rescales the output cannot change the ranking
    head = _row(table, "cascade", "head")
    assert head["rho"] == pytest.approx(1.0) and head["ranking"] == "c > b > a"
    full = _row(table, "all")
    assert full["ranking"] != "c > b > a" and not full["ranking"].startswith("c")
    assert full["rho"] < 0 and full["rho_samples"] < 0.5 and not full["flagged"]
    assert full["n"] == 8
    assert not table["flagged"].any()
    (reading,) = describe_sanity(table)
    assert "depends on the learned weights" in reading and "head+stem" in reading


def test_a_ranking_fixed_by_a_layer_without_weights_is_flagged() -> None:
    model = Fixed()
    assert cascade(model) == ["head", "stem"]  # the buffer-only stem is listed, not changed
    table = randomisation_check(model, _batches(), GROUPS, **OPTIONS)
    full = _row(table, "all")
    assert full["rho"] == pytest.approx(1.0) and full["flagged"]
    assert full["p_chance"] == pytest.approx(1 / 6)  # 3 groups: 1 of 6 orderings
    (reading,) = describe_sanity(table)
    assert reading.startswith("Flag") and NOT_THE_MODEL in reading


def _conv(module: nn.Module) -> torch.Tensor:
    return next(m.weight for m in module.modules() if isinstance(m, nn.Conv2d))


def test_reinitialisation_is_seeded_cumulative_and_leaves_everything_else_alone() -> None:
    model = tiny_unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    names = cascade(model)
    assert names == ["head", "ups", "downs", "stem"]
    one = randomised(model, names[:1], seed=0, stream="cascade")
    two = randomised(model, names[:2], seed=0, stream="cascade")
    assert torch.equal(one.head.weight, two.head.weight)  # step 2 keeps step 1's head
    assert not torch.equal(one.head.weight, model.head.weight)
    assert torch.equal(_conv(one.ups), _conv(model.ups))
    assert not torch.equal(_conv(two.ups), _conv(model.ups))
    again = randomised(model, names, seed=0, stream="all")
    other = randomised(model, names, seed=1, stream="all")
    same = randomised(model, names, seed=0, stream="all").state_dict()
    assert all(torch.equal(v, same[k]) for k, v in again.state_dict().items())
    assert not torch.equal(_conv(other.stem), _conv(again.stem))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(SpecError, match="no child module 'encoder'"):
        randomised(model, ["encoder"], seed=0, stream="all")


def test_reinitialise_resets_normalisation_and_draws_pytorch_default_ranges() -> None:
    model = tiny_unet()  # BatchNorm statistics randomised
    reinitialise(model, torch.Generator().manual_seed(0))
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    conv = model.head
    bound = 1 / (conv.weight.shape[1] * conv.weight[0][0].numel()) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.bias.abs().max() <= bound
    assert conv.weight.std() > bound / 4  # drawn, not constant


def test_the_check_is_deterministic() -> None:
    first = randomisation_check(Weighted(), _batches(), GROUPS, **OPTIONS, seed=5)
    second = randomisation_check(Weighted(), _batches(), GROUPS, **OPTIONS, seed=5)
    pd.testing.assert_frame_equal(first, second)


def test_chance_counts_the_orderings_at_least_as_close() -> None:
    reference = [4.0, 3.0, 2.0, 1.0]
    assert chance(reference, 1.0) == pytest.approx(1 / 24)
    assert chance(reference, 0.8) == pytest.approx(4 / 24)  # identity + 3 adjacent swaps
    assert chance(reference, -1.0) == pytest.approx(1.0)


def test_attribute_sanity_writes_the_table_and_the_report_shows_it(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    out = tmp_path / "attr"
    argv = ["-q", "attribute", str(run), "--split", "train", "--strategy", "zeros", "--out"]
    assert main([*argv, str(out), "--level", "output", "--sanity", "--sanity-samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "model-parameter randomisation check (2 samples" in printed
    table = pd.read_csv(out / "sanity.csv")
    assert list(table["randomised"]) == ["none", "cascade", "cascade", "cascade", "cascade", "all"]
    assert set(table["n"]) == {2} and table["rho"].iloc[1:].notna().all()
    assert main(["-q", "report", str(out), "--out", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "Model-parameter randomisation check (sanity.csv)" in html
    assert ("depends on the learned weights" in html) or (NOT_THE_MODEL in html)
    with pytest.raises(SpecError, match="at least one sample"):
        sanity_check(run, samples=0)


def test_cli_and_python_default_sample_counts_agree() -> None:
    parser = build_parser(["attribute"])
    args = parser.parse_args(["attribute", "RUN"])
    assert args.sanity is False
    assert args.samples is None  # --sanity-samples left out: sanity_check's default applies
    default = inspect.signature(sanity_check).parameters["samples"].default
    action = next(a for a in parser._subparsers._group_actions[0].choices["attribute"]._actions
                  if "--sanity-samples" in a.option_strings)  # fmt: skip
    assert f"default {default}" in action.help
