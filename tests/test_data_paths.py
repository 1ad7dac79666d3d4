"""Where data is found: a root given on the command line is relative to the working directory,
``fit --preset`` trains without a config, and a run whose data moved is pointed at it with
``--data`` (a one-line error naming it otherwise)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import write_mapinwild

from modalens.cli import main
from modalens.data.specfile import resolve_spec
from modalens.training.config import PRESET_DEFAULT_CONFIG, config_for_preset


def test_relative_root_with_config_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    write_mapinwild(tmp_path / "data", n=4, size=16, splits=(2, 1, 1))
    (tmp_path / "data" / "spec.yaml").write_text("preset: mapinwild\nroot: .\n")
    monkeypatch.chdir(tmp_path)
    spec = resolve_spec("data", config="data/spec.yaml")
    assert spec.root == tmp_path / "data"  # not data/data
    assert main(["data", "check", "data", "--config", "data/spec.yaml", "-q"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["data", "check", "../data", "--config", "../data/spec.yaml", "-q"]) == 0
    # the spec file's own root stays relative to the spec file
    assert resolve_spec(None, config="../data/spec.yaml").root == tmp_path / "data"


def test_fit_preset_root_trains_one_epoch_without_a_config(
    tmp_path: Path, monkeypatch, capsys, one_torch_thread
) -> None:
    write_mapinwild(tmp_path / "mapinwild", n=6, size=64, splits=(4, 1, 1))
    monkeypatch.chdir(tmp_path)
    argv = ["fit", "--preset", "mapinwild", "--root", "mapinwild", "--epochs", "1", "-q"]
    argv += ["--base-width", "2", "--option", "crop_size=32", "--option", "stats=published"]
    assert main([*argv, "--out", "run"]) == 0
    assert "run folder: run" in capsys.readouterr().out
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["data"] == {
        "preset": "mapinwild",
        "root": str(tmp_path / "mapinwild"),
        "preset_options": {
            "s2_folder": "s2_temporal_subset",  # the packaged configs/mapinwild.yaml's
            "target": "auto",
            "crop_size": 32,
            "stats": "published",
        },
    }
    assert (cfg["train"]["epochs"], cfg["train"]["crop_size"], cfg["model"]["base_width"]) == (
        1,
        32,
        2,
    )
    assert cfg["train"]["patience"] == 40  # the rest from configs/mapinwild.yaml
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()


def test_config_for_a_preset_without_a_packaged_config(monkeypatch) -> None:
    from modalens.data.presets import registry

    monkeypatch.setitem(registry.PRESETS, "toy", registry.PRESETS["mapinwild"])
    cfg = config_for_preset("toy", "/data/toy", {"target": "mask"})
    assert cfg == {
        **PRESET_DEFAULT_CONFIG,
        "name": "toy",
        "data": {"preset": "toy", "root": "/data/toy", "preset_options": {"target": "mask"}},
    }


def test_fit_preset_and_config_are_exclusive_and_options_need_a_preset(capsys) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["fit", "--preset", "mapinwild", "--config", "x.yaml"])
    assert usage.value.code == 2
    assert "argument --config: not allowed with argument --preset" in capsys.readouterr().err
    assert main(["fit", "--preset", "mapinwild"]) == 2
    assert "--preset needs the dataset folder (--root)" in capsys.readouterr().err
    assert main(["fit", "--config", "x.yaml", "--option", "target=mask"]) == 2
    assert "--option goes with --preset" in capsys.readouterr().err


@pytest.fixture
def moved_run(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``tiny_run`` whose data moved: (run folder, where the data is now)."""
    run = shutil.copytree(tiny_run, tmp_path / "run")
    spec = yaml.safe_load((run / "dataset.yaml").read_text())
    new = shutil.copytree(spec["root"], tmp_path / "moved" / "data")
    spec["root"] = str(tmp_path / "old" / "data")  # where it was: gone
    (run / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return run, new


def test_commands_on_a_run_whose_data_moved_name_data_and_work_with_it(
    moved_run: tuple[Path, Path], tmp_path: Path, capsys, one_torch_thread
) -> None:
    run, new = moved_run
    sid = _first_id(new)
    commands = {
        "test": ["test", str(run)],
        "attribute": ["attribute", str(run), "--strategy", "mean", "--out", str(tmp_path / "a")],
        "views": ["views", str(run), "--ids", sid, "--out", str(tmp_path / "v")],
    }
    for name, argv in commands.items():
        assert main([*argv, "-q"]) == 2, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, name
        assert f"the run's data folder {tmp_path / 'old' / 'data'} is missing" in err, name
        assert "pass --data NEW_ROOT" in err, name
        assert "split file" not in err and "80/10/10" not in err, name
    for name, argv in commands.items():
        assert main([*argv, "--data", str(new), "-q"]) == 0, name
    out = capsys.readouterr().out
    assert "mae" in out  # test printed its metrics
    assert (tmp_path / "a" / "summary.csv").exists()
    assert (tmp_path / "v" / "views" / "index.csv").exists()


def _first_id(root: Path) -> str:
    rows = [r.split(",") for r in (root / "split_IDs.csv").read_text().splitlines()]
    return rows[1][rows[0].index("test")].strip()


def test_strategies_and_stratify_keep_root_as_a_hidden_alias_of_data() -> None:
    from modalens.cli import build_parser

    parser = build_parser()
    for argv in (["strategies", "A"], ["stratify", "A", "--by", "dominant:s2"]):
        assert parser.parse_args([*argv, "--data", "new"]).data_root == "new"
        assert parser.parse_args([*argv, "--root", "old"]).data_root == "old"
    sub = next(a for a in parser._actions if a.dest == "command").choices["strategies"]
    assert "--root" not in sub.format_help() and "--data" in sub.format_help()
