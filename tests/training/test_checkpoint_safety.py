"""Checkpoints are loaded without running code from them: a pickled payload is refused in one
line and never runs; the project's own checkpoints need no type beyond torch's allow-list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from modalens.cli import main
from modalens.errors import ModelError
from modalens.training.run import load_run, read_checkpoint


def _write_marker(path: str) -> None:
    """What the payload does when unpickled: writes a file."""
    Path(path).write_text("the payload ran")


class Payload:
    """An object whose unpickling calls :func:`_write_marker` (as a malicious file would)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_write_marker, (self.marker,))


def test_the_project_checkpoints_need_no_extra_types(tiny_run: Path) -> None:
    for name in ("best.ckpt", "last.ckpt"):
        path = tiny_run / "checkpoints" / name
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
        assert "state_dict" in read_checkpoint(path)


def test_a_checkpoint_carrying_a_payload_is_refused_and_never_runs(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    marker = tmp_path / "payload-ran"
    ckpt = read_checkpoint(run / "checkpoints" / "best.ckpt")
    ckpt["callbacks"]["innocent-looking"] = Payload(marker)  # otherwise a valid checkpoint
    bad = run / "checkpoints" / "best.ckpt"
    torch.save(ckpt, bad)
    # the payload is real: an unrestricted load would run it
    torch.load(bad, map_location="cpu", weights_only=False)
    assert marker.read_text() == "the payload ran"
    marker.unlink()

    with pytest.raises(ModelError) as info:
        load_run(run)
    message = str(info.value)
    assert "holds objects that are not allowed" in message
    assert f"{__name__}._write_marker" in message and str(bad) in message
    assert "\n" not in message
    assert main(["-q", "attribute", str(run), "--strategy", "zeros"]) == 2
    err = capsys.readouterr().err
    assert err.count("modalens: error: the checkpoint holds objects that are not allowed") == 1
    assert not marker.exists()


def test_an_old_format_checkpoint_with_a_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": {}, "x": Payload(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="not allowed .*_write_marker"):
        read_checkpoint(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_unreadable_not_disallowed(tiny_run: Path, tmp_path: Path):
    path = tmp_path / "cut.ckpt"
    path.write_bytes((tiny_run / "checkpoints" / "best.ckpt").read_bytes()[:4000])
    with pytest.raises(ModelError, match="cannot read checkpoint .*truncated"):
        read_checkpoint(path)
