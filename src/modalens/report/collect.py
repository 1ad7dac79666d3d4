"""Find what a folder holds: every artefact the report knows, by its file name.

The report does not need to be told what a folder is: it walks it and recognises each
artefact by the file that marks it (an attribution folder by ``summary.csv`` beside
``scores.parquet``, an ablation by ``table1.csv``, a run by ``config.yaml`` beside
``metrics.csv`` ...). Each kind of artefact is one entry of :data:`MARKERS`; a new artefact
kind is one more entry (and a section builder in :mod:`.sections`).

The runs an ablation, a pruning, a benchmark or a multitask comparison trains live in its
sub-folders; they are part of that study and are not listed again as runs of their own.

What is not finished is said, never dropped in silence: a folder that a command left before
writing the file that marks its kind (:data:`UNFINISHED`: a run without a finished epoch, an
attribution without ``summary.csv``, a study without its table) and a study's run whose
training stopped unfinished is listed in :attr:`Artefacts.skipped` with why and how to finish
it; a run (or the run of an attribution) found whose training did not finish
(``state.json``, :mod:`modalens.training.runstate`) gets a note in :attr:`Artefacts.notes`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..attribution.run import recorded_run
from ..errors import DataError
from ..training.runstate import read_state, resume_command, unfinished_note

#: artefact kind -> test on a folder's file names (a set of names)
MARKERS: dict[str, Callable[[set[str]], bool]] = {
    "dataset": lambda f: "metadata.json" in f and "split_IDs.csv" in f,
    "run": lambda f: "config.yaml" in f and ("metrics.csv" in f or "metrics_test.csv" in f),
    "attribution": lambda f: "summary.csv" in f,
    "strategies": lambda f: "strategies.csv" in f,
    "views": lambda f: "index.csv" in f and any(n.endswith(".png") for n in f),
    "strata": lambda f: "stratified.csv" in f,
    "ablation": lambda f: "table1.csv" in f and "performance_shapley.csv" not in f,
    "subsets": lambda f: "performance_shapley.csv" in f and "subsets.csv" in f,
    "agreement": lambda f: "agreement.csv" in f,
    "pruning": lambda f: "pruning.csv" in f,
    "faithfulness": lambda f: "faithfulness.csv" in f,
    "mtl_compare": lambda f: "mtl_compare.csv" in f,
    "mtl_explain": lambda f: "mtl_correlation.csv" in f,
}

#: the command that writes each study
STUDY_COMMANDS = {
    "ablation": "modalens ablate",
    "pruning": "modalens prune",
    "faithfulness": "modalens bench faithfulness",
    "mtl_compare": "modalens mtl compare",
}
#: how to finish a study (``{cmd}``: its command)
FINISH_STUDY = "rerun the same `{cmd}` command to finish it"

#: artefact kind -> (test on a folder's file and sub-folder names, what the folder lacks, how to
#: finish it): a folder a command left before it wrote the file that marks the kind (``{resume}``:
#: the command that resumes the folder as a run)
UNFINISHED: dict[str, tuple[Callable[[set[str]], bool], str, str]] = {
    "run": (
        lambda f: "config.yaml" in f and ("stats.json" in f or "checkpoints" in f),
        "a run without a finished epoch (no metrics.csv)",
        "finish it with `{resume}`",
    ),
    "attribution": (
        lambda f: ("parts" in f or "source.json" in f) and "subsets.json" not in f,
        "an attribution without summary.csv (interrupted, or still running)",
        "rerun the same `modalens attribute` command to finish it",
    ),
    "subsets": (
        lambda f: "subsets.json" in f,
        "a subsets evaluation without performance_shapley.csv (interrupted, or still running)",
        "rerun the same `modalens subsets` command to finish it",
    ),
    "ablation": (
        lambda f: "ablation.json" in f,
        "an ablation without table1.csv (no run finished yet)",
        FINISH_STUDY.format(cmd=STUDY_COMMANDS["ablation"]),
    ),
    "pruning": (
        lambda f: "pruning.json" in f,
        "a pruning study without pruning.csv (interrupted, or still running)",
        FINISH_STUDY.format(cmd=STUDY_COMMANDS["pruning"]),
    ),
    "faithfulness": (
        lambda f: "faithfulness.json" in f,
        "a faithfulness benchmark without faithfulness.csv (interrupted, or still running)",
        FINISH_STUDY.format(cmd=STUDY_COMMANDS["faithfulness"]),
    ),
    "mtl_compare": (
        lambda f: "mtl_compare.json" in f,
        "a multitask comparison without mtl_compare.csv (interrupted, or still running)",
        FINISH_STUDY.format(cmd=STUDY_COMMANDS["mtl_compare"]),
    ),
}

#: folders that never hold an artefact of their own (result parts, checkpoints, caches)
SKIP = {"parts", "checkpoints", "__pycache__", ".git"}
#: studies whose sub-folders (their runs, per-seed data and attributions) belong to them: the
#: report does not descend into them (a study's section reaches in for what it shows)
OWNS_RUNS = {"ablation", "pruning", "faithfulness", "mtl_compare"}


@dataclass(frozen=True)
class Skipped:
    """A folder the report leaves out: where, why, and how to finish it."""

    path: Path
    why: str
    fix: str


@dataclass
class Artefacts:
    """Folders holding each kind of artefact under :attr:`root`, in a stable order; the folders
    left out (:attr:`skipped`) and the notes on artefacts of unfinished runs (:attr:`notes`,
    by folder)."""

    root: Path
    found: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    notes: dict[Path, str] = field(default_factory=dict)

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
        partial = _unfinished(Path(dirpath), names | set(dirnames), kinds)
        result.skipped += partial.values()
        study = next((k for k in [*kinds, *partial] if k in OWNS_RUNS), None)
        if study is not None:
            result.skipped += _unfinished_study_runs(Path(dirpath), study)
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("."))
    _add_notes(result)
    return result


def _unfinished(folder: Path, names: set[str], kinds: list[str]) -> dict[str, Skipped]:
    """The :data:`UNFINISHED` kinds ``folder`` (its file and sub-folder ``names``) is a part
    of, but not of ``kinds`` (those it holds finished), and why each is left out."""
    state = read_state(folder)
    return {
        kind: Skipped(
            folder,
            f"{why}: {state.describe()}" if state else why,
            fix.format(resume=resume_command(folder)),
        )
        for kind, (test, why, fix) in UNFINISHED.items()
        if kind not in kinds and test(names)
    }


def _unfinished_study_runs(study: Path, kind: str) -> list[Skipped]:
    """The runs of a study of ``kind`` (``runs/*``, ``seed*/runs/*``) whose training did not
    finish or which were not tested: the study's table has no row of them."""
    fix = FINISH_STUDY.format(cmd=STUDY_COMMANDS[kind])
    out = []
    for run in sorted([*study.glob("runs/*"), *study.glob("seed*/runs/*")]):
        if not run.is_dir():
            continue
        state = read_state(run)
        if state is not None and not state.finished:
            why = f"a run of the study: {state.describe()}, so it is not in the study's table"
        elif not (run / "metrics_test.csv").is_file():
            why = "a run of the study not tested yet (no metrics_test.csv), not in its table"
        else:
            continue
        out.append(Skipped(run, why, fix))
    return out


def _add_notes(arts: Artefacts) -> None:
    """A note for each run found whose training did not finish, and for each attribution made
    from such a run."""
    for run in arts["run"]:
        note = unfinished_note(run)
        if note:
            arts.notes[run] = note
    for folder in arts["attribution"]:
        source = recorded_run(folder)
        state = read_state(source) if source is not None else None
        if source is not None and state is not None and not state.finished:
            arts.notes[folder] = (
                f"attribution {arts.relative(folder)} was made from run {source}, whose "
                f"{state.describe()}; finish it with `{resume_command(source)}`, then "
                "attribute again"
            )
