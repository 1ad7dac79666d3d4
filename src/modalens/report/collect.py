"""Find what a folder holds: every artefact the report knows, by its file name.

The report does not need to be told what a folder is: it walks it and recognises each
artefact by the file that marks it (an attribution folder by ``summary.csv`` beside
``scores.parquet``, an ablation by ``table1.csv``, a run by ``config.yaml`` beside
``metrics.csv`` ...). Each kind of artefact is one entry of :data:`MARKERS`; a new artefact
kind is one more entry (and a section builder in :mod:`.sections`).

The runs an ablation, a pruning, a benchmark or a multitask comparison trains live in its
sub-folders; they are part of that study and are not listed again as runs of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

#: artefact kind -> test on a folder's file names (a set of names)
MARKERS: dict[str, Callable[[set[str]], bool]] = {
    "dataset": lambda f: "metadata.json" in f and "split_IDs.csv" in f,
    "run": lambda f: "config.yaml" in f and ("metrics.csv" in f or "metrics_test.csv" in f),
    "attribution": lambda f: "summary.csv" in f,
    "strategies": lambda f: "strategies.csv" in f,
    "views": lambda f: "index.csv" in f and any(n.endswith(".png") for n in f),
    "strata": lambda f: "stratified.csv" in f,
    "ablation": lambda f: "table1.csv" in f,
    "agreement": lambda f: "agreement.csv" in f,
    "pruning": lambda f: "pruning.csv" in f,
    "faithfulness": lambda f: "faithfulness.csv" in f,
    "mtl_compare": lambda f: "mtl_compare.csv" in f,
    "mtl_explain": lambda f: "mtl_correlation.csv" in f,
}

#: folders that never hold an artefact of their own (result parts, checkpoints, caches)
SKIP = {"parts", "checkpoints", "__pycache__", ".git"}
#: studies whose sub-folders (their runs, per-seed data and attributions) belong to them: the
#: report does not descend into them (a study's section reaches in for what it shows)
OWNS_RUNS = {"ablation", "pruning", "faithfulness", "mtl_compare"}


@dataclass
class Artefacts:
    """Folders holding each kind of artefact under :attr:`root`, in a stable order."""

    root: Path
    found: dict[str, list[Path]] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> list[Path]:
        return self.found.get(kind, [])

    def kinds(self) -> list[str]:
        """The kinds found, in the order of :data:`MARKERS`."""
        return [k for k in MARKERS if self.found.get(k)]

    def relative(self, path: Path) -> str:
        """``path`` relative to the root (``.`` for the root itself)."""
        rel = os.path.relpath(path, self.root)
        return "." if rel == "." else rel


def collect(root: str | Path) -> Artefacts:
    """Walk ``root`` and list the folders holding each artefact kind of :data:`MARKERS`.

    Raises:
        DataError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            "the report folder does not exist or is not a folder",
            str(root),
            "give the folder that holds your runs, attributions or ablation",
        )
    result = Artefacts(root=root.resolve())
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(result.root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back into the tree
            dirnames[:] = []
            continue
        seen.add(real)
        names = set(filenames)
        kinds = [kind for kind, test in MARKERS.items() if test(names)]
        for kind in kinds:
            result.found.setdefault(kind, []).append(Path(dirpath))
        if any(k in OWNS_RUNS for k in kinds):
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("."))
    return result
