"""The one record of what produced a result (:mod:`modalens.fingerprint`): version, threads,
checkpoint hash, data identity; compared key by key, the thread count only warns."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import pytest

import modalens
from modalens.errors import SpecError
from modalens.fingerprint import (
    check_provenance,
    continued,
    file_digest,
    files_digest,
    package_version,
)


def test_package_version_is_the_packages() -> None:
    assert package_version() == modalens.__version__


def test_file_digest_follows_the_content(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    path.write_bytes(b"one")
    first = file_digest(path)
    assert file_digest(path) == first
    path.write_bytes(b"two")
    os.utime(path, ns=(1, 2))  # another size or time: read again
    assert file_digest(path) != first


def test_files_digest_ignores_where_the_folder_lies(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.tif").write_bytes(b"data")
    moved = Path(shutil.copytree(tmp_path / "a", tmp_path / "b"))  # times kept
    assert files_digest([tmp_path / "a" / "x.tif"], tmp_path / "a") == files_digest(
        [moved / "x.tif"], moved
    )
    os.utime(moved / "x.tif", ns=(1, 2))
    assert files_digest([tmp_path / "a" / "x.tif"], tmp_path / "a") != files_digest(
        [moved / "x.tif"], moved
    )


def test_check_provenance_refuses_all_but_the_thread_count(caplog) -> None:
    saved = {"version": "0.1.0", "threads": 2, "checkpoint": "ab"}
    args = {"what": "cannot resume", "where": "p.json", "fix": "start again", "about": "run r"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_provenance(saved, dict(saved), **args) == saved
        assert check_provenance(None, saved, **args) == saved  # not recorded: not compared
    with pytest.raises(SpecError, match=r"'provenance\.checkpoint' is 'cd'"):
        check_provenance(saved, {**saved, "checkpoint": "cd"}, **args)
    with caplog.at_level(logging.WARNING, logger="modalens"):
        record = check_provenance(saved, {**saved, "threads": 1}, **args)
    assert "run r: made with 2 torch thread(s), this call uses 1" in caplog.text
    assert record["threads"] == 1 and record["earlier_threads"] == [2]


def test_continued_keeps_every_earlier_count() -> None:
    saved = {"provenance": {"threads": 4, "earlier_threads": [1, 2]}}
    assert continued(saved, {"provenance": {"threads": 2}})["provenance"] == {
        "threads": 2,
        "earlier_threads": [1, 4],
    }
    assert "earlier_threads" not in continued({}, {"provenance": {"threads": 2}})["provenance"]
