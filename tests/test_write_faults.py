"""Fault injection: every command that writes turns a full disk (ENOSPC) or a folder it may not
write (EACCES) into one line naming the path, exit code 2, and leaves nothing that looks
finished. The low-level write (the rename every atomic write ends with) is patched to fail,
which also works when the tests run as root (root ignores folder permissions)."""

from __future__ import annotations

import errno
import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import config_copy, first_test_id

from modalens.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def attr_dir(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished attribution of the tiny run (zeros fill, embedding and output level)."""
    from modalens.attribution import attribute_run

    out = tmp_path_factory.mktemp("faults") / "attr"
    attribute_run(
        tiny_run, out=out, strategies=["zeros"], levels=["embedding", "output"], figure=False
    )
    return out


_config = functools.partial(config_copy, epochs=1)  # one epoch: the faults come early
_test_id = first_test_id


def _copy(src: Path, dst: Path) -> str:
    shutil.copytree(src, dst)
    return str(dst)


# command name -> argv(tiny_run, attribution folder, tmp folder); output goes below tmp
COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "synth": lambda r, a, t: ["synth", str(t / "out"), "--samples", "3", "--size", "16"],
    "fit": lambda r, a, t: ["fit", "--config", _config(r, t), "--out", str(t / "out")],
    "mtl fit": lambda r, a, t: [
        "mtl",
        "fit",
        "--config",
        _config(r, t, inputs=["s2"], auxiliary={"targets": ["viirs"]}),
        "--out",
        str(t / "out"),
    ],
    "test": lambda r, a, t: ["test", str(r), "--out", str(t / "out" / "m.csv")],
    "predict": lambda r, a, t: ["predict", str(r), "--ids", _test_id(r), "--out", str(t / "out")],
    "attribute": lambda r, a, t: ["attribute", str(r), "--out", str(t / "out")],
    "maps": lambda r, a, t: ["maps", str(r), "--ids", _test_id(r), "--out", str(t / "out")],
    "views": lambda r, a, t: ["views", str(r), "--ids", _test_id(r), "--out", str(t / "out")],
    "ablate": lambda r, a, t: ["ablate", "--config", _config(r, t), "--out", str(t / "out")],
    "prune": lambda r, a, t: [
        "prune",
        "--config",
        _config(r, t),
        "--scores",
        str(a),
        "--out",
        str(t / "out"),
    ],
    "mtl compare": lambda r, a, t: [
        "mtl",
        "compare",
        "--config",
        _config(r, t, inputs=["s2"], auxiliary={"targets": ["viirs"]}),
        "--out",
        str(t / "out"),
    ],
    "strategies": lambda r, a, t: ["strategies", _copy(a, t / "out"), "--run", str(r)],
    "stratify": lambda r, a, t: [
        "stratify",
        _copy(a, t / "out"),
        "--run",
        str(r),
        "--by",
        "dominant:esa_wc",
    ],
    "report": lambda r, a, t: ["report", str(a), "--out", str(t / "out" / "report.html")],
    "bench faithfulness": lambda r, a, t: [
        "bench",
        "faithfulness",
        "--out",
        str(t / "out"),
        "--samples",
        "6",
        "--size",
        "32",
        "--epochs",
        "1",
    ],
}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_write_fault_is_one_line(
    command, code, tiny_run, attr_dir, tmp_path, monkeypatch, capsys
) -> None:
    argv = ["-q", *COMMANDS[command](tiny_run, attr_dir, tmp_path)]
    capsys.readouterr()

    def fail(src: object, dst: object, *a: object, **k: object) -> None:
        raise OSError(code, os.strerror(code), str(src))

    monkeypatch.setattr(os, "replace", fail)
    rc = main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("modalens: error")]
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("modalens: error: cannot write"), err
    assert ("disk is full" in lines[0]) == (code == errno.ENOSPC)
    assert str(tmp_path / "out") in lines[0]  # names the output, not a temporary file
    assert ".tmp" not in lines[0]
    if command not in ("strategies", "stratify"):  # these write into a finished attribution
        left = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert not {"metadata.json", "summary.csv", "best.ckpt", "config.yaml"} & set(left), left


def _fail_after(n: int, code: int = errno.ENOSPC) -> Callable[..., None]:
    """os.replace that works ``n`` times, then fails with ``code``."""
    real, calls = os.replace, [0]

    def replace(src: object, dst: object, *a: object, **k: object) -> None:
        calls[0] += 1
        if calls[0] > n:
            raise OSError(code, os.strerror(code), str(src))
        real(src, dst, *a, **k)

    return replace


def test_test_on_a_read_only_run_prints_the_metrics(tiny_run, monkeypatch, capsys) -> None:
    monkeypatch.setattr(os, "replace", _fail_after(0, errno.EROFS))
    rc = main(["-q", "test", str(tiny_run)])
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert rc == 0
    assert out.splitlines()[1].split()[0] == "all"  # the table is printed
    assert "warning: metrics not saved: cannot write: read-only file system" in err
    assert str(tiny_run / "metrics_test.csv") in err


def test_synth_stopped_by_a_full_disk_does_not_look_complete(tmp_path, monkeypatch, capsys):
    out = tmp_path / "data"
    assert main(["-q", "synth", str(out), "--samples", "3", "--size", "16"]) == 0
    assert (out / "metadata.json").is_file() and (out / "split_IDs.csv").is_file()
    monkeypatch.setattr(os, "replace", _fail_after(7))  # a few rasters of the rerun, then full
    argv = ["-q", "synth", str(out), "--samples", "4", "--size", "16", "--overwrite"]
    assert main(argv) == 2
    monkeypatch.undo()
    assert "disk is full" in capsys.readouterr().err
    # neither the new dataset's nor the old one's completion markers are left
    assert not (out / "metadata.json").exists() and not (out / "split_IDs.csv").exists()
    assert (out / "unfinished.json").is_file()


def test_synth_checks_free_space_after_the_first_sample(tmp_path, monkeypatch, capsys):
    from modalens import io

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: usage._replace(free=2**20))
    rc = main(["-q", "synth", str(tmp_path / "data"), "--samples", "50", "--size", "64"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2
    assert "not enough free space for 50 samples" in err and str(tmp_path / "data") in err
    assert len(list((tmp_path / "data").rglob("*.tif"))) == 5  # one sample's five rasters
    assert not (tmp_path / "data" / "metadata.json").exists()


def test_fit_reruns_after_failing_at_its_first_write(tiny_run, tmp_path, monkeypatch, capsys):
    argv = ["-q", "fit", "--config", _config(tiny_run, tmp_path), "--out", str(tmp_path / "r")]
    monkeypatch.setattr(os, "replace", _fail_after(0, errno.EACCES))
    assert main(argv) == 2
    monkeypatch.undo()
    assert main(argv) == 0, capsys.readouterr().err  # no "folder is not empty"
    assert (tmp_path / "r" / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions (patched above)")
@pytest.mark.parametrize("command", ["synth", "fit", "attribute", "test", "predict", "report"])
def test_read_only_folder_is_one_line(command, tiny_run, attr_dir, tmp_path, capsys) -> None:
    """The same with a real chmod 0500 folder (CI runners that are not root)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = ["-q", *COMMANDS[command](tiny_run, attr_dir, ro)]
    ro.chmod(0o500)
    try:
        rc = main(argv)
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert "modalens: error: cannot write: no permission to write" in err
    assert str(ro / "out") in err
