"""A run folder records what trained it (``provenance.json``): resuming it with other data or
another modalens is refused, at another torch thread count it warns and keeps both counts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from helpers import tiny_config, write_mapinwild

from modalens.errors import SpecError
from modalens.training import fit
from modalens.training.runfolder import RunFolder


def _warned(caplog: pytest.LogCaptureFixture) -> str:
    """The ``modalens`` warning lines logged so far."""
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.fixture
def half_run(tmp_path: Path) -> tuple[Path, Path]:
    """``(data root, run folder)``: one epoch of two trained, at one torch thread."""
    root = write_mapinwild(tmp_path / "data", n=6, splits=(4, 1, 1))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = fit(tiny_config(root, epochs=1), out=tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(before)
    return root, run


def test_the_run_records_version_threads_and_data(half_run: tuple[Path, Path]) -> None:
    _, run = half_run
    saved = json.loads(RunFolder(run).provenance.read_text())
    assert saved["threads"] == 1 and saved["version"]
    assert saved["data"]["n"] == 6 and set(saved["data"]["files"]) >= {"s2", "s1", "target"}


def test_resume_at_another_thread_count_warns(half_run: tuple[Path, Path], caplog) -> None:
    root, run = half_run
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with caplog.at_level(logging.WARNING, logger="modalens"):
            fit(tiny_config(root, epochs=2), out=run, progress=False, resume=True)
    finally:
        torch.set_num_threads(before)
    assert f"the run {run}: made with 1 torch thread(s), this call uses 2" in _warned(caplog)
    saved = json.loads(RunFolder(run).provenance.read_text())
    assert saved["threads"] == 2 and saved["earlier_threads"] == [1]


def test_resume_after_the_data_changed_is_refused(half_run: tuple[Path, Path]) -> None:
    root, run = half_run
    path = next((root / "s1").glob("*.tif"))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(SpecError, match=r"cannot resume.*provenance\.data\.files\.s1"):
        fit(tiny_config(root, epochs=2), out=run, progress=False, resume=True)
