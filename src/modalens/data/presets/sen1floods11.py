"""The ``sen1floods11`` preset: Sen1Floods11's hand-labelled chips (S1 + S2, water / dry).

The v1.1 release keeps its chips in ``v1.1/data/flood_events/HandLabeled/{S1Hand,S2Hand,
LabelHand}/<chip>_<folder>.tif`` (512 x 512, EPSG:4326) and its split in
``v1.1/splits/flood_handlabeled/flood_{train,valid,test,bolivia}_data.csv`` (headerless lines
``<chip>_S1Hand.tif,<chip>_LabelHand.tif``; ``bolivia`` is a held-out flood event). The root may
be the ``v1.1`` folder, the ``HandLabeled`` folder or any folder holding the three chip folders
(the shared example); :func:`sen1floods11_layout` tells which. S1 (VV, VH in dB, NaN no-data)
is standardised with the train split's statistics, S2 (13 bands B1..B12 with B8A and B10,
int16 reflectance x 10,000) divided by 10,000; the target is ``LabelHand`` (-1 no-data,
0 dry, 1 water).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ...errors import SpecError
from ..remote import RemotePath, as_location
from ..spec import DatasetSpec, Modality, Normalization, SourceFile, SplitSpec, TargetSpec
from .registry import register_preset, say_once

#: Sentinel-2 L1C bands of ``S2Hand``, in file order
SEN1FLOODS11_S2_BANDS = (
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "B8A",
    "B9",
    "B10",
    "B11",
    "B12",
)

#: the hand-labelled chips' folder under the v1.1 release folder
HANDLABELED = "data/flood_events/HandLabeled"

#: the hand-labelled split files' folder under the v1.1 release folder
SPLITS = "splits/flood_handlabeled"

#: the ``id`` of a split file line's first field (``<chip>_S1Hand.tif``)
LIST_PATTERN = r"(?P<id>.+)_S1Hand\.tif"

#: values of the ``modalities`` option and the modalities each keeps
MODALITY_CHOICES = {"both": ("s1", "s2"), "s1": ("s1",), "s2": ("s2",)}

#: values of the ``test_split`` option and the split file each reads as test
TEST_SPLITS = {"test": "flood_test_data.csv", "bolivia": "flood_bolivia_data.csv"}


class Layout(NamedTuple):
    """Where a Sen1Floods11 root keeps its chips and split files.

    Attributes:
        name: ``v1.1`` (the release folder), ``HandLabeled`` or ``chip folders``.
        chips: the folder holding ``S1Hand``... relative to the root (``""``: the root).
        splits: the split files' folder relative to the root, None when there are none.
    """

    name: str
    chips: str
    splits: str | None


def sen1floods11_layout(root: str | Path | RemotePath) -> Layout:
    """Which of the accepted layouts ``root`` has, and where its split files are.

    Args:
        root: the ``v1.1`` folder, the ``HandLabeled`` folder or a folder holding ``S1Hand``,
            ``S2Hand`` and ``LabelHand`` (and, optionally, ``splits/flood_handlabeled``).
    """
    base = as_location(root)
    test = TEST_SPLITS["test"]
    if (base / HANDLABELED).is_dir():
        return Layout("v1.1", HANDLABELED, SPLITS if (base / SPLITS / test).exists() else None)
    name = "HandLabeled" if base.name == "HandLabeled" else "chip folders"
    for splits in (SPLITS, f"../../../{SPLITS}"):
        if (base / splits / test).exists():
            return Layout(name, "", splits)
    return Layout(name, "", None)


def _is_sen1floods11(root: Path) -> bool:
    """A v1.1 release folder or a folder holding the hand-labelled chip folders."""
    return (root / HANDLABELED).is_dir() or (root / "S1Hand").is_dir()


@register_preset("sen1floods11", detect=_is_sen1floods11)
def sen1floods11_spec(
    root: str | Path,
    modalities: str = "both",
    test_split: str = "test",
    crop_size: int = 128,
) -> DatasetSpec:
    """Sen1Floods11's hand-labelled chips: S1 (VV, VH) and S2 (13 bands), water / dry pixels.

    Args:
        root: the v1.1 release folder, its ``HandLabeled`` folder or a folder holding
            ``S1Hand``, ``S2Hand`` and ``LabelHand`` (:func:`sen1floods11_layout`).
        modalities: ``both`` (S1 then S2), ``s1`` or ``s2``.
        test_split: ``test`` (the official test chips) or ``bolivia`` (the held-out Bolivia
            flood event as the test split).
        crop_size: training crop in pixels (chips are 512 px).

    Raises:
        SpecError: an unknown ``modalities`` or ``test_split`` value.
    """
    if modalities not in MODALITY_CHOICES:
        raise SpecError(
            f"unknown Sen1Floods11 modalities {modalities!r}",
            "preset_options.modalities",
            f"choose from {', '.join(MODALITY_CHOICES)}",
        )
    if test_split not in TEST_SPLITS:
        raise SpecError(
            f"unknown Sen1Floods11 test_split {test_split!r}",
            "preset_options.test_split",
            "choose test (the official test chips) or bolivia (the held-out Bolivia event)",
        )
    layout = sen1floods11_layout(root)
    chips = f"{layout.chips}/" if layout.chips else ""
    every = {
        "s1": Modality(
            name="s1",
            bands=("VV", "VH"),
            sources=(SourceFile(f"{chips}S1Hand/{{id}}_S1Hand.tif", (1, 2)),),
            normalization=Normalization("standard"),
            nodata=float("nan"),
        ),
        "s2": Modality(
            name="s2",
            bands=SEN1FLOODS11_S2_BANDS,
            sources=(SourceFile(f"{chips}S2Hand/{{id}}_S2Hand.tif", tuple(range(1, 14))),),
            normalization=Normalization("scale", divisor=10000.0),
        ),
    }
    target = TargetSpec(
        kind="classes",
        source=SourceFile(f"{chips}LabelHand/{{id}}_LabelHand.tif", (1,)),
        classes=(0, 1),
        class_names=("dry", "water"),
        nodata=-1.0,
    )
    split = _split(layout, test_split)
    _say_once(root, layout, split, test_split)
    return DatasetSpec(
        name="sen1floods11",
        root=root,
        modalities=tuple(every[m] for m in MODALITY_CHOICES[modalities]),
        target=target,
        split=split,
        crop_size=crop_size,
    )


def _split(layout: Layout, test_split: str) -> SplitSpec:
    """The official split lists of ``layout`` (``test_split`` as test), else 80/10/10."""
    if layout.splits is None:
        return SplitSpec()
    files = {"train": "flood_train_data.csv", "val": "flood_valid_data.csv"}
    files["test"] = TEST_SPLITS[test_split]
    return SplitSpec(
        lists=tuple((k, f"{layout.splits}/{v}") for k, v in files.items()),
        list_pattern=LIST_PATTERN,
    )


def _say_once(root: str | Path, layout: Layout, split: SplitSpec, test_split: str) -> None:
    """One line per root and process: the layout and the split used."""
    if split.lists:
        which = f"official split ({SPLITS}, test = {TEST_SPLITS[test_split]})"
    else:
        which = "no split files found: random 80/10/10 split by split_seed"
    say_once(f"sen1floods11: {layout.name} layout at {root}; {which}")
