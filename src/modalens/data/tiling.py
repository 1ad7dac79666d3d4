"""Cut a dataset's scenes into tiles: ``modalens data tile ROOT OUT --size 128``.

:func:`tile_dataset` writes every source file of every sample (each modality's files and each
dense target's) as windowed GeoTIFFs (the window's transform, the CRS, dtype, no-data and band
names kept) under ``OUT`` in the same relative layout: the sample ``<id>`` becomes the samples
``<id>_r<row>_c<col>`` (tile row and column), so the spec that read ``ROOT`` reads ``OUT``
(``data check OUT --preset same``). Tiles cover the reference grid (the first modality's first
file) from its top-left corner; a remainder narrower than ``size`` is left out. A file on
another pixel size is cut over the same ground window.

Every scene found on disk is tiled. Splits: an official split (list files, a split table or a
file with a column per split) is written again at the same place under ``OUT`` with each
scene's line repeated for its tiles, so tiles of a scene stay in that scene's split (list files
beside the split's, with the same suffix, are rewritten too: Sen1Floods11's Bolivia list).
Without one, the tiles are split at random when read (80/10/10 of tiles: neighbouring tiles
of one scene can be in train and test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window, from_bounds

from ..errors import DataError, SpecError
from ..io import atomic_path, atomic_write_text, check_output, fresh_folder
from ..progress import bar
from .rasters import open_raster, write_geotiff
from .remote import RemotePath
from .samples import discover_ids, require_finished, sample_ids
from .sources import SourceFile
from .spec import SPLIT_NAMES, DatasetSpec
from .specfile import resolve_spec
from .splits import read_table, under_root


def tile_id(sample_id: str, row: int, col: int) -> str:
    """The id of tile (``row``, ``col``) of sample ``sample_id``: ``<id>_r<row>_c<col>``."""
    return f"{sample_id}_r{row}_c{col}"


def tile_dataset(
    root: str | Path,
    out: str | Path,
    size: int = 128,
    config: str | Path | None = None,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Cut every sample of the dataset at ``root`` into ``size`` x ``size`` tiles in ``out``.

    Args:
        root: the dataset folder.
        out: a new or empty output folder (a non-empty one is refused).
        size: tile side in pixels of the reference grid (the first modality's first file).
        config: a dataset spec or run config YAML describing ``root``.
        preset: a preset name describing ``root`` (else the folder's layout is guessed).
        options: the preset's options.
        progress: a progress bar over the scenes.

    Returns:
        ``{"scenes": ..., "tiles": ..., "files": ...}`` (counts written) and ``"split"``: one
        line saying how the tiles are split.

    Raises:
        SpecError: a size below 8, or a spec tiling cannot follow (templates that use more than
            ``{id}``, a scene-label target).
        DataError: a scene smaller than ``size``, or a source file that cannot be read.
        OutputError: ``out`` is not empty or cannot be written.
    """
    if size < 8:
        raise SpecError(f"tile size must be >= 8, got {size}", "--size", "e.g. --size 128")
    spec = resolve_spec(root, config=config, preset=preset, options=dict(options or {}))
    if isinstance(spec.root, RemotePath):
        raise SpecError("data tile reads a local folder", str(spec.root), "download it first")
    sources = _sources(spec)
    check_output(out)
    require_finished(spec.root)
    official = spec.split.kind != "random"
    listed = {i for v in sample_ids(spec).values() for i in v} if official else set()
    ids = sorted(listed | set(discover_ids(spec)))
    out = fresh_folder(out)
    tiles: dict[str, list[str]] = {}
    files = 0
    for sid in bar(ids, progress, desc="tiling", unit="scene"):
        tiles[sid], n = _tile_sample(spec, sources, sid, Path(out), size)
        files += n
    if official:
        _write_split(spec, Path(out), tiles)
        how = f"tiles follow their scene's {spec.split.kind} split ({', '.join(spec.split.files)})"
    else:
        how = (
            "no split file: tiles are split at random when read (80/10/10 of tiles; "
            "neighbouring tiles of one scene can be in train and test)"
        )
    n_tiles = sum(len(v) for v in tiles.values())
    return {"scenes": len(ids), "tiles": n_tiles, "files": files, "split": how}


def _sources(spec: DatasetSpec) -> list[SourceFile]:
    """Every source file template of the spec (modalities, auxiliary, dense targets)."""
    if spec.index or spec.index_builder:
        raise SpecError(
            "data tile needs path templates that use only {id}; this spec pairs files through "
            "an index table",
            spec.source_file or spec.name,
            "tile each modality's folder with its own spec, or write the tiles yourself",
        )
    out = [s for m in (*spec.modalities, *spec.auxiliary) for s in m.sources]
    for name, target in spec.targets.items():
        if not target.is_dense:
            raise SpecError(
                f"data tile cuts rasters, but target {name!r} is one label set per scene",
                spec.source_file or spec.name,
                "tile datasets with raster targets only",
            )
        if target.source is not None:
            out.append(target.source)
    return list(dict.fromkeys(out))


def _tile_sample(
    spec: DatasetSpec, sources: list[SourceFile], sid: str, out: Path, size: int
) -> tuple[list[str], int]:
    """Write the tiles of one sample; their ids and the number of files written."""
    with open_raster(sources[0].path(spec.root, {"id": sid})) as ref:
        height, width, ref_transform = ref.height, ref.width, ref.transform
    rows, cols = height // size, width // size
    if rows == 0 or cols == 0:
        raise DataError(
            f"sample {sid!r} is {height} x {width} px, smaller than one {size} px tile",
            str(sources[0].path(spec.root, {"id": sid})),
            "choose a smaller --size",
        )
    ids = [tile_id(sid, r, c) for r in range(rows) for c in range(cols)]
    files = 0
    for src in sources:
        path = src.path(spec.root, {"id": sid})
        with open_raster(path) as ds:
            for r in range(rows):
                for c in range(cols):
                    ref_window = Window(c * size, r * size, size, size)
                    bounds = rasterio.windows.bounds(ref_window, ref_transform)
                    window = from_bounds(*bounds, transform=ds.transform)
                    window = window.round_offsets().round_lengths()
                    arr = ds.read(window=window)
                    dst = Path(str(src.path(out, {"id": tile_id(sid, r, c)})))
                    write_geotiff(
                        dst,
                        arr,
                        ds.crs,
                        ds.window_transform(window),
                        nodata=ds.nodata,
                        band_names=[d for d in ds.descriptions if d] or None,
                    )
                    files += 1
    return ids, files


def _tiled_name(name: str) -> PurePosixPath:
    """Where a split file relative to the root is written under OUT (leading ``..`` dropped)."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("..", ".")]
    return PurePosixPath(*parts)


def _write_split(spec: DatasetSpec, out: Path, tiles: Mapping[str, list[str]]) -> None:
    """The spec's official split files again under ``out``, each scene's entry repeated for
    its tiles."""
    split = spec.split
    for name in split.files:
        if Path(name).is_absolute():
            raise SpecError(
                f"data tile writes split files under OUT, but {name} is an absolute path",
                spec.source_file or "split",
                "give the split file relative to the dataset root",
            )
    if split.kind == "lists":
        for name in _list_files(spec):
            text = under_root(spec, name).read_bytes().decode("utf-8", errors="replace")
            lines = _tiled_lines(text, split.list_pattern, tiles)
            atomic_write_text(out / _tiled_name(name), "".join(f"{x}\n" for x in lines))
    elif split.kind == "file":
        assert split.file is not None
        ids = sample_ids(spec, check_files=False)
        cols = {split.column(k): [t for i in ids[k] for t in tiles[i]] for k in SPLIT_NAMES}
        n = max(len(v) for v in cols.values())
        frame = pd.DataFrame({k: v + [np.nan] * (n - len(v)) for k, v in cols.items()})
        atomic_write_text(out / _tiled_name(split.file), frame.to_csv(index=False))
    else:
        assert split.table is not None
        df = read_table(under_root(spec, split.table))
        df[split.table_id] = df[split.table_id].astype(str).map(lambda i: tiles.get(i, []))
        df = df.explode(split.table_id).dropna(subset=[split.table_id])
        dst = out / _tiled_name(split.table)
        if split.table.endswith(".parquet"):
            with atomic_path(dst) as tmp:
                df.to_parquet(tmp, index=False)
        else:
            atomic_write_text(dst, df.to_csv(index=False))


def _list_files(spec: DatasetSpec) -> list[str]:
    """The split's list files and the other files beside them with the same suffix (other
    splits of the dataset, e.g. Sen1Floods11's Bolivia list), relative to the root."""
    names = [name for _, name in spec.split.lists]
    for name in list(names):
        rel = PurePosixPath(name)
        folder = under_root(spec, str(rel.parent))
        for other in sorted(Path(str(folder)).glob(f"*{rel.suffix}")):
            names.append(str(rel.parent / other.name))
    return list(dict.fromkeys(names))


def _tiled_lines(text: str, pattern: str | None, tiles: Mapping[str, list[str]]) -> list[str]:
    """A list file's lines with each scene's line repeated for its tiles (the scene id in the
    first field's ``id`` group, or the whole first field, and in the other fields replaced)."""
    rx = re.compile(pattern) if pattern else None
    out = []
    for line in text.splitlines():
        first, sep, rest = line.partition(",")
        field = first.strip()
        if not field:
            continue
        m = rx.fullmatch(field) if rx else None
        sid = m.group("id") if m else field
        start, end = m.span("id") if m else (0, len(field))
        for t in tiles.get(sid, []):
            out.append(field[:start] + t + field[end:] + sep + rest.replace(sid, t))
    return out
