"""Attribution parts are reused only for what produced them: the checkpoint's content, the
data files, the options and the package version; another thread count warns and is recorded;
``source.json`` never names a run whose scores the folder does not hold."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from modalens.attribution.run import attribute_run, stale_note
from modalens.attribution.views import sample_views
from modalens.cli import main
from modalens.errors import ModalensError
from modalens.report import build_report
from modalens.training.run import load_run
from modalens.training.runfolder import RunFolder


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run (its checkpoint is changed below)."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def _warned(caplog: pytest.LogCaptureFixture) -> str:
    """The ``modalens`` warning lines logged so far."""
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _retrain(run_dir: Path) -> None:
    """Stand-in for ``fit --resume`` training on: other weights in ``best.ckpt``."""
    path = RunFolder(run_dir).best
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in ckpt["state_dict"].items():
        if value.is_floating_point():
            ckpt["state_dict"][key] = value + 0.05
    torch.save(ckpt, path)


def test_resume_after_the_checkpoint_changed_is_refused(run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "attr"
    assert main(["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros"]) == 0
    before = pd.read_parquet(out / "scores.parquet")
    _retrain(run)
    capsys.readouterr()
    assert main(["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "provenance.checkpoint" in err and "--overwrite" in err
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), before)  # untouched
    args = ["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros", "--overwrite"]
    assert main(args) == 0
    after = pd.read_parquet(out / "scores.parquet")
    assert not after["value"].equals(before["value"])  # scored with the new weights


def test_another_run_into_the_same_out_is_refused(run: Path, tmp_path: Path, capsys) -> None:
    other = Path(shutil.copytree(run, tmp_path / "other"))
    _retrain(other)
    out = tmp_path / "attr"
    assert main(["-q", "attribute", str(run), "--out", str(out), "--strategy", "zeros"]) == 0
    capsys.readouterr()
    assert main(["-q", "attribute", str(other), "--out", str(out), "--strategy", "zeros"]) == 2
    err = capsys.readouterr().err
    assert "provenance.checkpoint" in err and "--overwrite" in err
    source = json.loads((out / "source.json").read_text())
    assert source["run"] == str(run.resolve())  # not relabelled onto the old scores
    args = ["-q", "attribute", str(other), "--out", str(out), "--strategy", "zeros", "--overwrite"]
    assert main(args) == 0
    source = json.loads((out / "source.json").read_text())
    assert source["run"] == str(other.resolve())
    own = tmp_path / "own"
    assert main(["-q", "attribute", str(other), "--out", str(own), "--strategy", "zeros"]) == 0
    pd.testing.assert_frame_equal(  # the scores are the other run's own
        pd.read_parquet(out / "scores.parquet"), pd.read_parquet(own / "scores.parquet")
    )


def test_changed_data_files_are_refused(run: Path, tmp_path: Path) -> None:
    # a copy of the data with its times kept (the shared run's data stay untouched) is the same
    root = Path(shutil.copytree(load_run(run).spec.root, tmp_path / "data"))
    out = tmp_path / "attr"
    kw = {"strategies": ["zeros"], "progress": False, "figure": False, "data_root": root}
    attribute_run(run, out=out, **kw)
    data = json.loads((out / "parts" / "config.json").read_text())["provenance"]["data"]
    assert set(data) == {"ids", "n", "files"} and data["files"]
    # rewrite one input file of a test sample (same size, another modification time)
    loaded = load_run(run, data_root=root)
    sid = loaded.dataset("test").ids[0]
    path = Path(loaded.reader().paths(sid)["s1"][0])
    assert path.is_relative_to(root)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ModalensError, match=r"provenance\.data\.files\.s1.*--overwrite"):
        attribute_run(run, out=out, **kw)


def test_another_package_version_is_refused(run: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "attr"
    attribute_run(run, out=out, strategies=["zeros"], progress=False, figure=False)
    monkeypatch.setattr("modalens.fingerprint.package_version", lambda: "99.0")
    with pytest.raises(ModalensError, match=r"provenance\.version.*99\.0"):
        attribute_run(run, out=out, strategies=["zeros"], progress=False, figure=False)


def test_another_thread_count_warns_and_is_recorded(run: Path, tmp_path: Path, caplog) -> None:
    out = tmp_path / "attr"
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        attribute_run(run, out=out, strategies=["zeros"], progress=False, figure=False)
        cfg = json.loads((out / "parts" / "config.json").read_text())
        assert cfg["provenance"]["threads"] == 1
        torch.set_num_threads(2)
        with caplog.at_level(logging.WARNING, logger="modalens"):
            attribute_run(run, out=out, strategies=["zeros"], progress=False, figure=False)
        assert "made with 1 torch thread(s), this call uses 2" in _warned(caplog)
    finally:
        torch.set_num_threads(before)
    cfg = json.loads((out / "parts" / "config.json").read_text())
    assert cfg["provenance"]["threads"] == 2 and cfg["provenance"]["earlier_threads"] == [1]


def test_report_says_when_the_scores_are_of_an_earlier_checkpoint(
    run: Path, tmp_path: Path, caplog
) -> None:
    attribute_run(run, strategies=["zeros"], progress=False, figure=False)
    folder = RunFolder(run).attribution("test", "zeros")
    assert stale_note(folder) is None
    _retrain(run)
    assert "earlier best.ckpt" in (stale_note(folder) or "")
    page = build_report(run, tmp_path / "report.html").read_text()
    assert "These scores are of an earlier best.ckpt" in page
    sid = load_run(run).dataset("test").ids[0]
    with caplog.at_level(logging.WARNING, logger="modalens"):  # views too
        sample_views(run, folder, ids=[sid], out=tmp_path / "views", tile=32, overlap=0)
    assert "these scores are of an earlier best.ckpt" in _warned(caplog)
