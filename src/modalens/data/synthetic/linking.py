"""The error link: a latent field shared by the target's noise and an auxiliary modality.

``error_link={"s1": k}`` (``--error-link s1=1``) plants, for the multitask explanations
(``modalens mtl explain``), a known amount of the main target's *error structure* in a
modality. Per sample ``i`` a smooth field ``E_i`` (unit variance, from its own seed stream, so
every other raster keeps its bytes) is scaled by a per-sample amplitude ``a_i`` drawn uniformly
in ``[0.1, 1]`` and enters

- the target: ``NI += k * LINK_POINTS * a_i * E_i`` (naturalness points), a structured noise no
  other modality carries, so a model that does not see the linked modality cannot predict it;
- the linked modality: ``s1`` gets ``k * LINK_DB * a_i * E_i`` dB added to VV *and* VH, so the
  cross-polarisation ratio -- and therefore its signal ``z_s1`` in the target -- is unchanged
  (up to float rounding).

A multitask model with ``s2`` as input and ``s1`` as auxiliary target then misses ``E`` in both
heads: its main and ``s1`` reconstruction errors share a component, larger in samples with a
larger ``a_i`` and at the same pixels (``|E|`` large). ``metadata.json`` records ``k`` and every
sample's amplitude (``error_link``), the known truth the explanation analyses are checked
against. Without the option nothing is drawn and every file is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import SpecError
from .planting import parse_fractions
from .scenes import error_field, seeded_rng

#: modalities an error link can be planted in
LINKABLE = ("s1",)
#: target term of a full-strength link (naturalness points per unit of ``a_i * E_i``)
LINK_POINTS = 15.0
#: S1 offset of a full-strength link (dB per unit of ``a_i * E_i``)
LINK_DB = 4.0
#: range of the per-sample amplitude ``a_i``
AMPLITUDE = (0.1, 1.0)
#: spawn-key stream of the link (0: scenes, 1: split, 2: presence, 3: decoy)
STREAM = 4


def _error(what: str) -> SpecError:
    return SpecError(what, "--error-link", "write e.g. s1=1 (strength 0-1; linkable: s1)")


def parse_error_link(link: Mapping[str, float] | str | None) -> dict[str, float]:
    """Strength (0-1) of the error link per modality (``"s1=1"``, a mapping or None).

    Returns:
        Only the modalities with a strength above 0 (empty: no link).

    Raises:
        SpecError: an unknown or unlinkable modality, a repeat or a value outside [0, 1].
    """
    return parse_fractions(link, LINKABLE, "error link", "strength", _error)


def link_field(seed: int, index: int, size: int) -> tuple[np.ndarray, float]:
    """``(a_i * E_i [H, W] float32, a_i)`` of sample ``index`` (its own seed stream)."""
    rng = seeded_rng(seed, STREAM, index)
    amplitude = float(rng.uniform(*AMPLITUDE))
    return (amplitude * error_field(rng, size)).astype(np.float32), amplitude


def apply_link(scene: dict[str, Any], field: np.ndarray, link: Mapping[str, float]) -> np.ndarray:
    """Add the link to the linked modalities of ``scene`` (in place); return the target term.

    Args:
        scene: :func:`~.scenes.make_scene`'s rasters.
        field: ``a_i * E_i`` of :func:`link_field`.
        link: :func:`parse_error_link`'s strengths.

    Returns:
        The term added to the target, ``sum_m k_m * LINK_POINTS * a_i * E_i`` ([H, W]).
    """
    term = np.zeros_like(field)
    for modality, k in link.items():
        if modality == "s1":
            scene["s1"] = (scene["s1"] + np.float32(k * LINK_DB) * field[None]).astype(np.float32)
        term += np.float32(k * LINK_POINTS) * field
    return term
