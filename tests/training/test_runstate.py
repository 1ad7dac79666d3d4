"""A run folder records whether training finished and why it stopped (``state.json``); test and
attribute say so, in one warning line, for a run that did not finish, and go on."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pandas as pd
import pytest
from helpers import tiny_config

from modalens.attribution import attribute_run
from modalens.cli import main
from modalens.data import synthetic
from modalens.training import evaluate, fit
from modalens.training.callbacks import EpochCSV, StateRecorder
from modalens.training.runstate import RunState, read_state, unfinished_note, write_state
from modalens.validation.runs import is_finished


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.generate_synthetic(
        tmp_path_factory.mktemp("synth") / "data", samples=6, size=64, seed=0, progress=False
    )


def _stop_at_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, error: BaseException) -> None:
    """Training raises ``error`` when epoch ``epoch`` (0-based) starts."""
    start = EpochCSV.on_train_epoch_start

    def stop(self, trainer, pl_module) -> None:  # noqa: ANN001
        if trainer.current_epoch == epoch:
            raise error
        start(self, trainer, pl_module)

    monkeypatch.setattr(EpochCSV, "on_train_epoch_start", stop)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_finished_run_records_it(tiny_run: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert read_state(tiny_run) == RunState("finished", 1, 1)
    assert unfinished_note(tiny_run) is None


def test_an_interrupted_run_is_tested_and_attributed_with_a_warning(
    synth_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    one_torch_thread: None,
) -> None:
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stop_at_epoch(patch, 1, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            fit(tiny_config(synth_root, epochs=2), out=run, progress=False)
    assert read_state(run) == RunState("interrupted", 1, 2, "Ctrl-C")
    resume = f"modalens fit --config {run / 'config.yaml'} --out {run} --resume"

    with caplog.at_level(logging.WARNING, logger="modalens"):
        table = evaluate(run)  # still evaluated
    assert table.iloc[0]["id"] == "all"
    [line] = _warnings(caplog)
    assert str(run) in line and "interrupted at epoch 1 of 2" in line and resume in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modalens"):
        _scores, summary = attribute_run(
            run, strategies=["zeros"], levels=["output"], out=tmp_path / "attr", progress=False
        )
    assert len(summary) and _warnings(caplog) == [line]

    capsys.readouterr()
    assert main(["test", str(run)]) == 0  # the command: one warning line on stderr, then on
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"modalens: warning: {line}"]

    fit(tiny_config(synth_root, epochs=2), out=run, progress=False, resume=True)
    assert read_state(run) == RunState("finished", 2, 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modalens"):
        evaluate(run)
    assert _warnings(caplog) == []


def test_a_failed_run_records_the_error(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    run = tmp_path / "run"
    _stop_at_epoch(monkeypatch, 1, RuntimeError("disk on fire\nsecond line"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        fit(tiny_config(synth_root, epochs=2), out=run, progress=False)
    assert read_state(run) == RunState("failed", 1, 2, "RuntimeError: disk on fire")
    note = unfinished_note(run)
    assert note is not None
    assert "training failed at epoch 1 of 2 (RuntimeError: disk on fire)" in note


def test_early_stopping_is_finished_with_its_reason(tmp_path: Path) -> None:
    stopper = pl.callbacks.EarlyStopping(monitor="val_loss")
    stopper.stopping_reason_message = "Monitored metric val_loss did not improve.\nMore."
    trainer = SimpleNamespace(current_epoch=3, is_global_zero=True, callbacks=[stopper])
    StateRecorder(tmp_path, 30).on_fit_end(trainer, None)
    state = read_state(tmp_path)
    assert state == RunState("early_stopped", 3, 30, "Monitored metric val_loss did not improve.")
    assert state.finished and unfinished_note(tmp_path) is None
    assert state.describe().startswith("training stopped early at epoch 3 of 30")


def test_a_run_from_before_the_record_is_treated_as_before(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    (run / "state.json").unlink()
    assert read_state(run) is None and unfinished_note(run) is None
    with caplog.at_level(logging.WARNING, logger="modalens"):
        evaluate(run)
    assert _warnings(caplog) == []


def test_an_ablation_run_stopped_unfinished_is_not_finished(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    pd.DataFrame({"id": ["all"], "mae": [0.1]}).to_csv(run / "metrics_test.csv", index=False)
    assert is_finished(run)
    write_state(run, RunState("interrupted", 1, 3, "Ctrl-C"))
    assert not is_finished(run)  # an ablation resumes it instead of reusing its old test


def test_resuming_a_run_killed_after_its_last_epoch_records_it_finished(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "killed"
    shutil.copytree(tiny_run, run)
    write_state(run, RunState("running", 1, 1))  # the process died before fit returned
    note = unfinished_note(run)
    assert note is not None and "still running, or the process was killed" in note
    fit(run / "config.yaml", out=run, resume=True, progress=False)  # nothing left to train
    assert read_state(run) == RunState("finished", 1, 1)
