"""One output-path check before any work (modalens.io.check_output): a file where a folder is
wanted, a folder where a file is, a file among the parents, a folder that may not be written
and too little free space are one line with exit code 2 for every writing command; synth never
mixes old and new files, and an interrupted synth says so and how to restart it."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import config_copy, first_test_id

from modalens.cli import main
from modalens.errors import OutputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# command -> argv(tiny_run, tmp folder, output path): the commands whose --out is a folder
FOLDER_COMMANDS: dict[str, Callable[[Path, Path, str], list[str]]] = {
    "synth": lambda r, t, o: ["synth", o, "--samples", "3", "--size", "16"],
    "fit": lambda r, t, o: ["fit", "--config", config_copy(r, t), "--out", o],
    "mtl fit": lambda r, t, o: [
        "mtl",
        "fit",
        "--config",
        config_copy(r, t, inputs=["s2"], auxiliary={"targets": ["viirs"]}),
        "--out",
        o,
    ],
    "predict": lambda r, t, o: ["predict", str(r), "--ids", first_test_id(r), "--out", o],
    "maps": lambda r, t, o: ["maps", str(r), "--ids", first_test_id(r), "--out", o],
    "views": lambda r, t, o: ["views", str(r), "--ids", first_test_id(r), "--out", o],
    "attribute": lambda r, t, o: ["attribute", str(r), "--out", o],
    "ablate": lambda r, t, o: ["ablate", "--config", config_copy(r, t), "--out", o],
    "prune": lambda r, t, o: [
        "prune",
        "--config",
        config_copy(r, t),
        "--scores",
        str(r / "attribution" / "test"),
        "--out",
        o,
    ],
    "mtl compare": lambda r, t, o: [
        "mtl",
        "compare",
        "--config",
        config_copy(r, t, inputs=["s2"], auxiliary={"targets": ["viirs"]}),
        "--out",
        o,
    ],
    "bench faithfulness": lambda r, t, o: ["bench", "faithfulness", "--out", o],
}
# the commands whose --out is a file
FILE_COMMANDS: dict[str, Callable[[Path, Path, str], list[str]]] = {
    "test": lambda r, t, o: ["test", str(r), "--out", o],
    "report": lambda r, t, o: ["report", str(r), "--out", o],
}


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    rc = main(["-q", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("modalens: error")]
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS))
def test_out_naming_a_file_is_one_line(command, tiny_run, tmp_path, capsys) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    line = _one_line_error(FOLDER_COMMANDS[command](tiny_run, tmp_path, str(target)), capsys)
    assert line.startswith("modalens: error: the output folder is a file"), line
    assert f"({target})" in line and "pass a folder path" in line
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS) + sorted(FILE_COMMANDS))
def test_out_below_a_file_is_one_line(command, tiny_run, tmp_path, capsys) -> None:
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / "a-file" / "out"
    make = {**FOLDER_COMMANDS, **FILE_COMMANDS}[command]
    line = _one_line_error(make(tiny_run, tmp_path, str(target)), capsys)
    assert line.startswith(
        f"modalens: error: cannot write below {tmp_path / 'a-file'}: it is a file"
    )
    assert f"({target})" in line


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_out_file_naming_a_folder_is_one_line(command, tiny_run, tmp_path, capsys) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()
    line = _one_line_error(FILE_COMMANDS[command](tiny_run, tmp_path, str(target)), capsys)
    assert line.startswith("modalens: error: the output file is a folder"), line
    assert f"({target})" in line and "pass a file path" in line
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("command", ["fit", "attribute", "synth"])
def test_unwritable_output_refused_before_any_work(
    command, tiny_run, tmp_path, monkeypatch, capsys
) -> None:
    """No permission is refused by the check itself (os.access), before anything is written
    (patched: the tests may run as root, whom folder permissions do not stop)."""
    target = tmp_path / "ro" / "out"
    (tmp_path / "ro").mkdir()
    argv = FOLDER_COMMANDS[command](tiny_run, tmp_path, str(target))
    from modalens import io

    monkeypatch.setattr(io.os, "access", lambda path, mode: Path(path) != tmp_path / "ro")
    line = _one_line_error(argv, capsys)
    monkeypatch.undo()
    assert line.startswith("modalens: error: cannot write: no permission to write"), line
    assert str(target) in line
    assert not target.exists()


def test_check_output_needs_free_space(tmp_path, monkeypatch) -> None:
    from modalens import io
    from modalens.io import check_output

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: usage._replace(free=2**20))
    with pytest.raises(OutputError, match="not enough free space for the checkpoints"):
        check_output(tmp_path / "run", need=2**30, what="the checkpoints")
    assert check_output(tmp_path / "run", need=2**10) == tmp_path / "run"
    assert not (tmp_path / "run").exists()  # the check creates nothing


def test_clear_folder_never_clears_root_home_or_the_current_folder(tmp_path, monkeypatch):
    from modalens.io import clear_folder, fresh_folder

    inner = tmp_path / "home" / "work"
    inner.mkdir(parents=True)
    (inner / "keep.txt").write_text("x")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for folder, what in (
        (Path("/"), "the file system's root"),
        (tmp_path / "home", "your home folder"),
        (tmp_path, "a folder that holds your home folder"),
    ):
        with pytest.raises(OutputError, match=f"refusing to clear {what}"):
            clear_folder(folder)
    monkeypatch.chdir(inner)
    with pytest.raises(OutputError, match="refusing to clear the current folder"):
        fresh_folder(inner, overwrite=True)
    assert (inner / "keep.txt").read_text() == "x"


# ------------------------------------------------------------------------------------- synth


def _synth(out: Path, samples: int, *extra: str) -> int:
    return main(["-q", "synth", str(out), "--samples", str(samples), "--size", "16", *extra])


def test_synth_refuses_a_non_empty_folder(tmp_path, capsys) -> None:
    out = tmp_path / "data"
    assert _synth(out, 6) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    line = _one_line_error(["synth", str(out), "--samples", "3", "--size", "16"], capsys)
    assert line.startswith("modalens: error: the output folder is not empty: it holds")
    assert "--overwrite" in line and f"({out})" in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing touched
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    line = _one_line_error(["synth", str(tmp_path / "mine"), "--samples", "3"], capsys)
    assert "1 entry (notes.txt)" in line


def test_synth_overwrite_replaces_the_old_dataset(tmp_path) -> None:
    """The issue's case: a dataset written over a larger one kept its stale rasters."""
    out = tmp_path / "data"
    assert _synth(out, 8) == 0
    (out / "stray.txt").write_text("x")
    assert _synth(out, 3, "--overwrite") == 0
    assert len(list((out / "NI").glob("*.tif"))) == 3
    assert not (out / "stray.txt").exists()
    assert json.loads((out / "metadata.json").read_text())["samples"] == 3
    assert not (out / "unfinished.json").exists()


def _interrupt_after(monkeypatch, scenes: int) -> None:
    generate = sys.modules["modalens.data.synthetic.generate"]
    real, calls = generate._write_scene, [0]

    def write(*a: object, **k: object) -> None:
        calls[0] += 1
        if calls[0] > scenes:
            raise KeyboardInterrupt
        real(*a, **k)

    monkeypatch.setattr(generate, "_write_scene", write)


def test_interrupted_synth_says_so_and_how_to_restart(tiny_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "data"
    _interrupt_after(monkeypatch, 2)
    assert _synth(out, 6, "--seed", "3") == 130
    monkeypatch.undo()
    assert (out / "NI").is_dir() and not (out / "metadata.json").exists()
    restart = f"modalens synth {out} --samples 6 --size 16 --seed 3"
    # reading it (data check, fit) names the interruption and the restart, not the split file
    for argv in (
        ["data", "check", str(out), "--preset", "mapinwild"],
        ["fit", "--config", config_copy(tiny_run, tmp_path), "--root", str(out), "--out",
         str(tmp_path / "run")],
    ):  # fmt: skip
        capsys.readouterr()
        assert main(["-q", *argv]) == 2
        err = capsys.readouterr()
        text = err.out + err.err
        assert "the dataset is unfinished: modalens synth was interrupted" in text
        assert restart in text and "--overwrite" in text
        assert "split file" not in text
    # rerunning without --overwrite says the same; with it the dataset is restarted
    line = _one_line_error(["synth", str(out), "--samples", "6", "--size", "16"], capsys)
    assert "holds an interrupted synthetic dataset" in line and restart in line
    assert _synth(out, 6, "--seed", "3", "--overwrite") == 0
    assert not (out / "unfinished.json").exists() and (out / "metadata.json").is_file()
    assert main(["-q", "data", "check", str(out), "--preset", "mapinwild"]) == 0


def test_synth_marks_complete_only_at_its_very_end(tmp_path, monkeypatch) -> None:
    """metadata.json is the last file written; an error writing it leaves the marker."""
    from modalens import io

    real = io.os.replace

    def replace(src: object, dst: object, *a: object, **k: object) -> None:
        if Path(str(dst)).name == "metadata.json":
            written = {p.name for p in (tmp_path / "data").iterdir()}
            assert {"split_IDs.csv", "spec.yaml", "unfinished.json"} <= written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        real(src, dst, *a, **k)

    monkeypatch.setattr(io.os, "replace", replace)
    assert _synth(tmp_path / "data", 3, "--decoy") == 2
    monkeypatch.undo()
    assert (tmp_path / "data" / "unfinished.json").is_file()
    assert not (tmp_path / "data" / "metadata.json").exists()


# -------------------------------------------------------------------- attribute, disk full


@pytest.mark.parametrize(
    "writer",
    [
        "matplotlib.figure.Figure.savefig",
        "pandas.DataFrame.to_csv",
        "pandas.DataFrame.to_parquet",
    ],
)
def test_attribute_disk_full_is_an_error(writer, tiny_run, tmp_path, monkeypatch, capsys):
    """A full disk met by the figure, the summary or the scores is exit 2 naming the file."""

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, full)
    out = tmp_path / "attr"
    line = _one_line_error(["attribute", str(tiny_run), "--out", str(out)], capsys)
    monkeypatch.undo()
    assert line.startswith("modalens: error: cannot write: the disk is full"), line
    assert str(out) in line
    assert not (out / "influence.png").exists()
