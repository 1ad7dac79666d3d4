"""Built-in dataset specs: ``mapinwild`` (the paper's 14 channels) and ``bigearthnet``.

Use them from YAML (``preset: mapinwild``, ``root: ...``, ``preset_options: {...}``), from the CLI
(``--preset mapinwild``) or from Python (:func:`get_preset`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError, SpecError
from .modalities import (
    CATEGORICAL,
    DatasetSpec,
    Modality,
    Normalization,
    SourceFile,
    SplitSpec,
    TargetSpec,
)

# ----------------------------------------------------------------------------- MapInWild
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


def mapinwild_spec(
    root: str | Path,
    s2_folder: str = "s2_temporal_subset",
    target: str = "NI",
    s1_folder: str = "s1",
    crop_size: int = 256,
) -> DatasetSpec:
    """The paper's setup on a MapInWild folder: S2 (10) + S1 (2) + WorldCover (1) + VIIRS (1).

    ``target='NI'`` reads the naturalness index 0-100 from ``NI/<id>.tif`` (scaled to 0-1,
    NaN = no-data); ``target='mask'`` reads the WDPA protected-area classes 0-3 from ``mask``.
    """
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
    modalities = (
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
            normalization=Normalization("standard", mean=S1_MEAN, std=S1_STD),
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
            normalization=Normalization("standard", mean=(VIIRS_MEAN,), std=(VIIRS_STD,)),
        ),
    )
    if target == "NI":
        tgt = TargetSpec(
            kind="continuous",
            source=SourceFile("NI/{id}.tif", (1,)),
            scale=100.0,
            nodata=float("nan"),
        )
    else:
        tgt = TargetSpec(
            kind="classes",
            source=SourceFile("mask/{id}.tif", (1,)),
            classes=(0, 1, 2, 3),
            nodata=None,
        )
    return DatasetSpec(
        name="mapinwild",
        root=Path(root),
        modalities=modalities,
        target=tgt,
        split=SplitSpec(file="split_IDs.csv"),
        crop_size=crop_size,
    )


# ----------------------------------------------------------------------------- BigEarthNet
BIGEARTHNET_S2_BANDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B11",
    "B12",
)
BIGEARTHNET_43_LABELS = (
    "Continuous urban fabric",
    "Discontinuous urban fabric",
    "Industrial or commercial units",
    "Road and rail networks and associated land",
    "Port areas",
    "Airports",
    "Mineral extraction sites",
    "Dump sites",
    "Construction sites",
    "Green urban areas",
    "Sport and leisure facilities",
    "Non-irrigated arable land",
    "Permanently irrigated land",
    "Rice fields",
    "Vineyards",
    "Fruit trees and berry plantations",
    "Olive groves",
    "Pastures",
    "Annual crops associated with permanent crops",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland",
    "Moors and heathland",
    "Sclerophyllous vegetation",
    "Transitional woodland/shrub",
    "Beaches, dunes, sands",
    "Bare rock",
    "Sparsely vegetated areas",
    "Burnt areas",
    "Inland marshes",
    "Peatbogs",
    "Salt marshes",
    "Salines",
    "Intertidal flats",
    "Water courses",
    "Water bodies",
    "Coastal lagoons",
    "Estuaries",
    "Sea and ocean",
)


def bigearthnet_spec(
    root: str | Path,
    s2_folder: str = "BigEarthNet-S2-Example",
    s1_folder: str = "BigEarthNet-S1-Example",
    crop_size: int = 120,
) -> DatasetSpec:
    """BigEarthNet-MM: S2 (12 bands, one file per band, resampled onto the 10 m grid) and S1
    VV/VH paired through the S1 JSON's ``corresponding_s2_patch``; multi-label scene classes
    (43 CORINE labels) from the S2 JSON. Sample ids are S2 patch names."""
    s2 = Modality(
        name="s2",
        bands=BIGEARTHNET_S2_BANDS,
        sources=tuple(
            SourceFile(f"{s2_folder}/{{id}}/{{id}}_{b}.tif", (1,)) for b in BIGEARTHNET_S2_BANDS
        ),
        normalization=Normalization("scale", divisor=10000.0),
    )
    s1 = Modality(
        name="s1",
        bands=("VV", "VH"),
        sources=(
            SourceFile(f"{s1_folder}/{{s1}}/{{s1}}_VV.tif", (1,)),
            SourceFile(f"{s1_folder}/{{s1}}/{{s1}}_VH.tif", (1,)),
        ),
        normalization=Normalization("standard"),
    )
    target = TargetSpec(
        kind="scene_labels",
        source=SourceFile(f"{s2_folder}/{{id}}/{{id}}_labels_metadata.json"),
        classes=BIGEARTHNET_43_LABELS,
        key="labels",
        multilabel=True,
    )
    return DatasetSpec(
        name="bigearthnet",
        root=Path(root),
        modalities=(s2, s1),
        target=target,
        split=SplitSpec(file=None),
        index_builder=f"bigearthnet:{s1_folder}",
        crop_size=crop_size,
    )


def build_bigearthnet_index(root: Path, s1_folder: str) -> pd.DataFrame:
    """Index table (id = S2 patch, s1 = S1 patch) from the S1 JSONs' ``corresponding_s2_patch``."""
    folder = Path(root) / s1_folder
    if not folder.is_dir():
        raise DataError(
            "BigEarthNet S1 folder not found",
            str(folder),
            "check root and preset_options.s1_folder",
        )
    rows = []
    for meta in sorted(folder.glob("*/*_labels_metadata.json")):
        try:
            info = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            raise DataError(
                "cannot read BigEarthNet metadata JSON", str(meta), "re-extract the patch"
            ) from None
        s2 = info.get("corresponding_s2_patch")
        if not s2:
            raise DataError(
                "S1 metadata has no 'corresponding_s2_patch'", str(meta), "use BigEarthNet-MM S1"
            )
        rows.append({"id": s2, "s1": meta.parent.name})
    if not rows:
        raise DataError(
            "no BigEarthNet S1 patches found", str(folder), "point root at the BigEarthNet folder"
        )
    return pd.DataFrame(rows).sort_values("id").reset_index(drop=True)


INDEX_BUILDERS: dict[str, Callable[..., pd.DataFrame]] = {"bigearthnet": build_bigearthnet_index}

PRESETS: dict[str, Callable[..., DatasetSpec]] = {
    "mapinwild": mapinwild_spec,
    "bigearthnet": bigearthnet_spec,
}


def get_preset(name: str, root: str | Path, **options: Any) -> DatasetSpec:
    """A built-in spec by name, rooted at ``root``; ``options`` go to the preset function."""
    if name not in PRESETS:
        raise SpecError(
            f"unknown preset {name!r}", "preset", f"choose from {', '.join(sorted(PRESETS))}"
        )
    try:
        return PRESETS[name](root, **options)
    except TypeError as exc:
        raise SpecError(
            f"bad option for preset {name!r}: {exc}", "preset_options", "see the preset's options"
        ) from None


def build_index(spec: DatasetSpec) -> pd.DataFrame | None:
    """The spec's sample index table (id + template fields), or None when it has none."""
    if spec.index_builder:
        name, _, arg = spec.index_builder.partition(":")
        if name not in INDEX_BUILDERS:
            raise SpecError(
                f"unknown index builder {name!r}",
                spec.source_file,
                f"choose from {', '.join(INDEX_BUILDERS)}",
            )
        return INDEX_BUILDERS[name](spec.root, arg) if arg else INDEX_BUILDERS[name](spec.root)
    if spec.index:
        p = Path(spec.index)
        p = p if p.is_absolute() else spec.root / p
        if not p.exists():
            raise DataError("index table not found", str(p), "check the spec's 'index' key")
        try:
            df = pd.read_csv(p, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            raise DataError(
                "index table is not a readable CSV", str(p), "write it as CSV with an id column"
            ) from None
        if "id" not in df.columns:
            raise DataError("index table has no 'id' column", str(p), "add an id column")
        return df
    return None


def resolve_spec(
    root: str | Path | None,
    config: str | Path | None = None,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
) -> DatasetSpec:
    """The dataset spec for a folder: from a YAML ``config``, a ``preset`` name, or guessed.

    Without ``config`` or ``preset``, a folder with MapInWild's layout (``split_IDs.csv`` or an
    ``s2_*`` folder) gets the ``mapinwild`` preset and one with ``BigEarthNet-S1-*`` the
    ``bigearthnet`` preset; anything else is an error asking for ``--config`` or ``--preset``.
    """
    from .modalities import load_spec

    if config is not None:
        if options:
            raise SpecError(
                "preset options were given with a config file",
                "--option",
                "put them under preset_options in the config",
            )
        return load_spec(config, root=root)
    if root is None:
        raise SpecError("no dataset root given", None, "pass the dataset folder")
    root = Path(root)
    if not root.is_dir():
        raise DataError("dataset folder not found", str(root), "check the path")
    if preset is None:
        if (root / "split_IDs.csv").exists() or any(root.glob("s2_*")):
            preset = "mapinwild"
        elif any(root.glob("BigEarthNet-S1*")):
            preset = "bigearthnet"
        else:
            raise SpecError(
                "cannot tell the dataset layout",
                str(root),
                "pass --config SPEC.yaml or --preset mapinwild|bigearthnet",
            )
        if preset == "bigearthnet" and not options:
            s2 = sorted(root.glob("BigEarthNet-S2*"))
            s1 = sorted(root.glob("BigEarthNet-S1*"))
            if s2 and s1:
                options = {"s2_folder": s2[0].name, "s1_folder": s1[0].name}
    return get_preset(preset, root, **(options or {}))
