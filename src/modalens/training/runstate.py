"""Whether a run's training finished, and why it stopped: ``state.json`` of a run folder.

:func:`~modalens.training.fit` records the state of its training in ``RUN/state.json``
(written atomically by :class:`~modalens.training.callbacks.StateRecorder`, a Lightning
callback, on global rank 0):

- ``running`` when training starts, with the epochs finished so far updated after every epoch
  (a folder that still says ``running`` once no process trains it was killed);
- ``finished`` when all ``train.epochs`` epochs are trained;
- ``early_stopped`` when early stopping ended it (with Lightning's reason);
- ``interrupted`` on Ctrl-C (``KeyboardInterrupt``);
- ``failed`` when an exception ended it (its type and first line).

``epochs`` is the number of epochs finished, ``planned`` the run's ``train.epochs``. A folder
without ``state.json`` (written before this record existed) has an unknown state and is treated
as before: as finished. :func:`unfinished_note` is the one line ``test``, ``attribute`` and
``report`` show for a run whose training did not finish, with the command that finishes it
(:func:`warn_if_unfinished`: a warning line, after which they go on).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io import atomic_write_json
from ..progress import warn

#: the state file of a run folder
STATE_FILE = "state.json"
#: the statuses of a run that finished training
FINISHED = ("finished", "early_stopped")
#: every status a state file may hold
STATUSES = ("running", "finished", "early_stopped", "interrupted", "failed")


@dataclass(frozen=True)
class RunState:
    """The recorded state of a run's training.

    Attributes:
        status: one of :data:`STATUSES`.
        epochs: epochs finished.
        planned: the epochs the run was to train (``train.epochs``).
        reason: why it stopped (early stopping's reason, the exception), or empty.
    """

    status: str
    epochs: int
    planned: int
    reason: str = ""

    @property
    def finished(self) -> bool:
        """True when training ended as planned: all epochs, or stopped early."""
        return self.status in FINISHED

    def describe(self) -> str:
        """How training ended, in words, e.g. ``training was interrupted at epoch 11 of 30``."""
        at = f"at epoch {self.epochs} of {self.planned}"
        words = {
            "finished": f"training finished ({self.epochs} of {self.planned} epochs)",
            "early_stopped": f"training stopped early {at}",
            "interrupted": f"training was interrupted {at}",
            "failed": f"training failed {at}",
            "running": f"training did not end: {at} (still running, or the process was killed)",
        }
        text = words.get(self.status, f"training state {self.status!r} {at}")
        return f"{text} ({self.reason})" if self.reason and self.status != "running" else text


def read_state(run_dir: str | Path) -> RunState | None:
    """The recorded state of a run folder.

    Args:
        run_dir: the run folder.

    Returns:
        The state, or None when the folder has no readable ``state.json`` (a run from before
        the record: its state is unknown).
    """
    try:
        data = json.loads((Path(run_dir) / STATE_FILE).read_text())
        return RunState(
            str(data["status"]),
            int(data["epochs"]),
            int(data["planned"]),
            str(data.get("reason") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(run_dir: str | Path, state: RunState) -> None:
    """Write ``state`` to ``run_dir/state.json`` atomically."""
    atomic_write_json(Path(run_dir) / STATE_FILE, asdict(state))


def resume_command(run_dir: str | Path) -> str:
    """The command that finishes the training of the run in ``run_dir``."""
    run = str(run_dir)
    return f"modalens fit --config {Path(run) / 'config.yaml'} --out {run} --resume"


def unfinished_note(run_dir: str | Path) -> str | None:
    """One line saying that the run's training did not finish, and how to finish it.

    Args:
        run_dir: the run folder.

    Returns:
        The line, or None for a finished run or one of unknown state (no ``state.json``).
    """
    state = read_state(run_dir)
    if state is None or state.finished:
        return None
    return (
        f"run {run_dir}: {state.describe()}; its results come from an unfinished model "
        f"(finish it with `{resume_command(run_dir)}`)"
    )


def warn_if_unfinished(run_dir: str | Path) -> str | None:
    """Show :func:`unfinished_note` as a warning line (:func:`modalens.progress.warn`) when
    the run's training did not finish; the line, or None."""
    note = unfinished_note(run_dir)
    if note is not None:
        warn(note)
    return note


def exception_reason(error: BaseException) -> str:
    """An exception in one short line: its type and the first line of its message (at most
    200 characters)."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"
