"""Auxiliary modalities read as targets: what a multitask model predicts besides its main target.

A spec's auxiliary modalities (:attr:`~modalens.data.spec.DatasetSpec.auxiliary`) are read on
the sample grid of the *input* modalities, as the inputs are, but become targets:

- continuous: the modality's *normalised* values float32 ``[bands, h, w]`` (its
  :class:`~modalens.data.spec.Normalization` with the run's train-split statistics), 0 where
  invalid;
- categorical: class indices int64 ``[h, w]`` (the class list's order), -1 where invalid.

Each comes with its own validity ``[h, w]`` (every band finite), which masks only that
auxiliary loss. A sample dict carries them under :func:`aux_key` and :func:`aux_valid_key`
(flat keys, so batches collate and move to a device like every other tensor).
:func:`denormalize` maps a continuous reconstruction back to the modality's raw units.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .rasters import RasterGrid, WindowTuple
from .reader import ClassLookup, SampleReader, normalize
from .spec import DatasetSpec, Modality

#: prefix of the sample-dict keys of auxiliary targets and their validity
AUX_PREFIX = "aux:"
AUX_VALID_PREFIX = "aux_valid:"


def aux_key(name: str) -> str:
    """The sample-dict key of auxiliary modality ``name``'s target."""
    return f"{AUX_PREFIX}{name}"


def aux_valid_key(name: str) -> str:
    """The sample-dict key of auxiliary modality ``name``'s validity ``[h, w]``."""
    return f"{AUX_VALID_PREFIX}{name}"


def auxiliary_outputs(m: Modality) -> int:
    """Output channels a head predicting ``m`` needs: its bands (continuous) or classes."""
    if m.is_categorical:
        assert m.classes is not None
        return len(m.classes)
    return len(m.bands)


class AuxiliaryReader:
    """Reads a spec's auxiliary modalities of a sample as targets (see the module docstring).

    Args:
        spec: the dataset spec (statistics applied to its auxiliary modalities).
    """

    def __init__(self, spec: DatasetSpec) -> None:
        self.modalities = tuple(spec.auxiliary)
        self.reader = (
            SampleReader(replace(spec, modalities=self.modalities, auxiliary=()))
            if self.modalities
            else None
        )
        self.lookups = {
            m.name: ClassLookup(m.classes) for m in self.modalities if m.classes is not None
        }

    def read(self, sample_id: str, window: WindowTuple, grid: RasterGrid) -> dict[str, np.ndarray]:
        """Every auxiliary target of a sample on ``window`` of the inputs' ``grid``.

        Args:
            sample_id: the sample.
            window: ``(row, col, height, width)`` on ``grid``.
            grid: the sample grid of the input modalities.

        Returns:
            ``{aux_key(name): target, aux_valid_key(name): valid}`` per auxiliary modality.
        """
        if self.reader is None:
            return {}
        raw = self.reader.read_raw(sample_id, window, grid=grid)
        out: dict[str, np.ndarray] = {}
        for m in self.modalities:
            values = raw[m.name]
            if m.is_categorical:
                path = self.reader.paths(sample_id)[m.name][0]
                idx = self.lookups[m.name].index(values[0], sample_id, path, f"modality {m.name!r}")
                out[aux_key(m.name)] = idx
                out[aux_valid_key(m.name)] = idx >= 0
                continue
            values = normalize(m, values)
            valid = np.isfinite(values).all(axis=0)
            values[:, ~valid] = 0.0
            out[aux_key(m.name)] = values.astype(np.float32, copy=False)
            out[aux_valid_key(m.name)] = valid
        return out

    def close(self) -> None:
        """Close the open files."""
        if self.reader is not None:
            self.reader.close()


def denormalize(m: Modality, values: np.ndarray) -> np.ndarray:
    """Normalised values ``[bands, h, w]`` of a continuous modality back in its raw units
    (the inverse of :func:`~modalens.data.reader.normalize` for ``none``, ``scale`` and
    ``standard``); modified in place and returned."""
    n = m.normalization
    if n.type == "standard":
        assert n.mean is not None and n.std is not None
        values *= np.asarray(n.std, np.float32)[:, None, None]
        values += np.asarray(n.mean, np.float32)[:, None, None]
    elif n.type in ("scale", "ordinal"):
        values *= np.float32(n.divisor)
        values += np.float32(n.offset)
    return values
