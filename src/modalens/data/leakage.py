"""Sample ids that repeat: inside one split (duplicates) and across splits (leakage).

:func:`split_overlap` lists both for a spec: ids a split file lists more than once in a column
(they are used once) and ids that two splits share. :func:`check_leakage` is ``fit``'s rule: an
id of the train split that is also in val or test is a one-line DataError unless the spec sets
``allow_leakage: true`` (``--option allow_leakage=true`` with a preset, ``data.allow_leakage``
or ``data.preset_options.allow_leakage`` in a run config, or ``split.allow_leakage``);
val/test overlap and duplicates are reported but allowed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import DataError
from .samples import sample_ids, split_file_columns
from .spec import SPLIT_NAMES, DatasetSpec

#: split pairs whose shared ids are leakage (train ids evaluated as unseen)
LEAKAGE_PAIRS = (("train", "val"), ("train", "test"))


@dataclass(frozen=True)
class SplitOverlap:
    """Repeated ids of a spec's splits.

    Attributes:
        duplicates: split -> ids listed more than once in it (with their count).
        shared: ``(split a, split b)`` -> ids in both.
    """

    duplicates: dict[str, dict[str, int]] = field(default_factory=dict)
    shared: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def leaked(self) -> dict[tuple[str, str], list[str]]:
        """The shared ids of :data:`LEAKAGE_PAIRS` (train with val or test)."""
        return {k: v for k, v in self.shared.items() if k in LEAKAGE_PAIRS}

    def lines(self) -> list[str]:
        """One plain-language line per finding (empty when nothing repeats)."""
        out = []
        for split, dup in self.duplicates.items():
            out.append(
                f"{len(dup)} id(s) listed more than once in the {split} split (each used once): "
                + _shown(dup)
            )
        for (a, b), ids in self.shared.items():
            out.append(f"{len(ids)} id(s) in both the {a} and {b} splits: " + _shown(ids))
        return out


def _shown(ids: Sequence[str] | Mapping[str, int], n: int = 5) -> str:
    items = list(ids)
    text = ", ".join(repr(i) for i in items[:n])
    return text + (f" and {len(items) - n} more" if len(items) > n else "")


def overlap_of(
    columns: Mapping[str, Sequence[str]], ordered: Sequence[str] = SPLIT_NAMES
) -> SplitOverlap:
    """:class:`SplitOverlap` of ids per split as listed (repeats kept)."""
    duplicates = {}
    for split in ordered:
        counts = Counter(str(i) for i in columns.get(split, []))
        dup = {i: c for i, c in counts.items() if c > 1}
        if dup:
            duplicates[split] = dup
    shared = {}
    for k, a in enumerate(ordered):
        for b in ordered[k + 1 :]:
            both = sorted(set(map(str, columns.get(a, []))) & set(map(str, columns.get(b, []))))
            if both:
                shared[(a, b)] = both
    return SplitOverlap(duplicates, shared)


def split_overlap(spec: DatasetSpec) -> SplitOverlap:
    """Repeated ids of ``spec``'s splits (the split file as listed, else the seeded split)."""
    columns = (
        split_file_columns(spec)
        if spec.split.kind != "random"
        else sample_ids(spec, check_files=False)
    )
    return overlap_of(columns)


def check_leakage(spec: DatasetSpec) -> SplitOverlap:
    """``fit``'s rule: raise when train ids are also val/test ids, unless allowed.

    Returns:
        The overlap (duplicates and allowed sharing are for the caller to report).

    Raises:
        DataError: train shares ids with val or test and ``spec.split.allow_leakage`` is false.
    """
    overlap = split_overlap(spec)
    leaked = overlap.leaked
    if leaked and not spec.split.allow_leakage:
        (a, b), ids = next(iter(leaked.items()))
        files = spec.split.files
        where = str(spec.root / files[0]) if files else str(spec.root)
        raise DataError(
            f"{len(ids)} id(s) are in both the {a} and {b} splits (leakage): {_shown(ids, 3)}",
            where,
            "remove them from one split, or train anyway with --option allow_leakage=true "
            "(in a run config: data.allow_leakage: true)",
        )
    return overlap
