"""Datasets shipped in parts: a folder's files split over ``<folder>_part1``, ``<folder>_part2``...

Some releases cut a big folder into several archives (MapInWild's ``s1_part1.zip`` and
``s1_part2.zip`` unpack into ``s1_part1/`` and ``s1_part2/``) and nothing says they must be
merged. Two ways to read them:

- *in place*: :func:`build_part_index` (the ``part_folders`` index builder) maps each sample id
  to the folder that holds its file: ``<folder>/`` when it is there, else the part folder; a
  spec's path template then reads ``{<folder>}/{id}.tif`` (a column of the index table).
  :func:`part_template` writes such a template when a folder has parts.
- *merged*: :func:`merge_parts` (``modalens data prepare NAME ROOT``, :func:`prepare_dataset`
  calling the dataset's preparer, :func:`register_preparer`) moves or links every part's files
  into ``<folder>/``, atomically per file (a temporary name in the destination folder, then a
  rename), verifying each file and skipping the ones already merged, so a rerun resumes.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError, SpecError
from ..progress import bar, say, warn
from .remote import Location, RemotePath, as_location
from .samples import register_index_builder

#: how a part folder's name ends (``_part1``, ``_part2``, ...)
PART_PATTERN = re.compile(r"_part(\d+)\Z")

#: how the temporary name of a file being merged starts (hidden, never a sample file)
TEMP_PREFIX = ".modalens-merge-"


def part_dirs(root: Location, folder: str) -> list[str]:
    """The part folders of ``folder`` under a local ``root`` (``folder_part1``, ...), in part
    order; none for a URL root (it cannot be listed) or a missing root."""
    if isinstance(root, RemotePath) or not Path(root).is_dir():
        return []
    found = []
    for p in Path(root).glob(f"{glob_escape(folder)}_part*"):
        m = PART_PATTERN.search(p.name)
        if m and p.name[: m.start()] == folder and p.is_dir():
            found.append((int(m.group(1)), p.name))
    return [name for _, name in sorted(found)]


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def folder_present(root: Location, folder: str) -> bool:
    """Whether ``folder`` or one of its part folders is under a local ``root``."""
    if isinstance(root, RemotePath):
        return False
    return (Path(root) / folder).is_dir() or bool(part_dirs(root, folder))


def part_template(root: Location, folder: str, name: str = "{id}.tif") -> str:
    """The path template of ``folder``'s files: ``folder/{id}.tif`` when it has no part
    folders, else ``{folder}/{id}.tif`` (the folder comes from the ``part_folders`` index)."""
    return f"{{{folder}}}/{name}" if part_dirs(root, folder) else f"{folder}/{name}"


@register_index_builder("part_folders")
def build_part_index(root: Path, folders: str) -> pd.DataFrame:
    """Index table: for each sample id (a file name's stem), the folder holding its file of each
    of ``folders`` (comma-separated): the merged folder first, else a part folder, else the
    merged folder's name (so that a missing file is reported where it belongs).

    Args:
        root: the dataset folder.
        folders: folder names under ``root``, comma-separated (each a column of the table).

    Raises:
        DataError: no file in any of the folders.
    """
    names = [f for f in folders.split(",") if f]
    found: dict[str, dict[str, str]] = {}
    for folder in names:
        for place in (folder, *part_dirs(root, folder)):
            path = as_location(root) / place
            if isinstance(path, RemotePath) or not Path(path).is_dir():
                continue
            for entry in os.scandir(path):
                if entry.name.endswith(".tif") and not entry.name.startswith("."):
                    found.setdefault(entry.name[:-4], {}).setdefault(folder, place)
    if not found:
        raise DataError(
            f"no .tif files in {' or '.join(names)} or their part folders",
            str(root),
            "point root at the folder holding the unzipped dataset",
        )
    rows = [{"id": sid, **{f: where.get(f, f) for f in names}} for sid, where in found.items()]
    return pd.DataFrame(rows).sort_values("id").reset_index(drop=True)


@dataclass
class MergeResult:
    """What :func:`merge_parts` did: files merged now, already merged before, and failures (one
    line each, naming the file)."""

    merged: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def merge_parts(
    root: str | Path,
    folders: Sequence[str],
    move: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> MergeResult:
    """Merge each folder's part folders (``<folder>_part1``, ...) into ``<folder>/``.

    Each file is linked (a hard link, same file system), copied or, with ``move``, moved to a
    temporary name in ``<folder>/`` and renamed into place, so an interrupted merge never
    leaves a half-written sample file; a file already there with the part file's size is
    skipped (a rerun resumes). Each part file is verified first (not empty; a ``.tif`` opens
    and reads whole), and a file that fails is reported in one line and left out.

    Args:
        root: the dataset folder.
        folders: the merged folders' names (e.g. ``s1``, ``s2_summer``).
        move: move the part files (the part folders are removed once empty); by default the
            parts are left as they are.
        verify: read every part file before merging it.
        progress: a progress bar per folder and a summary line.

    Returns:
        The counts and failures (the caller decides how to report failures).

    Raises:
        DataError: the root is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("dataset folder not found", str(root), "check the path")
    result = MergeResult()
    for folder in folders:
        parts = part_dirs(root, folder)
        if not parts:
            continue
        dest = root / folder
        dest.mkdir(exist_ok=True)
        _remove_temporaries(dest)
        files = [(p, f) for p in parts for f in sorted(os.listdir(root / p))]
        files = [(p, f) for p, f in files if (root / p / f).is_file()]
        for part, name in bar(files, progress, desc=f"merge {folder}", unit="file"):
            _merge_one(root / part / name, dest / name, move, verify, result)
        if move:
            for part in parts:
                _remove_if_empty(root / part)
    say(
        f"merged {result.merged} file(s), {result.skipped} already merged, "
        f"{len(result.failed)} failed",
        progress,
    )
    return result


def _merge_one(src: Path, dest: Path, move: bool, verify: bool, result: MergeResult) -> None:
    """Merge one part file into place (see :func:`merge_parts`); failures go to ``result``."""
    size = src.stat().st_size
    if dest.is_file() and dest.stat().st_size == size:
        result.skipped += 1
        if move:
            src.unlink()  # already in place (or a hard link of an earlier merge)
        return
    problem = verify_file(src) if verify else None
    if problem is not None:
        line = f"{src}: {problem}"
        result.failed.append(line)
        warn(line)
        return
    tmp = dest.parent / f"{TEMP_PREFIX}{os.getpid()}-{dest.name}.partial"
    try:
        _transfer(src, tmp, move)
        if tmp.stat().st_size != size:
            raise OSError(f"copied {tmp.stat().st_size} of {size} bytes")
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        line = f"{src}: cannot merge into {dest.parent} ({exc.strerror or exc})"
        result.failed.append(line)
        warn(line)
        return
    if move:
        src.unlink(missing_ok=True)
    result.merged += 1


def _transfer(src: Path, tmp: Path, move: bool) -> None:
    """``src`` to ``tmp``: a rename when moving on one file system, else a hard link, else a
    copy (``src`` is removed by the caller once ``tmp`` is in place)."""
    if move:
        try:
            os.rename(src, tmp)
            return
        except OSError:
            pass
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)


def verify_file(path: Path) -> str | None:
    """Why ``path`` is not a usable dataset file (None when it is): empty, or a ``.tif`` that
    GDAL cannot open or read whole (a truncated download)."""
    if path.stat().st_size == 0:
        return "empty file"
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    import rasterio

    try:
        with rasterio.open(path) as ds:
            ds.read()
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"not a readable GeoTIFF ({' '.join(str(exc).split())[:120]})"
    return None


def _remove_temporaries(folder: Path) -> None:
    """Remove what an interrupted merge left in ``folder`` (its temporary names)."""
    for p in folder.glob(f"{TEMP_PREFIX}*"):
        p.unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when nothing is left in it."""
    try:
        folder.rmdir()
    except OSError:
        pass


Preparer = Callable[..., MergeResult]

#: dataset preparers by name (``modalens data prepare NAME ROOT``), registered by the dataset's
#: preset module with :func:`register_preparer`
PREPARERS: dict[str, Preparer] = {}


def register_preparer(name: str) -> Callable[[Preparer], Preparer]:
    """Decorator: make ``fn(root, move=..., verify=..., progress=...)`` the preparer ``name``."""

    def register(fn: Preparer) -> Preparer:
        PREPARERS[name] = fn
        return fn

    return register


def prepare_dataset(
    name: str, root: str | Path, move: bool = False, verify: bool = True, progress: bool = True
) -> MergeResult:
    """Put a downloaded dataset into the layout its preset reads fastest (``modalens data
    prepare NAME ROOT``): for MapInWild, merge the part folders (:func:`merge_parts`).

    Args:
        name: the dataset (a registered preparer: ``mapinwild``).
        root: the folder where the dataset was unpacked.
        move: move the files instead of linking or copying them (the parts are removed).
        verify: read every file before merging it.
        progress: progress bars and a summary line.

    Returns:
        Files merged, already merged and failed.

    Raises:
        SpecError: no preparer of that name.
        DataError: nothing to prepare, or some files failed (see :func:`merge_or_raise`).
    """
    if name not in PREPARERS:  # (importing modalens.data registered the presets' preparers)
        raise SpecError(
            f"no preparer for dataset {name!r}", "data prepare", f"choose {', '.join(PREPARERS)}"
        )
    return PREPARERS[name](root, move=move, verify=verify, progress=progress)


def merge_or_raise(
    root: str | Path,
    folders: Sequence[str],
    move: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> MergeResult:
    """:func:`merge_parts`, refusing a root with no part folder of ``folders`` (nothing to do is
    fine when the merged folders are there) and raising when a file failed.

    Raises:
        DataError: no part or merged folder of ``folders`` under ``root``; or some files failed
            (the first named, the count given; each was reported in its own warning line).
    """
    root = Path(root)
    if root.is_dir() and not any(folder_present(root, f) for f in folders):
        raise DataError(
            f"no part folders ({folders[0]}_part1, ...) or merged folders under the root",
            str(root),
            "point ROOT at the folder where the dataset's zips were unpacked",
        )
    result = merge_parts(root, folders, move=move, verify=verify, progress=progress)
    if result.failed:
        raise DataError(
            f"{len(result.failed)} part file(s) failed and were not merged, the first",
            result.failed[0],
            "unzip the part again (or download it again) and rerun the same command: merged "
            "files are skipped",
        )
    return result
