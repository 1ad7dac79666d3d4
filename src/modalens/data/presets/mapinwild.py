"""The ``mapinwild`` preset: the paper's 14 channels and their normalisation.

S2 B2-B12 (10 bands, / 10000), S1 VV/VH (standardised), ESA WorldCover (ordinal (code - 10) / 90
over its 11 classes) and VIIRS (standardised), target naturalness ``NI`` (0-100 -> / 100) or the
WDPA ``mask`` classes; ``split_IDs.csv``. S1 and VIIRS are standardised with statistics of the
*train split of the data at hand* (``stats="train"``, the default, computed and cached in the
run's ``stats.json`` as for any spec); ``stats="published"`` uses the constants of the reference
code (:data:`S1_MEAN` ..., the original MapInWild's train split) instead.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import SpecError
from ..spec import (
    CATEGORICAL,
    DatasetSpec,
    Modality,
    Normalization,
    SourceFile,
    SplitSpec,
    TargetSpec,
)
from .registry import register_preset

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


MAPINWILD_TARGETS = ("NI", "mask")


#: where the preset's standardisation statistics come from (the ``stats`` option)
MAPINWILD_STATS = ("train", "published")


@register_preset("mapinwild")
def mapinwild_spec(
    root: str | Path,
    s2_folder: str = "s2_temporal_subset",
    target: str = "NI",
    s1_folder: str = "s1",
    crop_size: int = 256,
    stats: str = "train",
) -> DatasetSpec:
    """The paper's setup on a MapInWild folder: S2 (10) + S1 (2) + WorldCover (1) + VIIRS (1).

    Args:
        root: the MapInWild folder (``<root>/<FOLDER>/<id>.tif``, ``split_IDs.csv``).
        s2_folder: the S2 season folder (:data:`MAPINWILD_S2_FOLDERS`).
        target: ``"NI"`` reads the naturalness index 0-100 from ``NI/<id>.tif`` (scaled to 0-1,
            NaN = no-data); ``"mask"`` the WDPA protected-area classes 0-3 from ``mask``.
        s1_folder: the S1 folder (``s1`` in the public release, ``S1`` in the paper's code).
        crop_size: training crop in pixels (the paper's 256).
        stats: ``"train"`` standardises S1 and VIIRS with the train split's statistics (the
            paper's rule, computed on the data at hand); ``"published"`` with the reference
            code's constants for the original MapInWild.

    Raises:
        SpecError: an unknown S2 folder, target or stats option.
    """
    _check_options(s2_folder, target, stats)
    return DatasetSpec(
        name="mapinwild",
        root=root,
        modalities=_modalities(s2_folder, s1_folder, published=stats == "published"),
        target=_target(target),
        split=SplitSpec(file="split_IDs.csv"),
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
            "choose NI (naturalness) or mask (protected-area classes)",
        )
    if stats not in MAPINWILD_STATS:
        raise SpecError(
            f"unknown MapInWild stats option {stats!r}",
            "preset_options.stats",
            "choose train (statistics of the train split) or published (the paper's constants)",
        )


def _modalities(s2_folder: str, s1_folder: str, published: bool) -> tuple[Modality, ...]:
    """S2 (10 bands, scaled), S1 and VIIRS (standardised: with the paper's constants when
    ``published``, else by the train statistics) and WorldCover (ordinal)."""
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
            sources=(SourceFile(f"{s2_folder}/{{id}}.tif", tuple(range(1, 11))),),
            normalization=Normalization("scale", divisor=10000.0),
        ),
        Modality(
            name="s1",
            bands=("VV", "VH"),
            sources=(SourceFile(f"{s1_folder}/{{id}}.tif", (1, 2)),),
            normalization=s1_norm,
        ),
        Modality(
            name="esa_wc",
            bands=("landcover",),
            sources=(SourceFile("ESA_WC/{id}.tif", (1,)),),
            kind=CATEGORICAL,
            classes=WORLDCOVER_CLASSES,
            normalization=Normalization("ordinal", divisor=90.0, offset=10.0),
            nodata=0.0,
        ),
        Modality(
            name="viirs",
            bands=("avg_rad",),
            sources=(SourceFile("VIIRS/{id}.tif", (1,)),),
            normalization=viirs_norm,
        ),
    )


def _target(target: str) -> TargetSpec:
    """The naturalness index (``NI``, 0-100 scaled to 0-1) or the WDPA classes (``mask``)."""
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
        classes=(0, 1, 2, 3),
        nodata=None,
    )
