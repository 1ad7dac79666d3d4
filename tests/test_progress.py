"""One progress channel: lines on the ``modalens`` logger, shown without configuration when
asked for, on stdout under the command line; bars only with ``progress``."""

from __future__ import annotations

import logging

import pytest
from tqdm import tqdm

import modalens
from modalens.progress import bar, console_progress, logger, say, warn


def test_the_library_configures_no_logging() -> None:
    assert modalens.__name__ == logger.name
    assert logger.handlers == [] and logger.level == logging.NOTSET


def test_a_line_asked_for_is_shown_without_configuration(capsys) -> None:
    say("step 1/2: training ...", progress=True)
    captured = capsys.readouterr()
    assert captured.err == "step 1/2: training ...\n" and captured.out == ""


def test_without_progress_the_line_is_a_debug_record_only(capsys, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="modalens"):
        say("quiet step", progress=False)
    assert capsys.readouterr() == ("", "")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.DEBUG, "quiet step")]


def test_a_configured_logger_receives_the_lines_instead(capsys, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="modalens"):
        say("step", progress=True)
    assert capsys.readouterr().err == ""  # shown by the application's handler, not twice
    assert [r.getMessage() for r in caplog.records] == ["step"]


def test_the_command_line_shows_lines_on_stdout_and_restores_the_logger(capsys) -> None:
    with console_progress():
        say("[1/9] all seed 0: skipped (finished)", progress=True)
        say("not asked for", progress=False)
    assert capsys.readouterr() == ("[1/9] all seed 0: skipped (finished)\n", "")
    assert logger.handlers == [] and logger.level == logging.NOTSET
    say("after", progress=True)
    assert capsys.readouterr().err == "after\n"


def test_the_handler_is_removed_when_the_command_fails() -> None:
    with pytest.raises(RuntimeError), console_progress():
        raise RuntimeError("boom")
    assert logger.handlers == []


def test_bar_only_with_progress() -> None:
    items = [1, 2, 3]
    assert bar(items, False, desc="x") is items
    shown = bar(items, True, desc="x", disable=True)
    assert isinstance(shown, tqdm) and list(shown) == items


def test_a_warning_is_shown_on_stderr_whatever_the_progress(capsys, caplog) -> None:
    logger.propagate = False  # as in a process that configured no logging (pytest's handlers)
    try:
        warn("run r: training was interrupted at epoch 1 of 2")
    finally:
        logger.propagate = True
    assert capsys.readouterr() == ("", "warning: run r: training was interrupted at epoch 1 of 2\n")
    with caplog.at_level(logging.WARNING, logger="modalens"):
        warn("to the application's handler")
    assert capsys.readouterr().err == ""
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "to the application's handler")
    ]


def test_the_command_line_shows_warnings_on_stderr(capsys) -> None:
    with console_progress():
        say("a step", progress=True)
        warn("run r: training was interrupted")
    assert capsys.readouterr() == (
        "a step\n",
        "modalens: warning: run r: training was interrupted\n",
    )


def test_an_application_may_turn_the_warnings_off(capsys) -> None:
    logger.setLevel(logging.ERROR)
    try:
        warn("not shown")
    finally:
        logger.setLevel(logging.NOTSET)
    assert capsys.readouterr() == ("", "")
