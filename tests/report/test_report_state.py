"""The report says what is unfinished: a run whose training stopped early, the folders it left
out and why, a folder with nothing in it; its reading never contradicts its sections."""

from __future__ import annotations

import json
import shutil
from html import unescape
from pathlib import Path

import pytest

from modalens.cli import main
from modalens.report import build_report


def write_state(run: Path, status: str, epochs: int, planned: int) -> None:
    """The ``state.json`` fit leaves in a run stopped by Ctrl-C at epoch ``epochs``."""
    state = {"status": status, "epochs": epochs, "planned": planned, "reason": "Ctrl-C"}
    (run / "state.json").write_text(json.dumps(state))


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("modalens: warning: ")]


def _section(html: str, sid: str) -> str:
    return html.split(f'id="{sid}">')[1].split("</section>")[0]


def test_an_unfinished_run_and_its_attribution_say_so(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results"
    run = folder / "run"
    shutil.copytree((results / "run").resolve(), run)
    write_state(run, "interrupted", 11, 30)
    shutil.copytree(results / "attribution", folder / "attribution")
    source = json.loads((folder / "attribution" / "source.json").read_text())
    source["run"] = str(run.resolve())
    (folder / "attribution" / "source.json").write_text(json.dumps(source))

    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    warned = _warnings(capsys.readouterr().err)
    assert len(warned) == 2 and all("interrupted at epoch 11 of 30" in w for w in warned)
    assert any(w.startswith(f"modalens: warning: report: run {run.resolve()}:") for w in warned)
    assert all("modalens fit --config" in w and "--resume" in w for w in warned)
    html = unescape((folder / "report.html").read_text())
    reading = _section(html, "reading")
    assert reading.count("Unfinished: ") == 2 and "epoch 11 of 30" in reading
    assert "Unfinished: run" in _section(html, "run-run")
    attribution = _section(html, "attribution-attribution")
    assert "Unfinished: attribution attribution was made from run" in attribution


def _half_written(folder: Path, run_dir: Path) -> None:
    """What interrupted commands leave: an attribution without summary, a run before its first
    epoch, an ablation before its first row (one run interrupted), an unreadable summary."""
    (folder / "attr" / "parts").mkdir(parents=True)
    (folder / "attr" / "source.json").write_text("{}")
    (folder / "fresh" / "checkpoints").mkdir(parents=True)
    (folder / "fresh" / "config.yaml").write_text("name: x\n")
    abl = folder / "abl"
    (abl / "runs").mkdir(parents=True)
    (abl / "ablation.json").write_text("{}")
    shutil.copytree(run_dir, abl / "runs" / "all-seed0")
    write_state(abl / "runs" / "all-seed0", "interrupted", 1, 2)
    (folder / "bad").mkdir()
    (folder / "bad" / "summary.csv").write_text("x\n1\n")


def test_a_half_written_folder_lists_what_it_left_out_and_why(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "half"
    _half_written(folder, (results / "run").resolve())
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    warned = _warnings(capsys.readouterr().err)
    left_out = {w.split("left out ")[1].split(":")[0] for w in warned if "left out" in w}
    assert left_out == {"attr", "fresh", "abl", "abl/runs/all-seed0", "bad"}
    assert any("nothing to report" in w for w in warned)
    html = unescape((folder / "report.html").read_text())
    skipped = _section(html, "skipped")
    for name, why in [
        ("attr", "an attribution without summary.csv"),
        ("fresh", "a run without a finished epoch"),
        ("abl", "an ablation without table1.csv"),
        ("abl/runs/all-seed0", "training was interrupted at epoch 1 of 2"),
        ("bad", "cannot be read"),
    ]:
        assert f">{name}<" in skipped and why in skipped, name
    assert "modalens fit --config" in skipped and "rerun the same `modalens ablate`" in skipped
    reading = _section(html, "reading")
    assert "5 folders left out of this report" in reading
    assert "holds no finished runs, attributions or validation results" in reading


def test_the_reading_of_a_folder_with_a_run_only_does_not_deny_it(
    results: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "runs"
    shutil.copytree((results / "run").resolve(), folder / "run")
    html = unescape(build_report(folder).read_text())
    assert '<section id="run-run">' in html
    reading = _section(html, "reading")
    assert "holds no runs" not in reading
    assert "the sections below show 1 run" in reading


def test_an_empty_folder_says_so_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert main(["report", str(empty), "--out", str(tmp_path / "r.html")]) == 0
    out, err = capsys.readouterr()
    assert _warnings(err) == [
        f"modalens: warning: report: nothing to report in {empty.resolve()}: no finished runs, "
        "attributions or validation results found; give the folder that holds them"
    ]
    assert "wrote" in out
    assert "Nothing to read yet" in (tmp_path / "r.html").read_text()


def test_a_finished_folder_warns_about_nothing(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(results, folder, symlinks=True)
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    assert _warnings(capsys.readouterr().err) == []
    html = (folder / "report.html").read_text()
    assert 'id="skipped"' not in html and "Unfinished" not in html
