"""Atomic writes: file modes follow the umask; permission and disk-space failures become
one-line OutputErrors naming the path; nothing half-written is left."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from modalens import errors
from modalens.errors import OutputError, output_error
from modalens.io import atomic_path, atomic_write_text, make_folder, require_free_space


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _text(path: Path) -> None:
    atomic_write_text(path, "x")


def _parquet(path: Path) -> None:
    from modalens.attribution.store import write_parquet

    write_parquet(pd.DataFrame({"a": [1]}), path)


def _geotiff(path: Path) -> None:
    from rasterio.transform import from_origin

    from modalens.data.rasters import write_geotiff

    write_geotiff(path, np.zeros((1, 4, 4), np.float32), "EPSG:32633", from_origin(0, 4, 1, 1))


def _checkpoint(path: Path) -> None:
    from modalens.training.callbacks import atomic_checkpoint_io

    atomic_checkpoint_io().save_checkpoint({"w": torch.zeros(2)}, path)


def _figure(path: Path) -> None:
    from modalens.plotting import pyplot, save_figures

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figures(fig, path)
    plt.close(fig)


WRITERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "text": (_text, "a.txt"),
    "parquet": (_parquet, "a.parquet"),
    "geotiff": (_geotiff, "a.tif"),
    "checkpoint": (_checkpoint, "last.ckpt"),
    "figure": (_figure, "a.png"),
}


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_files_get_the_mode_open_would_give(tmp_path: Path, kind: str, mask: int, mode: int):
    write, name = WRITERS[kind]
    with umask(mask):
        write(tmp_path / name)
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _raise_on_replace(code: int) -> Callable[..., None]:
    def replace(src: object, dst: object, *a: object, **k: object) -> None:
        raise OSError(code, os.strerror(code), str(src))

    return replace


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS])
def test_write_failure_is_one_line_naming_the_target(tmp_path, monkeypatch, code):
    target = tmp_path / "out" / "summary.csv"
    atomic_write_text(target, "old\n")
    monkeypatch.setattr(os, "replace", _raise_on_replace(code))
    with pytest.raises(OutputError) as info:
        atomic_write_text(target, "new\n")
    msg = str(info.value)
    assert "\n" not in msg and str(target) in msg
    assert ("disk is full" in msg) == (code in (errno.ENOSPC, errno.EDQUOT))
    assert "--out" in msg
    monkeypatch.undo()
    assert target.read_text() == "old\n"  # the earlier file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.csv"]  # no temp left


def test_torch_save_disk_full_is_an_output_error(tmp_path, monkeypatch):
    from modalens.training import callbacks

    def full(obj: object, f: object) -> None:
        Path(f).write_bytes(b"half")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0; "
            "PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(callbacks.torch, "save", full)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    with pytest.raises(OutputError, match="disk is full") as info:
        _checkpoint(tmp_path / "last.ckpt")
    assert str(tmp_path / "last.ckpt") in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no half-written checkpoint under any name


def test_write_failed_is_a_full_disk_only_when_the_disk_is_nearly_full(tmp_path, monkeypatch):
    class RasterioLike(OSError):  # rasterio.errors.RasterioIOError, errno unset
        pass

    try:
        try:
            raise RuntimeError("TIFFAppendToStrip:Write error at scanline 512")
        except RuntimeError as gdal:
            raise RasterioLike("Write failed. See previous exception for details.") from gdal
    except OSError as caught:
        exc = caught
    assert output_error(exc, tmp_path / "a.tif") is None  # plenty of space: not a full disk
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage._replace(free=0))
    err = output_error(exc, tmp_path / "a.tif")
    assert err is not None and "disk is full, 0 MiB free" in str(err)
    assert str(tmp_path / "a.tif") in str(err)


def test_unrelated_errors_pass_unchanged(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "a.txt"):
        raise ValueError("a bug, not a full disk")
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "a.txt"):
        raise FileNotFoundError(errno.ENOENT, "missing", "x")
    assert output_error(RuntimeError("shape mismatch")) is None
    assert output_error(OSError(errno.ENOENT, "missing")) is None


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="no permission to write") as info:
            atomic_write_text(folder / "a.txt", "x")
        assert str(folder / "a.txt") in str(info.value)
        with pytest.raises(OutputError, match="no permission"):
            make_folder(folder / "sub")
    finally:
        folder.chmod(0o700)


def test_make_folder_translates_permission_errors(tmp_path, monkeypatch):
    def denied(self: Path, *a: object, **k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(OutputError, match="no permission to write") as info:
        make_folder(tmp_path / "new")
    assert str(tmp_path / "new") in str(info.value)


def test_require_free_space(tmp_path: Path) -> None:
    require_free_space(tmp_path / "not" / "yet", 1024)  # plenty
    with pytest.raises(OutputError, match="not enough free space for 12 samples") as info:
        require_free_space(tmp_path / "data", 2**70, "12 samples")
    assert str(tmp_path / "data") in str(info.value)


def test_one_table_writer_writes_csv_and_markdown_beside_it(tmp_path: Path) -> None:
    from modalens.io import atomic_write_table, pipe_table

    frame = pd.DataFrame({"setting": ["all", "s2 only"], "mae": [0.07, 0.1]})
    md = "\n".join(pipe_table(["setting", "MAE"], [["all", "0.07"], ["s2 only", "0.1"]])) + "\n"
    written = atomic_write_table(tmp_path / "t.csv", frame, md)
    assert written == [tmp_path / "t.csv", tmp_path / "t.md"]
    assert (tmp_path / "t.csv").read_text() == "setting,mae\nall,0.07\ns2 only,0.1\n"
    assert (tmp_path / "t.md").read_text() == (
        "| setting | MAE |\n|---|---|\n| all | 0.07 |\n| s2 only | 0.1 |\n"
    )
    assert atomic_write_table(tmp_path / "u.csv", frame) == [tmp_path / "u.csv"]
    assert not (tmp_path / "u.md").exists()


def test_pipe_table_alignment_must_match_the_columns() -> None:
    from modalens.io import pipe_table

    assert pipe_table(["a", "b"], [], ["---", "---:"]) == ["| a | b |", "|---|---:|"]
    with pytest.raises(ValueError, match="1 alignments for 2 columns"):
        pipe_table(["a", "b"], [], ["---"])
