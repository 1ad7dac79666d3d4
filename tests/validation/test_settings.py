"""The ablation plan and run configs: which runs, which modalities, nothing else changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modalens.errors import SpecError
from modalens.fingerprint import differences
from modalens.validation.settings import (
    config_modalities,
    leave_one_out,
    parse_seeds,
    plan_settings,
    read_config,
    run_config,
)

FOUR = ["s2", "s1", "esa_wc", "viirs"]


def test_four_modalities_make_nine_settings() -> None:
    settings = plan_settings(FOUR)
    assert [s.name for s in settings] == [
        "all",
        "single-s2",
        "single-s1",
        "single-esa_wc",
        "single-viirs",
        "leaveout-s2",
        "leaveout-s1",
        "leaveout-esa_wc",
        "leaveout-viirs",
    ]
    by_name = {s.name: s for s in settings}
    assert by_name["all"].use == tuple(FOUR)
    assert by_name["single-s1"].use == ("s1",)
    assert by_name["leaveout-s1"].use == ("s2", "esa_wc", "viirs")
    assert by_name["leaveout-s1"].label == "s1 left out"
    assert by_name["single-s1"].run_name(3) == "single-s1-seed3"
    assert leave_one_out(settings, "s1") is by_name["leaveout-s1"]


def test_two_modalities_reuse_single_runs_for_leave_one_out() -> None:
    settings = plan_settings(["s2", "s1"])
    assert [s.name for s in settings] == ["all", "single-s2", "single-s1"]
    assert leave_one_out(settings, "s2").name == "single-s1"
    assert leave_one_out(settings, "s1").name == "single-s2"


def test_one_modality_is_just_the_one_run() -> None:
    settings = plan_settings(["s2"])
    assert [s.name for s in settings] == ["all"]
    assert leave_one_out(settings, "s2") is None


def test_repeated_modality_is_refused() -> None:
    with pytest.raises(SpecError, match="repeat"):
        plan_settings(["s2", "s2"])


def test_seeds_parse_and_errors() -> None:
    assert parse_seeds("0, 1,2") == (0, 1, 2)
    assert parse_seeds([2, 2, 1]) == (2, 1)
    assert parse_seeds(5) == (5,)
    for bad in ("0,x", "-1", "", [True]):
        with pytest.raises(SpecError) as info:
            parse_seeds(bad)
        assert "\n" not in str(info.value) and "--seeds" in str(info.value)


def test_run_config_changes_only_use_drop_and_seed(base_config: dict) -> None:
    settings = plan_settings(FOUR)
    base = {**base_config, "drop": ["viirs"]}
    for setting in settings:
        cfg = run_config(base, setting, 7)
        diff = {key for key, _, _ in differences(base, cfg)}
        assert diff <= {"use", "drop", "train.seed"}
        assert cfg["use"] == list(setting.use) and cfg["drop"] is None
        assert cfg["train"]["seed"] == 7
    assert "seed" not in base["train"]  # the base config is not modified


def test_read_config_makes_paths_absolute(tmp_path: Path, tiny_data: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    rel = Path("..") / ".." / tiny_data.relative_to(tiny_data.parents[1])
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"preset": "mapinwild", "root": str(rel)}}))
    cfg, source = read_config(path)
    assert source == str(path)
    assert Path(cfg["data"]["root"]) == (folder / rel).resolve()
    over, _ = read_config(path, {"data": {"root": str(tiny_data)}, "use": ["s2", "s1"]})
    assert over["data"]["root"] == str(tiny_data) and over["use"] == ["s2", "s1"]


def test_config_modalities_follow_use_and_drop(base_config: dict) -> None:
    assert config_modalities(base_config) == FOUR
    assert config_modalities({**base_config, "drop": ["viirs"]}) == ["s2", "s1", "esa_wc"]
    assert config_modalities({**base_config, "use": "s1"}) == ["s1"]
    with pytest.raises(SpecError, match="radar"):
        config_modalities({**base_config, "use": ["radar"]})
    with pytest.raises(SpecError, match="--root"):
        config_modalities({**base_config, "data": {"preset": "mapinwild", "root": None}})


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="config file not found"):
        read_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(SpecError) as info:
        read_config(broken)
    assert "YAML" in str(info.value) and "\n" not in str(info.value)
