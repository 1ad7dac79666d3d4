"""The parts store: streamed, resumable score tables.

Results stream to ``OUT/parts/part-NNNNNN.parquet`` (one atomic file per batch) beside
``OUT/parts/config.json``: the options of the attribution and what produced its scores
(``provenance``, :func:`modalens.fingerprint.provenance`: the package version and torch thread
count, and for a run the checkpoint's content hash and the data identity). A rerun with the same
configuration skips the samples already there; a different one is refused through
:func:`modalens.fingerprint.require_same` -- except the thread count, which only warns
(:func:`modalens.fingerprint.note_threads`) and is kept in the record -- and ``resume=False``
deletes the parts and starts over. ``OUT/scores.parquet`` is assembled from the parts at the
end.

Several processes may share one store (:mod:`~.sharding`): rank 0 opens it first (creating,
checking and clearing the folder, writing ``config.json``), the others with ``create=False``
only read which samples are done; each writes its batches as parts named by the global batch
index, and rank 0 assembles them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ModalensError
from ..fingerprint import PROVENANCE, THREAD_KEYS, continued, note_threads, require_same
from ..io import atomic_path, atomic_write_json, make_folder
from .rows import empty_rows


class ScoreStore:
    """One parquet part per batch in ``out/parts``; resumable; assembled at the end.

    Args:
        out: the result folder.
        config: the settings the scores depend on (written to ``parts/config.json``).
        resume: keep the parts of an earlier run with the same ``config``.
        create: create, check and clear the folder and write ``config.json`` (False: another
            process did; only read which samples are done).

    Raises:
        ModalensError: ``out`` is a file, or its parts hold another configuration.
    """

    def __init__(
        self, out: Path, config: Mapping[str, Any], resume: bool = True, create: bool = True
    ) -> None:
        self.out = Path(out)
        self.parts = self.out / "parts"
        self.done: set[str] = set()
        if not create:
            self._read_done(sorted(self.parts.glob("part-*.parquet")))
            return
        check_store(self.out, config, resume)
        try:
            make_folder(self.parts)
        except (FileExistsError, NotADirectoryError):
            raise ModalensError(
                "the output folder is a file (or lies below one)",
                str(self.out),
                "pass a folder path to --out/out, or move that file away",
            ) from None
        cfg_path = self.parts / "config.json"
        cfg = json.loads(json.dumps(config, default=str))
        existing = sorted(self.parts.glob("part-*.parquet"))
        if not resume:
            for p in existing:
                p.unlink()
            existing = []
        if existing and cfg_path.is_file():  # continued: keep the earlier parts' thread counts
            cfg = continued(json.loads(cfg_path.read_text()), cfg)
        atomic_write_json(cfg_path, cfg)
        self._read_done(existing)

    def _read_done(self, parts: Iterable[Path]) -> None:
        for p in parts:
            ids = pd.read_parquet(p, columns=["sample_id"])["sample_id"]
            self.done.update(ids.astype(str).unique().tolist())

    def write(self, index: int, df: pd.DataFrame) -> Path:
        """Write the rows of batch ``index`` as a new part and mark its samples done."""
        path = self.parts / f"part-{index:06d}.parquet"
        k = 1
        while path.exists():
            path = self.parts / f"part-{index:06d}-{k}.parquet"
            k += 1
        write_parquet(df, path)
        self.done.update(df["sample_id"].astype(str).unique().tolist())
        return path

    def assemble(self, ids: Iterable[str] | None = None) -> pd.DataFrame:
        """All parts (only the rows of ``ids`` when given) -> ``out/scores.parquet``."""
        files = sorted(self.parts.glob("part-*.parquet"))
        if files:
            df = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
            if ids is not None:
                keep = df["sample_id"].astype(str).isin(set(ids))
                df = df[keep].reset_index(drop=True)
        else:
            df = empty_rows()
        write_parquet(df, self.out / "scores.parquet")
        return df


def check_store(out: Path, config: Mapping[str, Any], resume: bool = True) -> None:
    """Refuse an output folder :class:`ScoreStore` cannot use, without changing anything
    (every rank of a sharded run checks, so each fails with the same one-line error).

    Raises:
        ModalensError: ``out`` is a file (or lies below one), or its parts hold another
            configuration and ``resume`` is set.
    """
    out = Path(out)
    parts = out / "parts"
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ModalensError(
                    "the output folder is a file (or lies below one)",
                    str(out),
                    "pass a folder path to --out/out, or move that file away",
                )
            break
    cfg_path = parts / "config.json"
    if not (resume and cfg_path.exists() and any(parts.glob("part-*.parquet"))):
        return
    saved = json.loads(cfg_path.read_text())
    current = json.loads(json.dumps(config, default=str))
    ignore = THREAD_KEYS
    if PROVENANCE not in saved and set(current.get(PROVENANCE) or {}) <= {"version", "threads"}:
        # parts from before provenance was kept, of a model given in memory: nothing to compare;
        # of a run (a checkpoint and data named) they cannot vouch for the model: refused
        ignore = (PROVENANCE,)
    require_same(
        saved,
        current,
        what=f"{parts} holds scores of another configuration",
        where=str(cfg_path),
        fix="pass --overwrite (resume=False) to replace them, or use another --out folder",
        ignore=ignore,
        error=ModalensError,
    )
    note_threads(saved, current, f"the scores in {parts}")


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as parquet atomically."""
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
