"""Run folders: every artefact's path, and the rule for resuming a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from modalens.errors import ModelError, SpecError
from modalens.training import RunFolder, load_config
from modalens.training.runfolder import RESUMABLE_KEYS


def _config(root: Path, **train: object) -> dict:
    return {
        "name": "tiny",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 2, "batch_size": 2, "lr": 1e-3, **train},
    }


@pytest.fixture
def saved(tmp_path: Path) -> RunFolder:
    """A run folder holding only the config.yaml that fit writes first."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.config.write_text(load_config(_config(tmp_path / "data")).to_yaml())
    return folder


def test_run_folder_names_every_artefact(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    d = tmp_path / "run"
    assert run.path == d
    assert run.config == d / "config.yaml"
    assert run.dataset == d / "dataset.yaml"
    assert run.stats == d / "stats.json"
    assert run.checkpoints == d / "checkpoints"
    assert run.best == d / "checkpoints" / "best.ckpt"
    assert run.last == d / "checkpoints" / "last.ckpt"
    assert run.checkpoint("last") == run.last
    assert run.metrics == d / "metrics.csv"
    assert run.test_metrics("val") == d / "metrics_val.csv"
    assert run.predictions == d / "predictions"
    assert run.attribution("test") == d / "attribution" / "test"
    assert run.occlusion_maps == d / "occlusion_maps"
    assert run.is_empty()
    d.mkdir()
    assert run.is_empty()
    run.metrics.write_text("epoch\n")
    assert not run.is_empty()


def test_resume_refuses_a_changed_key_naming_it(saved: RunFolder, tmp_path: Path) -> None:
    changed = load_config(_config(tmp_path / "data", lr=0.5))
    with pytest.raises(SpecError) as info:
        saved.check_resumable(changed)
    msg = str(info.value)
    assert "cannot resume" in msg and "'train.lr' is 0.5 but the earlier result used 0.001" in msg
    assert str(saved.config) in msg and "\n" not in msg


def test_resume_allows_the_resumable_keys(saved: RunFolder, tmp_path: Path) -> None:
    assert {"train.epochs", "data.root"} <= RESUMABLE_KEYS
    more = load_config(_config(tmp_path / "moved", epochs=10, num_workers=2, patience=3))
    saved.check_resumable(more)  # epochs, workers, patience and the data root may change
    assert saved.saved_config().train.epochs == 2


def test_a_folder_without_config_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a run folder"):
        RunFolder(tmp_path).saved_config()
    with pytest.raises(ModelError, match="not a run folder"):
        RunFolder(tmp_path).check_resumable(load_config(_config(tmp_path)))
