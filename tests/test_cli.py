"""CLI behaviour common to every command: one-line errors with exit code 2, --debug."""

from __future__ import annotations

from pathlib import Path

import pytest

from modalens.cli import main


def test_user_error_is_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path / "missing"), "--preset", "mapinwild"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("modalens: error: dataset folder not found")
    assert str(tmp_path / "missing") in lines[0]
    assert "Traceback" not in err


def test_debug_shows_traceback(tmp_path: Path, capsys) -> None:
    rc = main(["--debug", "data", "check", str(tmp_path / "missing"), "--preset", "mapinwild"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" in err


def test_debug_flag_after_command(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path / "missing"), "--preset", "mapinwild", "--debug"])
    assert rc == 2
    assert "Traceback" in capsys.readouterr().err


def test_bad_preset_option(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path), "--preset", "mapinwild", "--option", "target"])
    assert rc == 2
    assert "bad option 'target'" in capsys.readouterr().err


def test_usage_error_exit_code_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["attribute"])
    assert info.value.code == 2


def test_attribute_out_is_a_file_is_one_line_exit_2(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tiny_run
    capsys.readouterr()
    target = tmp_path / "not_a_folder.txt"
    target.write_text("x")
    rc = main(["attribute", str(run), "--out", str(target), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modalens: error:")
    assert str(target) in lines[0]
    assert "Traceback" not in err
