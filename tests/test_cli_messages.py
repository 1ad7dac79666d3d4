"""Messages that say what matters: a usage error in one line, a bad value named where it came
from (the command line or the file and key), an empty config file called empty."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modalens.cli import main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_usage_error_is_one_line_with_the_help_to_see(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", "x.yaml", "--num-nodes", "x"])
    assert info.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        "modalens: error: fit: argument --num-nodes: invalid int value: 'x' "
        "(see modalens fit --help)"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "modalens: error: the following arguments are required: COMMAND "
         "(see modalens --help)"),
        (["data", "check"], "modalens: error: data check: the following arguments are required: "
         "root (see modalens data check --help)"),
    ],
)  # fmt: skip
def test_usage_errors_of_groups_and_the_main_parser(argv, expected, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert _one_line(capsys.readouterr().err) == expected


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    cfg = {"name": "x", "data": {"preset": "mapinwild", "root": None}, "train": {"epochs": 1}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_bad_command_line_value_names_the_flag_not_the_file(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path)
    rc = main(["fit", "--config", str(config), "--root", str(tmp_path), "--devices", "0"])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert "got 0" in line and "--devices on the command line" in line
    assert str(config) not in line  # the file does not hold the value


def test_a_bad_file_value_still_names_the_file_and_key(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path)
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 1\n  devices: 0"))
    rc = main(["fit", "--config", str(config), "--root", str(tmp_path)])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert f"key 'train.devices' in {config}" in line and "command line" not in line


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_config_file_is_called_empty(tmp_path: Path, text: str, capsys) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text(text)
    rc = main(["fit", "--config", str(config)])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"modalens: error: the config file is empty ({config})")
    assert "data" not in line.split(";")[0]  # not a missing key


def test_an_empty_spec_file_is_called_empty(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("")
    rc = main(["data", "check", str(tmp_path), "--config", str(spec), "-q"])
    assert rc == 2
    assert "the spec file is empty" in _one_line(capsys.readouterr().err)
