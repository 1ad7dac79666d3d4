"""An ablation records what made it: the all-modality run is the one ``fit`` trains at the same
thread count; a rerun at another count says so (and re-measures the timings); another modalens
version is refused."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from modalens.errors import SpecError
from modalens.training import fit
from modalens.validation import AblationResult, ablate


def _warned(caplog: pytest.LogCaptureFixture) -> str:
    """The ``modalens`` warning lines logged so far."""
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_the_all_modality_run_is_fits_run(
    ablation: AblationResult, base_config: dict, tmp_path: Path
) -> None:
    run = fit(base_config, out=tmp_path / "fit", progress=False)  # one thread, as the ablation
    mine = torch.load(run / "checkpoints/best.ckpt", map_location="cpu", weights_only=True)
    theirs = ablation.run_dir("all") / "checkpoints/best.ckpt"
    other = torch.load(theirs, map_location="cpu", weights_only=True)
    for key, value in mine["state_dict"].items():
        assert torch.equal(value, other["state_dict"][key]), key
    assert json.loads((run / "provenance.json").read_text())["threads"] == 1
    saved = json.loads((ablation.run_dir("all") / "provenance.json").read_text())
    assert saved["threads"] == 1


def test_a_rerun_at_another_thread_count_says_so(
    ablation: AblationResult, base_config: dict, tmp_path: Path, caplog
) -> None:
    out = Path(shutil.copytree(ablation.out, tmp_path / "abl"))
    assert json.loads((out / "ablation.json").read_text())["provenance"]["threads"] == 1
    torch.set_num_threads(2)  # the autouse fixture restores it
    with caplog.at_level(logging.WARNING, logger="modalens"):
        result = ablate(base_config, out, seeds=(0,), progress=False)
    said = _warned(caplog)
    assert f"the ablation {out}: made with 1 torch thread(s), this call uses 2" in said
    assert "runs/all-seed0: made with 1 torch thread(s)" in said  # each run it reuses too
    assert result.statuses == {"skipped": 9}
    record = json.loads((out / "ablation.json").read_text())["provenance"]
    assert record["threads"] == 2 and record["earlier_threads"] == [1]
    row = json.loads((out / "rows" / "all-seed0.json").read_text())
    assert row["provenance"]["threads"] == 2  # timed again at this count


def test_another_version_is_refused(
    ablation: AblationResult, base_config: dict, tmp_path: Path, monkeypatch
) -> None:
    out = Path(shutil.copytree(ablation.out, tmp_path / "abl"))
    monkeypatch.setattr("modalens.fingerprint.package_version", lambda: "99.0")
    with pytest.raises(SpecError, match=r"another modalens: 'provenance\.version' is '99\.0'"):
        ablate(base_config, out, seeds=(0,), progress=False)
