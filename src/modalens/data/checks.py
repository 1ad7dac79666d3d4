"""``modalens data check``: open every sample of every split and every modality source.

For each file: it exists, opens as a raster, has the bands the spec wants (a file with more
bands than the spec reads from it is a warning: its band order may differ), a plausible dtype,
a grid that can be put onto the sample grid, a no-data share below ``max_nodata`` (warning
above), non-finite values per band (NaN not declared as no-data, +-inf: a warning with counts and
shares; they are read as invalid), and (categorical) only values from the class list. Per sample
and modality, the share of the sample grid it covers with valid values must reach
``min_coverage`` (warning below, :mod:`modalens.data.coverage`). The target is checked the same
way (scene-label JSONs: readable, only known labels). Ids repeated inside a split are warnings;
ids shared by train and val/test are errors unless the spec allows leakage
(:mod:`modalens.data.leakage`), val/test sharing is a warning. Problems come back as a list;
nothing raises.

    problems = check_dataset(spec)
    print(format_summary(summarize(spec)))
    print(format_problems(problems))
    exit_code = 2 if has_errors(problems) else 0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModalensError
from ..progress import bar
from .coverage import COVERAGE_SIZE, MIN_COVERAGE, modality_coverage
from .leakage import LEAKAGE_PAIRS, overlap_of, split_overlap
from .rasters import (
    check_band_indices,
    mask_nodata,
    nodata_values,
    open_raster,
    plan_read,
    read_error,
)
from .reader import ClassLookup, SampleReader
from .remote import RemotePath, as_location, is_remote
from .samples import sample_ids
from .spec import SPLIT_NAMES, DatasetSpec

ERROR = "error"


WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check_dataset`."""

    sample_id: str | None
    modality: str | None
    path: str | None
    severity: str  # "error" | "warning"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.severity == ERROR for p in problems)


def check_dataset(
    spec: DatasetSpec,
    progress: bool = True,
    max_nodata: float = 0.5,
    splits: Mapping[str, Sequence[str]] | None = None,
    min_coverage: float = MIN_COVERAGE,
) -> list[Problem]:
    """Check every sample of every split (or of ``splits``); see the module docstring."""
    problems: list[Problem] = []
    try:
        overlap = overlap_of(splits) if splits is not None else split_overlap(spec)
        if splits is None:
            splits = sample_ids(spec, check_files=False)
    except ModalensError as exc:
        return [Problem(None, None, None, ERROR, str(exc))]
    problems.extend(_split_problems(spec, overlap))
    seen: dict[str, str] = {}
    for split in SPLIT_NAMES:
        for sid in splits.get(split, []):
            seen.setdefault(sid, split)
    ids = list(seen)
    reader = SampleReader(spec, cache_size=8)
    iterator = bar(ids, progress, desc="checking", unit="sample")
    try:
        for sid in iterator:
            problems.extend(_check_sample(spec, reader, sid, max_nodata, min_coverage))
            reader.close()
    finally:
        reader.close()
    return problems


def unread_bands(dataset: Any, bands: Sequence[int] | None, names: Sequence[str]) -> str | None:
    """What a file holds beyond the bands a spec reads from it, as a warning (None when the
    spec reads every band): a file with an extra band may hold its bands in another order
    than the spec's indices assume.

    Args:
        dataset: the open raster.
        bands: the spec's 1-based band indices for the file (None: every band, whose count
            :func:`check_band_indices` checks).
        names: the spec's names of those bands.
    """
    count = int(dataset.count)
    if bands is None or count <= len(bands):
        return None
    unread = [b for b in range(1, count + 1) if b not in bands]
    if not unread:
        return None
    read = ", ".join(f"{n}={b}" for n, b in zip(names, bands, strict=False))
    return (
        f"file has {count} bands, the spec reads {len(bands)} ({read}); band(s) "
        f"{', '.join(map(str, unread))} not used: check that the file's band order matches, "
        "else fix the source 'bands' indices"
    )


def band_warnings(spec: DatasetSpec, sample_id: str) -> list[str]:
    """One line per source file of ``sample_id`` that has more bands than the spec reads
    from it (``fit`` prints them for its first train sample; ``data check`` checks every
    sample). Files that cannot be opened are left to the reader's errors."""
    out = []
    reader = SampleReader(spec, cache_size=2, check_values=False)
    try:
        for src in reader.sources(sample_id):
            try:
                ds = open_raster(src.path)
            except ModalensError:
                continue
            with ds:
                names = list(src.modality.bands[src.channels])
                extra = unread_bands(ds, src.source.bands, names)
            if extra:
                out.append(f"modality {src.modality.name!r} ({src.path}): {extra}")
    finally:
        reader.close()
    return out


def _split_problems(spec: DatasetSpec, overlap: Any) -> list[Problem]:
    """Duplicates (warnings) and ids shared by splits (errors where they leak train ids)."""
    out = []
    for split, dup in overlap.duplicates.items():
        for sid, count in dup.items():
            out.append(
                Problem(sid, None, None, WARNING, f"listed {count} times in the {split} split")
            )
    for (a, b), ids in overlap.shared.items():
        leak = (a, b) in LEAKAGE_PAIRS and not spec.split.allow_leakage
        what = f"id is in both {a} and {b}" + (
            " (leakage: remove it from one split or set allow_leakage: true)" if leak else ""
        )
        out.extend(Problem(sid, None, None, ERROR if leak else WARNING, what) for sid in ids)
    return out


def _nonfinite_problem(
    sid: str, name: str, path: str, arr: np.ndarray, bands: Sequence[str], nan_is_nodata: bool
) -> list[Problem]:
    """Counts and shares of undeclared NaN and of +-inf per band (one warning per file)."""
    parts = []
    n = arr[0].size
    for b, band in enumerate(bands):
        counts = {"+inf": int(np.isposinf(arr[b]).sum()), "-inf": int(np.isneginf(arr[b]).sum())}
        if not nan_is_nodata:
            counts = {"NaN": int(np.isnan(arr[b]).sum()), **counts}
        parts += [f"{band} {c:,} {k} ({c / n:.1%})" for k, c in counts.items() if c]
    if not parts:
        return []
    return [
        Problem(sid, name, path, WARNING, "non-finite values read as invalid: " + ", ".join(parts))
    ]


def _coverage_problems(reader: SampleReader, sid: str, min_coverage: float) -> list[Problem]:
    try:
        cover = modality_coverage(reader, sid, COVERAGE_SIZE)
    except ModalensError:
        return []  # the per-file checks say why
    return [
        Problem(
            sid,
            name,
            None,
            WARNING,
            f"valid values cover {math.floor(share * 1000) / 10:g}% of the sample "
            f"(< {min_coverage:.0%}); the rest is "
            "filled (and leaves the loss where every input is invalid)",
        )
        for name, share in cover.items()
        if share < min_coverage
    ]


def _check_sample(
    spec: DatasetSpec, reader: SampleReader, sid: str, max_nodata: float, min_coverage: float
) -> list[Problem]:
    out: list[Problem] = []
    try:
        sources = reader.sources(sid)
    except ModalensError as exc:
        return [Problem(sid, None, None, ERROR, str(exc))]
    try:
        grid = reader.grid(sid)
    except ModalensError:
        grid = None  # the per-file checks below say why
    for src in sources:
        m = src.modality
        p = str(src.path)
        try:
            ds = open_raster(src.path)
        except ModalensError as exc:
            out.append(Problem(sid, m.name, p, ERROR, str(exc)))
            continue
        with ds:
            try:
                bands = check_band_indices(ds, src.source.bands, len(src.bands), f"{m.name!r}")
            except ModalensError as exc:
                out.append(Problem(sid, m.name, p, ERROR, str(exc)))
                continue
            extra = unread_bands(ds, src.source.bands, list(m.bands[src.channels]))
            if extra:  # too many bands: as suspect as too few, but it may be on purpose
                out.append(Problem(sid, m.name, p, WARNING, extra))
            dtype = np.dtype(ds.dtypes[bands[0] - 1])
            if dtype.kind == "c":
                out.append(Problem(sid, m.name, p, ERROR, f"complex dtype {dtype} not supported"))
                continue
            if m.is_categorical and dtype.kind == "f":
                out.append(Problem(sid, m.name, p, WARNING, f"categorical codes stored as {dtype}"))
            if grid is not None:
                try:
                    plan_read(ds, grid, "the sample")
                except ModalensError as exc:
                    out.append(Problem(sid, m.name, p, ERROR, str(exc)))
                    continue
            try:
                arr = ds.read(bands, out_dtype="float32")
            except Exception as exc:  # noqa: BLE001 - any read failure is a finding
                out.append(Problem(sid, m.name, p, ERROR, str(read_error(p, exc))))
                continue
            nd = ds.nodata
            nan_nodata = (nd is not None and np.isnan(nd)) or (
                m.nodata is not None and np.isnan(m.nodata)
            )
            names = list(m.bands[src.channels])
            out.extend(_nonfinite_problem(sid, m.name, p, arr, names, nan_nodata))
            invalid = np.isnan(mask_nodata(arr, nodata_values(ds, m.nodata)))
            out.extend(_nodata_problem(sid, m.name, p, invalid.mean(), max_nodata, is_target=False))
            if m.is_categorical and m.classes is not None:
                out.extend(_class_problems(arr[0], m.classes, sid, m.name, p))
    if grid is not None and not has_errors(out):
        out.extend(_coverage_problems(reader, sid, min_coverage))
    out.extend(_check_target(spec, reader, sid, grid, max_nodata))
    return out


def _check_target(
    spec: DatasetSpec, reader: SampleReader, sid: str, grid: Any, max_nodata: float
) -> list[Problem]:
    t = spec.target
    try:
        path = reader.target_path(sid)
    except ModalensError as exc:
        return [Problem(sid, "target", None, ERROR, str(exc))]
    if path is None and t.column is None:
        return []
    p = str(path) if path is not None else f"index column {t.column!r}"
    if not t.is_dense:
        try:
            labels = reader.scene_labels(sid)
        except ModalensError as exc:
            return [Problem(sid, "target", p, ERROR, str(exc))]
        if labels.sum() == 0:
            return [Problem(sid, "target", p, WARNING, "no labels")]
        return []
    assert path is not None
    try:
        ds = open_raster(path)
    except ModalensError as exc:
        return [Problem(sid, "target", p, ERROR, str(exc))]
    out: list[Problem] = []
    with ds:
        try:
            bands = check_band_indices(ds, t.bands, 1, "the target")
            if grid is not None:
                plan_read(ds, grid, "the sample")
        except ModalensError as exc:
            return [Problem(sid, "target", p, ERROR, str(exc))]
        try:
            arr = ds.read(bands[:1], out_dtype="float32")
        except Exception as exc:  # noqa: BLE001 - any read failure is a finding
            return [Problem(sid, "target", p, ERROR, str(read_error(p, exc)))]
        out.extend(_nonfinite_problem(sid, "target", p, arr, ["target"], nan_is_nodata=True))
        invalid = np.isnan(mask_nodata(arr, nodata_values(ds, t.nodata)))
        out.extend(_nodata_problem(sid, "target", p, invalid.mean(), max_nodata, is_target=True))
        if t.class_codes is not None:
            # arr holds NaN at no-data now (mask_nodata works in place)
            out.extend(_class_problems(t.map_codes(arr[0]), t.class_codes, sid, "target", p))
    return out


def _nodata_problem(
    sid: str, name: str, path: str, share: float, max_nodata: float, is_target: bool
) -> list[Problem]:
    if share >= 1.0:
        what = "target is all no-data: its crops cannot be used" if is_target else "all no-data"
        return [Problem(sid, name, path, ERROR if is_target else WARNING, what)]
    if share > max_nodata:
        return [Problem(sid, name, path, WARNING, f"{share:.0%} no-data (> {max_nodata:.0%})")]
    return []


def _class_problems(
    codes: np.ndarray, classes: Sequence[Any], sid: str, name: str, path: str
) -> list[Problem]:
    """Codes (NaN = no-data) outside the class list, judged as reading judges them."""
    try:
        ClassLookup(classes).check(codes, sid, as_location(path), f"{name!r}")
    except DataError as exc:
        return [Problem(sid, name, path, ERROR, str(exc))]
    return []


def format_problems(
    problems: Sequence[Problem], root: str | Path | RemotePath | None = None
) -> str:
    """A plain-text table of problems (errors first), or a one-line all-clear."""
    if not problems:
        return "no problems found"
    rows = []
    for pr in sorted(problems, key=lambda q: (q.severity != ERROR, str(q.sample_id))):
        path = pr.path or ""
        if root is not None and path:
            base = str(root).rstrip("/") + "/"
            if is_remote(root) and path.startswith(base):
                path = path[len(base) :]
            elif not is_remote(root):
                try:
                    path = str(Path(path).relative_to(str(root)))
                except ValueError:
                    pass
        rows.append((pr.severity, pr.sample_id or "-", pr.modality or "-", path or "-", pr.message))
    header = ("severity", "sample", "modality", "file", "message")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    lines = []
    for r in [header, *rows]:
        cells = [str(r[i]).ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, str(r[4])]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    n_err = sum(p.severity == ERROR for p in problems)
    n_warn = len(problems) - n_err
    lines.append(f"{n_err} error(s), {n_warn} warning(s)")
    return "\n".join(lines)


def summarize(
    spec: DatasetSpec, splits: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """Samples per split, channels per modality and the target, as a dict."""
    if splits is None:
        try:
            splits = sample_ids(spec, check_files=False)
        except ModalensError:
            splits = {}
    return {
        "dataset": spec.name,
        "root": str(spec.root),
        "samples": {s: len(splits.get(s, [])) for s in SPLIT_NAMES},
        "channels": spec.n_channels,
        "modalities": [
            {
                "name": m.name,
                "kind": m.kind,
                "channels": m.n_channels,
                "bands": list(m.bands),
                "normalization": m.normalization.type,
            }
            for m in spec.modalities
        ],
        "target": {
            "kind": spec.target.kind,
            "outputs": spec.target.n_outputs,
            "source": spec.target.source.template
            if spec.target.source
            else f"index column {spec.target.column!r}"
            if spec.target.column
            else None,
        },
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """Human-readable lines for :func:`summarize`'s dict."""
    s = summary["samples"]
    lines = [
        f"dataset {summary['dataset']} at {summary['root']}",
        "samples: " + ", ".join(f"{k} {v}" for k, v in s.items()) + f" (total {sum(s.values())})",
        f"channels: {summary['channels']}",
    ]
    for m in summary["modalities"]:
        bands = ", ".join(m["bands"])
        lines.append(
            f"  {m['name']:<10} {m['channels']:>3} ch  {m['kind']:<11} "
            f"{m['normalization']:<9} [{bands}]"
        )
    t = summary["target"]
    lines.append(f"target: {t['kind']} ({t['outputs']} output(s)) from {t['source']}")
    return "\n".join(lines)
