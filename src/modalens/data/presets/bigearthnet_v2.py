"""BigEarthNet v2 (reBEN) for the ``bigearthnet`` preset: ``metadata.parquet`` and the
``BigEarthNet-S2/{tile}/{id}/`` and ``BigEarthNet-S1/{s1_tile}/{s1}/`` folders.

The index table (:func:`build_bigearthnet_v2_index`, the ``bigearthnet_v2`` index builder) is
``metadata.parquet`` read into the template fields (``tile``, ``s1``, ``s1_tile``) and the
scene labels (``labels``, joined by ``;`` since the names hold commas); the split is the
parquet's ``split`` column. Without ``BigEarthNet-S1/`` the spec is S2 only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..remote import RemotePath, as_location
from ..samples import register_index_builder
from ..spec import DatasetSpec, Modality, Normalization, SourceFile, SplitSpec, TargetSpec
from ..splits import read_table

#: the v2 metadata table in the root; its presence says a root is v2
METADATA = "metadata.parquet"
S2_FOLDER = "BigEarthNet-S2"
S1_FOLDER = "BigEarthNet-S1"

#: the 19 classes of BigEarthNet v2 (and of v1's 19-class nomenclature), in order
BIGEARTHNET_19_LABELS = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

#: BigEarthNet v1's 43 CORINE labels onto the 19-class nomenclature (Sumbul et al. 2020, the
#: authors' ``label_indices.json``; as TorchGeo's ``label_converter``): ``""`` drops a label
V1_TO_19 = {
    "Continuous urban fabric": "Urban fabric",
    "Discontinuous urban fabric": "Urban fabric",
    "Industrial or commercial units": "Industrial or commercial units",
    "Non-irrigated arable land": "Arable land",
    "Permanently irrigated land": "Arable land",
    "Rice fields": "Arable land",
    "Vineyards": "Permanent crops",
    "Fruit trees and berry plantations": "Permanent crops",
    "Olive groves": "Permanent crops",
    "Annual crops associated with permanent crops": "Permanent crops",
    "Pastures": "Pastures",
    "Complex cultivation patterns": "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        "Land principally occupied by agriculture, with significant areas of natural vegetation"
    ),
    "Agro-forestry areas": "Agro-forestry areas",
    "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest",
    "Mixed forest": "Mixed forest",
    "Natural grassland": "Natural grassland and sparsely vegetated areas",
    "Sparsely vegetated areas": "Natural grassland and sparsely vegetated areas",
    "Moors and heathland": "Moors, heathland and sclerophyllous vegetation",
    "Sclerophyllous vegetation": "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland/shrub": "Transitional woodland, shrub",
    "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands",
    "Salt marshes": "Coastal wetlands",
    "Salines": "Coastal wetlands",
    "Water courses": "Inland waters",
    "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters",
    "Estuaries": "Marine waters",
    "Sea and ocean": "Marine waters",
    **{
        dropped: ""
        for dropped in (
            "Road and rail networks and associated land",
            "Port areas",
            "Airports",
            "Mineral extraction sites",
            "Dump sites",
            "Construction sites",
            "Green urban areas",
            "Sport and leisure facilities",
            "Bare rock",
            "Burnt areas",
            "Intertidal flats",
        )
    },
}

#: the columns of ``metadata.parquet`` the index uses
NEEDED_COLUMNS = ("patch_id", "labels", "s1_name")


def is_v2(root: str | Path | RemotePath) -> bool:
    """Whether ``root`` holds BigEarthNet v2's ``metadata.parquet``."""
    return (as_location(root) / METADATA).exists()


def patch_modalities(
    bands: tuple[str, ...], s2_patch: str, s1_patch: str
) -> tuple[Modality, Modality]:
    """BigEarthNet's S2 (``bands``, one file per band, / 10000) and S1 (VV, VH, standardised)
    modalities, one file per band at ``<patch>_<band>.tif`` of the path templates ``s2_patch``
    and ``s1_patch`` (v1 and v2 differ only in the folders above the patch)."""
    s2 = Modality(
        name="s2",
        bands=bands,
        sources=tuple(SourceFile(f"{s2_patch}_{b}.tif", (1,)) for b in bands),
        normalization=Normalization("scale", divisor=10000.0),
    )
    s1 = Modality(
        name="s1",
        bands=("VV", "VH"),
        sources=tuple(SourceFile(f"{s1_patch}_{p}.tif", (1,)) for p in ("VV", "VH")),
        normalization=Normalization("standard"),
    )
    return s2, s1


def bigearthnet_v2_spec(
    root: str | Path | RemotePath, bands: tuple[str, ...], crop_size: int, s1: bool
) -> DatasetSpec:
    """The BigEarthNet v2 spec: S2 ``bands`` (one file per band) and, when ``s1``, S1 VV/VH;
    the 19 scene classes from the index's ``labels``; the split of ``metadata.parquet``.

    Args:
        root: the v2 root (``metadata.parquet``, ``BigEarthNet-S2/``...).
        bands: the S2 band names, in order.
        crop_size: training crop in pixels (the whole patch for scene labels).
        s1: whether to read the S1 patches of ``BigEarthNet-S1/``.

    Returns:
        The dataset spec named ``bigearthnet``.
    """
    s2, s1_mod = patch_modalities(
        bands, f"{S2_FOLDER}/{{tile}}/{{id}}/{{id}}", f"{S1_FOLDER}/{{s1_tile}}/{{s1}}/{{s1}}"
    )
    target = TargetSpec(
        kind="scene_labels",
        source=None,
        classes=BIGEARTHNET_19_LABELS,
        multilabel=True,
        column="labels",
        separator=";",
    )
    return DatasetSpec(
        name="bigearthnet",
        root=root,
        modalities=(s2, s1_mod) if s1 else (s2,),
        target=target,
        split=SplitSpec(table=METADATA, table_id="patch_id", table_split="split"),
        index_builder=f"bigearthnet_v2:{METADATA}",
        crop_size=crop_size,
    )


def _strip_fields(name: str, n: int) -> str:
    """``name`` without its last ``n`` ``_``-separated fields (a patch's tile folder)."""
    return name.rsplit("_", n)[0]


def _joined(labels: object) -> str:
    """One row's label list (array, list or a single name) joined by ``;``."""
    if isinstance(labels, str):
        return labels
    if labels is None or (isinstance(labels, float) and np.isnan(labels)):
        return ""
    return ";".join(str(lab) for lab in labels)  # type: ignore[attr-defined]


@register_index_builder("bigearthnet_v2")
def build_bigearthnet_v2_index(root: Path, table: str = METADATA) -> pd.DataFrame:
    """Index table of a v2 root from ``metadata.parquet``: ``id`` (patch_id), ``tile`` (its
    S2 tile folder), ``s1``, ``s1_tile`` and ``labels`` (joined by ``;``).

    Args:
        root: the v2 root.
        table: the metadata table under ``root``.

    Returns:
        One row per patch, sorted by id.

    Raises:
        DataError: the table is missing, unreadable or lacks a column (one line).
    """
    path = as_location(root) / table
    if not path.exists():
        raise DataError(
            f"BigEarthNet v2 {table} not found",
            str(path),
            "download metadata.parquet into the root (or use --option version=1 for v1)",
        )
    df = read_table(path)
    missing = [c for c in NEEDED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{table} has no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})",
            str(path),
            "use the metadata.parquet of the BigEarthNet v2 release",
        )
    ids = df["patch_id"].astype(str)
    s1 = df["s1_name"].astype(str)
    out = pd.DataFrame(
        {
            "id": ids,
            "tile": [_strip_fields(i, 2) for i in ids],
            "s1": s1,
            "s1_tile": [_strip_fields(n, 3) for n in s1],
            "labels": [_joined(v) for v in df["labels"]],
        }
    )
    return out.sort_values("id").reset_index(drop=True)
