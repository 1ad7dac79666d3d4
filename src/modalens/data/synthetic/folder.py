"""The dataset folder of ``modalens synth``: started empty, marked complete only at its very end.

:func:`start_dataset` checks the output folder before any work (:func:`modalens.io.check_output`),
refuses one that holds anything unless ``overwrite`` clears it (:func:`modalens.io.fresh_folder`;
old and new files are never mixed), and leaves :data:`~modalens.data.samples.UNFINISHED_FILE`
in it, naming the command that restarts it. :func:`finish_dataset` writes ``metadata.json``
and removes that file last, so an interrupted dataset says so wherever it is read
(:func:`~modalens.data.samples.require_finished`) instead of looking complete or failing on a
missing split file.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import OutputError
from ...io import atomic_write_json, fresh_folder
from ..samples import UNFINISHED_FILE, restart_command


def start_dataset(out: str | Path, overwrite: bool, options: Mapping[str, Any]) -> Path:
    """The empty dataset folder ``out``, marked unfinished.

    Args:
        out: the dataset folder.
        overwrite: delete what the folder holds first (else a non-empty folder is refused).
        options: the ``modalens synth`` options that make this dataset (``--name value``; True
            for a flag), recorded in the marker's restart command.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``out`` cannot be written, or holds files (an interrupted dataset among
            them) and ``overwrite`` is not set.
    """
    out = Path(out)
    command = _command(out, options)
    if not overwrite and (out / UNFINISHED_FILE).is_file():
        raise OutputError(
            "the folder holds an interrupted synthetic dataset",
            str(out),
            f"restart it with {restart_command(out)} (or choose another folder)",
        )
    folder = fresh_folder(out, overwrite)
    atomic_write_json(
        folder / UNFINISHED_FILE,
        {
            "writer": "modalens synth",
            "note": "this dataset is being written or was interrupted; metadata.json marks a "
            "complete one",
            "restart": command,
        },
    )
    return folder


def finish_dataset(out: Path, metadata: Mapping[str, Any]) -> None:
    """Mark the dataset in ``out`` complete: ``metadata.json`` written, the marker removed."""
    atomic_write_json(out / "metadata.json", metadata)
    (out / UNFINISHED_FILE).unlink(missing_ok=True)


def _command(out: Path, options: Mapping[str, Any]) -> str:
    """``modalens synth OUT --option value ... --overwrite``, quoted for a shell."""
    words = ["modalens", "synth", str(out.absolute())]
    for name, value in options.items():
        if value is None or value is False:
            continue
        words.append(f"--{name.replace('_', '-')}")
        if value is not True:
            words.append(_text(value))
    return shlex.join([*words, "--overwrite"])


def _text(value: Any) -> str:
    """An option value as the command line writes it (a mapping as ``k=v,k=v``)."""
    if isinstance(value, Mapping):
        return ",".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
        )
    return str(value)
