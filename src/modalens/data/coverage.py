"""How much of each sample the inputs cover, and how much of each split training masks.

Measured on the sample grid (every modality resampled as the model sees it), read whole and
decimated to at most ``max_size`` pixels per side (exact for scenes no larger than that):

- :func:`modality_coverage`: per modality, the share of a sample's pixels where *every* band
  holds a valid value (``modalens data check`` reports modalities below ``min_coverage``);
- :func:`masking_report`: per split, the share of pixels that leave the loss (target invalid,
  or every input channel invalid -- the rule of :mod:`modalens.data.reader`) and the share of
  each modality's values that are invalid and filled (``fit`` prints one line per split and
  writes the table as the run's ``masking.csv``);
- :func:`require_target`: a split with no valid target pixel at all is an error naming the
  split, before anything is trained, evaluated or attributed on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..progress import bar
from .grid import RasterGrid
from .reader import SampleReader
from .spec import DatasetSpec

#: the longest side (pixels) a scene is read at for coverage and masking shares
COVERAGE_SIZE = 256

#: ``data check`` reports a modality covering less than this share of a sample
MIN_COVERAGE = 0.9


def coverage_grid(
    reader: SampleReader, sample_id: str, max_size: int = COVERAGE_SIZE
) -> RasterGrid:
    """The sample grid of ``sample_id``, decimated to at most ``max_size`` pixels per side."""
    grid = reader.grid(sample_id)
    factor = max(grid.width, grid.height) / max_size
    return grid.scaled(factor) if factor > 1 else grid


def invalid_bands(
    reader: SampleReader, sample_id: str, max_size: int = COVERAGE_SIZE
) -> dict[str, np.ndarray]:
    """Per modality, bool [bands,h,w]: the band's value is invalid (no-data, NaN, inf,
    outside the source) on the (decimated) sample grid."""
    raw = reader.read_raw(sample_id, grid=coverage_grid(reader, sample_id, max_size))
    return {name: np.isnan(arr) for name, arr in raw.items()}


def modality_coverage(
    reader: SampleReader, sample_id: str, max_size: int = COVERAGE_SIZE
) -> dict[str, float]:
    """Per modality, the share of the sample's pixels where every band is valid."""
    return {
        name: float((~bad.any(axis=0)).mean())
        for name, bad in invalid_bands(reader, sample_id, max_size).items()
    }


def has_valid_target(spec: DatasetSpec, ids: Sequence[str], max_size: int = COVERAGE_SIZE) -> bool:
    """Whether any of the samples ``ids`` has a valid target pixel (read whole, decimated to
    ``max_size``, until the first one that has). Scene-level targets are not checked (True)."""
    if not spec.target.is_dense or not ids:
        return True
    reader = SampleReader(spec, cache_size=2, check_values=False)
    try:
        for sid in ids:
            _, valid = reader.read_target(sid, grid=coverage_grid(reader, sid, max_size))
            if valid.any():
                return True
    finally:
        reader.close()
    return False


def require_target(spec: DatasetSpec, split: str, ids: Sequence[str]) -> None:
    """Refuse a split none of whose samples ``ids`` has a valid target pixel.

    Raises:
        DataError: naming the split, its size and the target files, and how to fix it.
    """
    if not has_valid_target(spec, ids):
        source = spec.target.source
        raise DataError(
            f"no sample of the {split} split ({len(ids)} samples) has a valid target pixel: "
            "there is nothing to train, evaluate or attribute on",
            f"{spec.root / source.template}" if source is not None else str(spec.root),
            "check the target files and their nodata value, or the split file",
        )


MASKING_COLUMNS = ("split", "samples", "pixels", "target_invalid", "inputs_invalid", "masked")


def masking_report(
    spec: DatasetSpec,
    splits: Mapping[str, Sequence[str]],
    max_size: int = COVERAGE_SIZE,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per split: how much of it training masks and fills.

    Columns: ``split, samples, pixels`` (counted on the decimated grids), ``target_invalid``,
    ``inputs_invalid`` (every input channel invalid), ``masked`` (either: the pixels that leave
    the loss), shares in [0, 1], then ``filled_<modality>``: the share of that modality's values
    that are invalid and filled (see :func:`modalens.data.reader.fill_invalid`).
    """
    names = [m.name for m in spec.modalities]
    reader = SampleReader(spec, cache_size=8)
    rows = []
    try:
        for split, ids in splits.items():
            n_pix = n_target = n_inputs = n_masked = 0
            filled = dict.fromkeys(names, 0)
            values = dict.fromkeys(names, 0)
            iterator = bar(ids, progress, desc=f"masking ({split})", unit="sample", leave=False)
            for sid in iterator:
                bad = invalid_bands(reader, sid, max_size)
                g = coverage_grid(reader, sid, max_size)
                _, tvalid = reader.read_target(sid, grid=g)
                all_bad = np.logical_and.reduce([b.all(axis=0) for b in bad.values()])
                n_pix += tvalid.size
                n_target += int((~tvalid).sum())
                n_inputs += int(all_bad.sum())
                n_masked += int((~tvalid | all_bad).sum())
                for name, b in bad.items():
                    filled[name] += int(b.sum())
                    values[name] += b.size
                reader.close()
            share = 1.0 / max(n_pix, 1)
            row = {
                "split": split,
                "samples": len(ids),
                "pixels": n_pix,
                "target_invalid": n_target * share,
                "inputs_invalid": n_inputs * share,
                "masked": n_masked * share,
            }
            for name in names:
                row[f"filled_{name}"] = filled[name] / max(values[name], 1)
            rows.append(row)
    finally:
        reader.close()
    return pd.DataFrame(rows, columns=[*MASKING_COLUMNS, *(f"filled_{n}" for n in names)])


def masking_lines(table: pd.DataFrame) -> list[str]:
    """One line per split of :func:`masking_report`'s table."""
    out = []
    for row in table.to_dict(orient="records"):
        filled = [
            f"{k.removeprefix('filled_')} {v:.1%}"
            for k, v in row.items()
            if k.startswith("filled_") and v > 0
        ]
        out.append(
            f"{row['split']}: {row['masked']:.1%} of the pixels of {row['samples']} samples "
            f"leave the loss (target invalid {row['target_invalid']:.1%}, every input invalid "
            f"{row['inputs_invalid']:.1%}); filled input values: "
            + (", ".join(filled) if filled else "none")
        )
    return out
