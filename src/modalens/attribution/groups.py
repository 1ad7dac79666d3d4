"""Channel groups: the players of occlusion and Shapley values.

A group is a named list of channel indices on the channel axis: one per modality
(:func:`groups_from_spec` ``"modalities"``, the default), one per band (``"bands"``) or any
mapping or list the user gives (:func:`normalize_groups`). :data:`ALL` names the row that
occludes every grouped channel at once (the reference); it is reserved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..data.spec import DatasetSpec
from ..errors import SpecError

ALL = "ALL"

Groups = Mapping[str, Sequence[int] | slice] | Sequence[Sequence[int]]


def normalize_groups(groups: Groups, n_channels: int | None = None) -> dict[str, list[int]]:
    """Validate channel groups -> ``{name: [channel indices]}`` (a list of lists gets names
    ``g0, g1, ...``; slices are expanded; negative indices need ``n_channels``).

    Raises:
        SpecError: a reserved or empty group, channels out of range, or no groups.
    """
    if isinstance(groups, Mapping):
        items = list(groups.items())
    else:
        items = [(f"g{i}", g) for i, g in enumerate(groups)]
    out: dict[str, list[int]] = {}
    for name, idx in items:
        name = str(name)
        if name == ALL:
            raise SpecError("'ALL' is reserved for the all-groups reference", "groups", "rename it")
        if isinstance(idx, slice):
            if n_channels is None:
                raise SpecError(
                    f"group {name!r} is a slice; the channel count is unknown", "groups"
                )
            chans = list(range(n_channels))[idx]
        elif isinstance(idx, int | np.integer):
            chans = [int(idx)]
        else:
            chans = [int(i) for i in idx]
        if n_channels is not None:
            chans = [c + n_channels if c < 0 else c for c in chans]
            bad = [c for c in chans if not 0 <= c < n_channels]
            if bad:
                raise SpecError(
                    f"group {name!r} has channels {bad} outside 0..{n_channels - 1}",
                    "groups",
                    "check the grouping against the model's input channels",
                )
        if not chans:
            raise SpecError(f"group {name!r} has no channels", "groups", "give at least one")
        out[name] = sorted(set(chans))
    if not out:
        raise SpecError("no channel groups given", "groups", "give e.g. {'s2': [0, 1, 2]}")
    return out


def groups_for(spec: DatasetSpec, groups: str | Groups) -> dict[str, list[int]]:
    """The groups of a run: a grouping name of :func:`groups_from_spec` or explicit groups
    checked against the spec's channel count.

    Raises:
        SpecError: an unknown grouping or invalid groups.
    """
    if isinstance(groups, str):
        return groups_from_spec(spec, groups)
    return normalize_groups(groups, spec.n_channels)


def groups_from_spec(spec: DatasetSpec, level: str = "modalities") -> dict[str, list[int]]:
    """Channel groups for attribution: one per modality, or one per channel ('bands').

    Raises:
        SpecError: an unknown grouping.
    """
    if level == "modalities":
        return {n: list(range(s.start, s.stop)) for n, s in spec.channel_slices().items()}
    if level == "bands":
        return {c: [i] for i, c in enumerate(spec.channel_names)}
    raise SpecError(f"unknown grouping {level!r}", None, "use modalities or bands")
