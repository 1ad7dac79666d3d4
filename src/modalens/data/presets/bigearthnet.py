"""The ``bigearthnet`` preset: BigEarthNet-S2 (12 bands onto the 10 m grid) with its S1 pair.

S1 patches are paired to S2 patches through ``corresponding_s2_patch`` in the S1 patches'
metadata (an index table built by :func:`build_bigearthnet_index`, registered as the
``bigearthnet`` index builder); the target is the 43 multi-label scene classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...errors import DataError, SpecError
from ..remote import RemotePath, as_location, needs_local
from ..samples import register_index_builder
from ..spec import DatasetSpec, SourceFile, SplitSpec, TargetSpec
from .bigearthnet_v2 import (
    BIGEARTHNET_19_LABELS,
    METADATA,
    V1_TO_19,
    bigearthnet_v2_spec,
    is_v2,
    patch_modalities,
)
from .bigearthnet_v2 import S1_FOLDER as V2_S1_FOLDER
from .registry import register_preset, say_once

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


#: S2 patch folder names looked for under the root, in order: the official archive's
#: (``BigEarthNet-v1.0``), the S2 one of BigEarthNet-MM releases and the example's
S2_FOLDERS = ("BigEarthNet-v1.0", "BigEarthNet-S2-v1.0", "BigEarthNet-S2", "BigEarthNet-S2-Example")

#: S1 patch folder names looked for under the root, in order
S1_FOLDERS = ("BigEarthNet-S1-v1.0", "BigEarthNet-S1", "BigEarthNet-S1-Example")


def find_folder(root: str | Path, candidates: tuple[str, ...]) -> str:
    """The first of ``candidates`` that is a folder under ``root`` (the last when none is, so
    that a later read names the expected place).

    Args:
        root: the dataset root.
        candidates: folder names, most official first.

    Returns:
        One folder name.
    """
    for name in candidates:
        if (as_location(root) / name).is_dir():
            return name
    return candidates[-1]


@register_preset("bigearthnet")
def bigearthnet_spec(
    root: str | Path,
    s2_folder: str | None = None,
    s1_folder: str | None = None,
    crop_size: int = 120,
    version: str = "auto",
    labels: str = "auto",
) -> DatasetSpec:
    """BigEarthNet-MM: S2 (12 bands, one file per band, resampled onto the 10 m grid) and S1
    VV/VH paired through the S1 JSON's ``corresponding_s2_patch``; multi-label scene classes
    (43 CORINE labels) from the S2 JSON. Sample ids are S2 patch names.

    Args:
        root: folder holding the S2 and S1 patch folders.
        s2_folder: the S2 patches' folder under ``root`` (default: the first present of
            :data:`S2_FOLDERS`, e.g. the official ``BigEarthNet-v1.0``).
        s1_folder: the S1 patches' folder under ``root`` (default: the first present of
            :data:`S1_FOLDERS`, e.g. ``BigEarthNet-S1-v1.0``).
        crop_size: training crop in pixels: the whole 120 px patch (a scene label describes
            the whole patch; smaller crops are refused for scene-label targets).

    The split is the official one when its files are in ``root`` or ``root/splits``
    (:func:`official_split`: ``train.csv``, ``val.csv``, ``test.csv`` of the authors'
    BigEarthNet-MM models, or TorchGeo's ``bigearthnet-*.csv``), else 80/10/10 at random.

    ``version``: ``auto`` (v2 when ``metadata.parquet`` is in ``root``), ``1`` or ``2``. v2
    (reBEN, :mod:`~modalens.data.presets.bigearthnet_v2`) has 19 classes and the parquet's
    split; its S1 is read only when ``BigEarthNet-S1/`` is there.

    ``labels``: the nomenclature, ``auto`` (v1: its 43 labels; v2: 19), ``43`` or ``19`` (v1's
    labels converted by the official table :data:`~.bigearthnet_v2.V1_TO_19`, as the
    literature since Sumbul et al. 2020 reports; v2 has only 19).
    """
    if labels not in ("auto", "19", "43"):
        raise SpecError(
            f"unknown BigEarthNet nomenclature {labels!r}",
            "preset_options.labels",
            "choose auto, 19 or 43",
        )
    if _version(root, version) == "2":
        if labels == "43":
            raise SpecError(
                "BigEarthNet v2 has the 19-class labels only",
                "preset_options.labels",
                "use labels=19 (or auto)",
            )
        return _v2_spec(root, crop_size)
    s2_folder = s2_folder or find_folder(root, S2_FOLDERS)
    s1_folder = s1_folder or find_folder(root, S1_FOLDERS)
    s2, s1 = patch_modalities(
        BIGEARTHNET_S2_BANDS, f"{s2_folder}/{{id}}/{{id}}", f"{s1_folder}/{{s1}}/{{s1}}"
    )
    nineteen = labels == "19"
    target = TargetSpec(
        kind="scene_labels",
        source=SourceFile(f"{s2_folder}/{{id}}/{{id}}_labels_metadata.json"),
        classes=BIGEARTHNET_19_LABELS if nineteen else BIGEARTHNET_43_LABELS,
        key="labels",
        multilabel=True,
        label_map=tuple(V1_TO_19.items()) if nineteen else (),
    )
    return DatasetSpec(
        name="bigearthnet",
        root=root,
        modalities=(s2, s1),
        target=target,
        split=official_split(root),
        index_builder=f"bigearthnet:{s1_folder}",
        crop_size=crop_size,
    )


def _version(root: str | Path, version: str) -> str:
    """``1`` or ``2``: ``version``, or for ``auto`` whether ``root`` holds ``metadata.parquet``
    (said in one line)."""
    if version not in ("auto", "1", "2"):
        raise SpecError(
            f"unknown BigEarthNet version {version!r}",
            "preset_options.version",
            "use --option version=auto, version=1 or version=2",
        )
    if version != "auto":
        return version
    found = "2" if is_v2(root) else "1"
    if found == "2":
        say_once(f"bigearthnet: {METADATA} in {as_location(root)}: BigEarthNet v2 (reBEN)")
    return found


def _v2_spec(root: str | Path, crop_size: int) -> DatasetSpec:
    """The v2 spec, S2 only (said in one line) when ``BigEarthNet-S1/`` is missing."""
    s1 = (as_location(root) / V2_S1_FOLDER).is_dir()
    if not s1:
        say_once(f"bigearthnet: no {V2_S1_FOLDER}/ in {as_location(root)}: S2 only")
    return bigearthnet_v2_spec(root, BIGEARTHNET_S2_BANDS, crop_size, s1)


#: the official split files of BigEarthNet v1 (BigEarthNet-MM's ``train.csv``... from the
#: authors' ``splits`` folder; TorchGeo's ``bigearthnet-train.csv``...): one patch per line,
#: ``S2name[,S1name]``, no header
SPLIT_FILE_NAMES = (
    {"train": "train.csv", "val": "val.csv", "test": "test.csv"},
    {
        "train": "bigearthnet-train.csv",
        "val": "bigearthnet-val.csv",
        "test": "bigearthnet-test.csv",
    },
)


def official_split(root: str | Path | RemotePath) -> SplitSpec:
    """The official split files under ``root`` or its ``splits/`` folder (the S2 patch name is
    each line's first field), else a random 80/10/10 split; one line says which."""
    base = as_location(root)
    for folder in ("", "splits/"):
        for names in SPLIT_FILE_NAMES:
            if all((base / f"{folder}{n}").exists() for n in names.values()):
                lists = tuple((k, f"{folder}{names[k]}") for k in ("train", "val", "test"))
                say_once(f"bigearthnet: official split ({', '.join(p for _, p in lists)})")
                return SplitSpec(lists=lists)
    say_once(
        f"bigearthnet: no official split files ({', '.join(SPLIT_FILE_NAMES[0].values())}) "
        f"in {base}: random 80/10/10 split by split_seed"
    )
    return SplitSpec(file=None)


@register_index_builder("bigearthnet")
def build_bigearthnet_index(root: Path, s1_folder: str) -> pd.DataFrame:
    """Index table (id = S2 patch, s1 = S1 patch) from the S1 JSONs' ``corresponding_s2_patch``."""
    folder = as_location(root) / s1_folder
    if not folder.is_dir():
        raise DataError(
            f"BigEarthNet S1 folder {s1_folder!r} not found (looked for {', '.join(S1_FOLDERS)})",
            str(as_location(root)),
            "unpack the S1 archive into this folder or name its folder with "
            "--option s1_folder=NAME",
        )
    rows = []
    pattern = "*/*_labels_metadata.json"
    if isinstance(folder, RemotePath):  # what RemotePath.glob raises: a URL cannot be listed
        raise needs_local(f"listing files ({pattern!r})", folder.url)
    for meta in sorted(folder.glob(pattern)):
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
            f"no BigEarthNet S1 patches ({pattern}) found in {s1_folder!r}",
            str(folder),
            "unpack the S1 archive there (one folder per patch with its labels_metadata.json)",
        )
    return pd.DataFrame(rows).sort_values("id").reset_index(drop=True)
