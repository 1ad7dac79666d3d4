"""``ablation.json``: what an ablation folder was made from, checked before its work is reused.

A pruning folder keeps the same record as ``pruning.json`` (``record=PRUNING``).

The record holds the base config (as :func:`~.settings.read_config` returns it: absolute paths,
overrides merged), the modalities ablated, every seed asked for so far, the task and its metric
columns. It is written once the first run of a call has accepted the config (so a config that
fails validation is never recorded) and updated with the seeds of later calls.
:func:`check_record` compares a new request with it through
:func:`modalens.fingerprint.require_same` (only ``data.root`` may differ: the data may move);
while no run of the folder has started, a differing record is simply replaced. The record also
keeps ``provenance`` (:func:`modalens.fingerprint.provenance`: the package version and torch
thread count): another version is refused, another thread count warns (each run folder checks
its own data, :meth:`~modalens.training.runfolder.RunFolder.record_provenance`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError, SpecError
from ..fingerprint import PROVENANCE, check_provenance, continued, plain, provenance, require_same
from ..io import atomic_write_json, check_output

RECORD = "ablation.json"
PRUNING = "pruning.json"
VERSION = 1


def read_record(out: str | Path, record: str = RECORD) -> dict[str, Any]:
    """The record of an ablation folder.

    Args:
        out: the ablation folder.
        record: the record's file name (``pruning.json`` for a pruning folder).

    Returns:
        The parsed ``ablation.json`` (``config``, ``modalities``, ``seeds``, ``task``,
        ``metrics``).

    Raises:
        DataError: ``out`` has no readable ``ablation.json``.
    """
    path = Path(out) / record
    if not path.is_file():
        raise DataError(
            f"not {'an ablation' if record == RECORD else 'a ' + path.stem} folder (no {record})",
            str(out),
            f"give the --out folder of modalens {'ablate' if record == RECORD else 'prune'}",
        )
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"cannot read {record} ({' '.join(str(exc).split())[:80]})",
            str(path),
            "rerun the command with the same arguments to rewrite it",
        ) from None
    if not isinstance(record, dict) or "modalities" not in record:
        raise DataError(f"{record} lacks 'modalities'", str(path), "rerun the command")
    return record


def _runs_started(out: Path) -> bool:
    runs = out / "runs"
    return runs.is_dir() and any(p.is_dir() and any(p.iterdir()) for p in runs.iterdir())


def check_record(
    out: str | Path,
    config: Mapping[str, Any],
    modalities: Sequence[str],
    record: str = RECORD,
) -> None:
    """Refuse an output folder that cannot be one (:func:`~modalens.io.check_output`), or an
    ablation folder to continue with another config or modality set.

    Args:
        out: the ablation folder.
        config: the base config of the new request.
        modalities: its modalities.
        record: the record's file name.

    Raises:
        OutputError: ``out`` is a file, lies below one, or cannot be written.
        SpecError: a key differs (named with both values) while runs of the folder exist.
    """
    out = check_output(out, "folder")
    if not (out / record).is_file() or not _runs_started(out):
        return
    saved = read_record(out, record)
    where = str(out / record)
    fix = "rerun with the config the ablation was started with, or give another --out"
    require_same(
        saved.get("config") or {},
        plain(config),
        what=f"cannot continue the {Path(record).stem}: its config differs",
        where=where,
        fix=fix,
        ignore=("data.root",),
        error=SpecError,
    )
    check_provenance(
        saved.get(PROVENANCE),
        provenance(),
        what=f"cannot continue the {Path(record).stem}: it was made with another modalens",
        where=where,
        fix=fix,
        about=f"the {Path(record).stem} {out}",
    )
    if list(saved.get("modalities") or []) != list(modalities):
        raise SpecError(
            f"cannot continue the {Path(record).stem}: its modalities are "
            f"{saved.get('modalities')}, the dataset now gives {list(modalities)}",
            where,
            fix,
        )


def write_record(
    out: str | Path,
    config: Mapping[str, Any],
    modalities: Sequence[str],
    seeds: Sequence[int],
    task: str | None = None,
    metrics: Sequence[str] | None = None,
    record: str = RECORD,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write (or update) ``ablation.json``; seeds accumulate over calls, a known task and
    metric list are kept when not given.

    Args:
        out: the ablation folder.
        config: the base config (:func:`~.settings.read_config`).
        modalities: the modalities ablated.
        seeds: the seeds of this call.
        task: the runs' task, when known.
        metrics: the metric columns of Table I, when known.
        record: the record's file name.
        extra: more entries to record (e.g. pruning's ranking).

    Returns:
        The path of ``ablation.json``.
    """
    out = Path(out)
    old: dict[str, Any] = {}
    if (out / record).is_file():
        try:
            old = read_record(out, record)
        except DataError:
            old = {}
        if old.get("modalities") != list(modalities):
            old = {}
    all_seeds = [int(s) for s in old.get("seeds", [])]
    all_seeds += [int(s) for s in seeds if int(s) not in all_seeds]
    content = {
        "version": VERSION,
        "config": plain(config),
        "modalities": list(modalities),
        "seeds": all_seeds,
        "task": task if task is not None else old.get("task"),
        "metrics": list(metrics) if metrics is not None else old.get("metrics"),
        **plain(dict(extra or {})),
    }
    content[PROVENANCE] = continued(old, {PROVENANCE: provenance()})[PROVENANCE]  # threads kept
    return atomic_write_json(out / record, content)
