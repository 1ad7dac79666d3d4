"""A results folder with a tested tiny run and its attribution, shared by the report tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def results(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``results/run`` (a link to a tested copy of the tiny run: links are followed) and
    ``results/attribution`` (zeros and mean fills, embedding and output level)."""
    from modalens.attribution import attribute_run
    from modalens.training import evaluate

    base = tmp_path_factory.mktemp("report")
    run = base / "run"
    shutil.copytree(tiny_run, run)
    evaluate(run)
    folder = base / "results"
    folder.mkdir()
    (folder / "run").symlink_to(run, target_is_directory=True)
    attribute_run(
        run,
        strategies=["zeros", "mean"],
        levels=["embedding", "output"],
        out=folder / "attribution",
        progress=False,
    )
    return folder
