"""Options every preset takes (allow_leakage, split, split_seed, crop_size), ``--option`` strings
converted to the preset's types, and one-line errors naming the preset's options."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from modalens.cli import main
from modalens.data.leakage import check_leakage
from modalens.data.presets import get_preset, preset_options
from modalens.data.samples import sample_ids
from modalens.data.specfile import load_spec, resolve_spec
from modalens.errors import DataError, SpecError

MAPINWILD_OPTIONS = (
    "allow_leakage, crop_size, s1_folder, s2_folder, split, split_seed, stats, target"
)


def _leak(root: Path) -> str:
    """Put the first train id into the test column of ``root``'s split file too; that id."""
    table = pd.read_csv(root / "split_IDs.csv", dtype=str)
    leaked = table["train"][0]
    table.loc[table["test"].last_valid_index() + 1, "test"] = leaked
    table.to_csv(root / "split_IDs.csv", index=False)
    return str(int(float(leaked)))  # the file holds NaN-padded columns: "1.0"


def test_every_preset_lists_the_generic_options() -> None:
    assert ", ".join(preset_options("mapinwild")) == MAPINWILD_OPTIONS
    assert preset_options("mapinwild")["allow_leakage"] is bool
    assert {"allow_leakage", "split", "split_seed", "crop_size"} <= set(
        preset_options("bigearthnet")
    )


def test_allow_leakage_option_is_accepted_and_lets_fit_train(mapinwild_root: Path, capsys) -> None:
    leaked = _leak(mapinwild_root)
    with pytest.raises(DataError, match="--option allow_leakage=true") as err:
        check_leakage(resolve_spec(mapinwild_root, preset="mapinwild"))
    assert repr(leaked) in str(err.value)
    spec = resolve_spec(mapinwild_root, preset="mapinwild", options={"allow_leakage": "true"})
    assert spec.split.allow_leakage is True
    assert check_leakage(spec).leaked  # reported, no longer refused
    assert (
        resolve_spec(mapinwild_root, options={"allow_leakage": "false"}).split.allow_leakage
        is False
    )
    argv = ["data", "check", str(mapinwild_root), "--preset", "mapinwild", "-q"]
    assert main([*argv, "--option", "allow_leakage=true"]) == 0
    assert "unexpected keyword" not in capsys.readouterr().err


def test_split_random_splits_80_10_10_by_split_seed(mapinwild_root: Path) -> None:
    official = sample_ids(get_preset("mapinwild", mapinwild_root))
    assert [len(official[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    spec = get_preset("mapinwild", mapinwild_root, split="random")
    assert spec.split.file is None
    ids = sample_ids(spec)
    assert [len(ids[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    other = sample_ids(get_preset("mapinwild", mapinwild_root, split="random", split_seed="5"))
    assert sorted(sum(other.values(), [])) == sorted(sum(ids.values(), []))
    assert other != ids  # another seed, another split
    assert sample_ids(get_preset("mapinwild", mapinwild_root, split="official")) == official


def test_crop_size_and_typed_options_from_strings() -> None:
    spec = get_preset("mapinwild", "/data", crop_size="64", stats="published")
    assert spec.crop_size == 64
    assert get_preset("bigearthnet", "/data", crop_size=96).crop_size == 96


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (
            "allow_leakage=maybe",
            "option 'allow_leakage' of preset 'mapinwild' must be true or false, got 'maybe'",
        ),
        (
            "crop_size=big",
            "option 'crop_size' of preset 'mapinwild' must be a whole number, got 'big'",
        ),
        ("colour=red", "preset 'mapinwild' has no option 'colour'"),
    ],
)
def test_bad_or_unknown_option_is_one_line_naming_the_options(
    mapinwild_root: Path, capsys, option: str, expected: str
) -> None:
    argv = ["data", "check", str(mapinwild_root), "--preset", "mapinwild", "--option", option]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert expected in err and MAPINWILD_OPTIONS in err
    assert "unexpected keyword" not in err


def test_split_option_takes_official_or_random_and_seed_needs_random() -> None:
    with pytest.raises(SpecError, match="must be official or random, got 'mine'"):
        get_preset("mapinwild", "/data", split="mine")
    with pytest.raises(SpecError, match="split_seed applies to a random split.*split=random"):
        get_preset("mapinwild", "/data", split_seed=3)
    with pytest.raises(SpecError, match="crop_size' of preset 'bigearthnet' must be >= 8"):
        get_preset("bigearthnet", "/data", crop_size=4)  # its own crop_size: still checked


def test_config_preset_options_take_the_generic_options_and_errors_name_the_file(
    mapinwild_root: Path, tmp_path: Path
) -> None:
    _leak(mapinwild_root)
    path = tmp_path / "spec.yaml"
    data = {"preset": "mapinwild", "root": str(mapinwild_root)}
    path.write_text(yaml.safe_dump({**data, "preset_options": {"allow_leakage": True}}))
    check_leakage(load_spec(path))  # allowed: no error
    path.write_text(yaml.safe_dump({**data, "preset_options": {"split": 3}}))
    with pytest.raises(
        SpecError, match=f"must be official or random.*key 'preset_options.split' in {path}"
    ):
        load_spec(path)
