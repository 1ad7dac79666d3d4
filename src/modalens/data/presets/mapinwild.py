"""The ``mapinwild`` preset: the paper's 14 channels and their normalisation.

S2 B2-B12 (10 bands, / 10000), S1 VV/VH (standardised), ESA WorldCover (ordinal (code - 10) / 90
over its 11 classes) and VIIRS (standardised); ``split_IDs.csv`` (columns ``train``,
``validation``, ``test`` of numeric ids, NaN-padded). S1 and VIIRS are standardised with
statistics of the *train split of the data at hand* (``stats="train"``, the default, computed
and cached in the run's ``stats.json`` as for any spec); ``stats="published"`` uses the constants
of the reference code (:data:`S1_MEAN` ..., the original MapInWild's train split) instead.

The release as downloaded (Hugging Face ``burakekim/mapinwild``, the archives TorchGeo's
``MapInWild`` dataset lists) unpacks into ``s1_part1/``, ``s1_part2/``,
``s2_<season>_part1/``, ``s2_<season>_part2/`` (seasons: ``temporal_subset``, ``summer``,
``spring``, ``autumn``, ``winter``), ``ESA_WC/``, ``VIIRS/``, ``mask/`` and ``split_IDs.csv``,
each folder holding ``<id>.tif``. The preset reads the parts in place (the ``part_folders``
index of :mod:`modalens.data.parts`) or the merged folders (``s1/``, ``s2_summer/``...), which
:func:`prepare_mapinwild` (``modalens data prepare mapinwild ROOT``) writes.

Target: the release ships no naturalness index (``NI``) but the WDPA protected-area ``mask``.
The authors binarise it as ``mask[mask != 0] = 1``: 0 is other land, every other value
protected (github.com/burakekim/MapInWild, ``dataset_mapinwild.py`` of its segmentation code;
TorchGeo's ``MapInWild.__getitem__`` does the same), so the ``mask`` target is the classes
``other`` (0) and ``protected`` (any other value). ``target="auto"`` (the default) uses ``NI``
when ``ROOT/NI`` is there and the mask otherwise, and says which in one line.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError, SpecError
from ..parts import (
    MergeResult,
    folder_present,
    merge_or_raise,
    part_dirs,
    part_template,
    register_preparer,
)
from ..remote import Location, RemotePath, as_location
from ..spec import (
    CATEGORICAL,
    DatasetSpec,
    Modality,
    Normalization,
    SourceFile,
    SplitSpec,
    TargetSpec,
)
from .registry import register_preset, say_once

MAPINWILD_S2_FOLDERS = (
    "s2_temporal_subset",
    "s2_summer",
    "s2_spring",
    "s2_autumn",
    "s2_winter",
)


S2_10_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


WORLDCOVER_CLASSES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)


WORLDCOVER_NAMES = {
    10: "Tree cover",
    20: "Shrubland",
    30: "Grassland",
    40: "Cropland",
    50: "Built-up",
    60: "Bare / sparse vegetation",
    70: "Snow and ice",
    80: "Permanent water bodies",
    90: "Herbaceous wetland",
    95: "Mangroves",
    100: "Moss and lichen",
}


# Normalisation constants of the reference code (train-split statistics of MapInWild).
S1_MEAN = (-11.0578, -18.3627)


S1_STD = (3.7392, 4.6393)


VIIRS_MEAN = 2.0382


VIIRS_STD = 12.6409


#: the ``target`` option: ``auto`` (NI when ``ROOT/NI`` is there, else the mask), ``NI``, ``mask``
MAPINWILD_TARGETS = ("auto", "NI", "mask")


#: the ``mask`` target's class names: 0 is other land, every other mask value protected
MASK_CLASS_NAMES = ("other", "protected")


#: where the preset's standardisation statistics come from (the ``stats`` option)
MAPINWILD_STATS = ("train", "published")


#: the folders the release splits into ``<folder>_part1`` and ``<folder>_part2``
MAPINWILD_PARTED = ("s1", *MAPINWILD_S2_FOLDERS)


@register_preset("mapinwild")
def mapinwild_spec(
    root: str | Path | RemotePath,
    s2_folder: str = "s2_temporal_subset",
    target: str = "auto",
    s1_folder: str = "s1",
    crop_size: int = 256,
    stats: str = "train",
) -> DatasetSpec:
    """The paper's setup on a MapInWild folder: S2 (10) + S1 (2) + WorldCover (1) + VIIRS (1).

    Each modality's ``<id>.tif`` is read from its folder (``s1/``) or, as the release unpacks,
    from its part folders (``s1_part1/``, ``s1_part2/``), whichever holds it.

    Args:
        root: the MapInWild folder (``<root>/<FOLDER>/<id>.tif``, ``split_IDs.csv``).
        s2_folder: the S2 season: ``s2_temporal_subset`` (the season the authors picked per
            scene), ``s2_summer``, ``s2_spring``, ``s2_autumn`` or ``s2_winter``
            (:data:`MAPINWILD_S2_FOLDERS`).
        target: ``"auto"`` is ``NI`` when ``ROOT/NI`` is a folder and ``mask`` otherwise (one
            line says which); ``"NI"`` reads the naturalness index 0-100 from ``NI/<id>.tif``
            (scaled to 0-1, NaN = no-data); ``"mask"`` the WDPA mask binarised as the authors
            do (0: other, any other value: protected).
        s1_folder: the S1 folder (``s1`` in the public release, ``S1`` in the paper's code).
        crop_size: training crop in pixels (the paper's 256).
        stats: ``"train"`` standardises S1 and VIIRS with the train split's statistics (the
            paper's rule, computed on the data at hand); ``"published"`` with the reference
            code's constants for the original MapInWild.

    Raises:
        SpecError: an unknown S2 folder, target or stats option.
        DataError: the S2 season is not in a root that holds other seasons.
    """
    _check_options(s2_folder, target, stats)
    loc = as_location(root)
    _check_season(loc, s2_folder)
    folders = (s2_folder, s1_folder, "ESA_WC", "VIIRS")
    parted = [f for f in folders if part_dirs(loc, f)]
    return DatasetSpec(
        name="mapinwild",
        root=root,
        modalities=_modalities(loc, s2_folder, s1_folder, published=stats == "published"),
        target=_target(_choose_target(loc, target)),
        split=SplitSpec(file="split_IDs.csv"),
        index_builder=f"part_folders:{','.join(parted)}" if parted else None,
        crop_size=crop_size,
    )


def _check_options(s2_folder: str, target: str, stats: str) -> None:
    """Refuse an unknown S2 folder, target or stats option (SpecError)."""
    if s2_folder not in MAPINWILD_S2_FOLDERS:
        raise SpecError(
            f"unknown MapInWild S2 folder {s2_folder!r}",
            "preset_options.s2_folder",
            f"choose from {', '.join(MAPINWILD_S2_FOLDERS)}",
        )
    if target not in MAPINWILD_TARGETS:
        raise SpecError(
            f"unknown MapInWild target {target!r}",
            "preset_options.target",
            "choose auto, NI (naturalness) or mask (protected areas)",
        )
    if stats not in MAPINWILD_STATS:
        raise SpecError(
            f"unknown MapInWild stats option {stats!r}",
            "preset_options.stats",
            "choose train (statistics of the train split) or published (the paper's constants)",
        )


def _check_season(root: Location, s2_folder: str) -> None:
    """Refuse an S2 season that a local root lacks while it holds others (DataError naming
    the seasons present, merged or in parts)."""
    present = [f for f in MAPINWILD_S2_FOLDERS if folder_present(root, f)]
    if present and s2_folder not in present:
        raise DataError(
            f"S2 season folder {s2_folder!r} not found (seasons present: {', '.join(present)})",
            str(root),
            f"choose one with --option s2_folder={present[0]} (preset_options.s2_folder)",
        )


def _choose_target(root: Location, target: str) -> str:
    """``NI`` or ``mask`` for the ``target`` option; ``auto`` says once per root when it falls
    back to the mask."""
    if target != "auto":
        return target
    chosen = "mask" if (root / "mask").is_dir() and not (root / "NI").is_dir() else "NI"
    # the paper's target needs no note; falling back to the release's mask does
    if chosen == "mask":
        say_once(
            "MapInWild: no NI folder: the target is mask (protected vs other, as the authors "
            "binarise it); choose with --option target=NI|mask",
            key=f"mapinwild target {root}",
        )
    return chosen


def _modalities(
    root: Location, s2_folder: str, s1_folder: str, published: bool
) -> tuple[Modality, ...]:
    """S2 (10 bands, scaled), S1 and VIIRS (standardised: with the paper's constants when
    ``published``, else by the train statistics) and WorldCover (ordinal); each read from its
    folder or its part folders (:func:`~modalens.data.parts.part_template`)."""
    s1_norm = Normalization(
        "standard", mean=S1_MEAN if published else None, std=S1_STD if published else None
    )
    viirs_norm = Normalization(
        "standard",
        mean=(VIIRS_MEAN,) if published else None,
        std=(VIIRS_STD,) if published else None,
    )
    return (
        Modality(
            name="s2",
            bands=S2_10_BANDS,
            sources=(SourceFile(part_template(root, s2_folder), tuple(range(1, 11))),),
            normalization=Normalization("scale", divisor=10000.0),
        ),
        Modality(
            name="s1",
            bands=("VV", "VH"),
            sources=(SourceFile(part_template(root, s1_folder), (1, 2)),),
            normalization=s1_norm,
        ),
        Modality(
            name="esa_wc",
            bands=("landcover",),
            sources=(SourceFile(part_template(root, "ESA_WC"), (1,)),),
            kind=CATEGORICAL,
            classes=WORLDCOVER_CLASSES,
            normalization=Normalization("ordinal", divisor=90.0, offset=10.0),
            nodata=0.0,
        ),
        Modality(
            name="viirs",
            bands=("avg_rad",),
            sources=(SourceFile(part_template(root, "VIIRS"), (1,)),),
            normalization=viirs_norm,
        ),
    )


def _target(target: str) -> TargetSpec:
    """The naturalness index (``NI``, 0-100 scaled to 0-1) or the WDPA mask binarised as the
    authors do (``mask``: 0 other, any other value protected)."""
    if target == "NI":
        return TargetSpec(
            kind="continuous",
            source=SourceFile("NI/{id}.tif", (1,)),
            scale=100.0,
            nodata=float("nan"),
        )
    return TargetSpec(
        kind="classes",
        source=SourceFile("mask/{id}.tif", (1,)),
        classes=(0, 1),
        class_names=MASK_CLASS_NAMES,
        code_map=((0, 0),),
        other_code=1,
        nodata=None,
    )


@register_preparer("mapinwild")
def prepare_mapinwild(
    root: str | Path, move: bool = False, verify: bool = True, progress: bool = True
) -> MergeResult:
    """Merge the release's part folders into the merged layout: ``s1_part1/`` and
    ``s1_part2/`` into ``s1/``, ``s2_<season>_part1/`` ... into ``s2_<season>/`` (every season
    present), atomically per file and resumable (:func:`~modalens.data.parts.merge_parts`).

    Args:
        root: the folder where the release was unzipped.
        move: move the part files instead of linking or copying them (the part folders are
            removed once empty); by default they are left as they are.
        verify: read every part file before merging it (a truncated download is reported).
        progress: progress bars and a summary line.

    Returns:
        Files merged, already merged and failed.

    Raises:
        DataError: no part folder under ``root``, or some part files failed (the first is
            named, every one was reported in its own line).
    """
    return merge_or_raise(root, MAPINWILD_PARTED, move=move, verify=verify, progress=progress)
