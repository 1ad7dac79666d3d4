"""The data stage: from a dataset description on disk to normalised sample dicts.

The data path, module by module:

- :mod:`.spec` -- what a dataset is: ordered modalities, their bands and sources, the named
  targets and the split (:class:`DatasetSpec` and its parts; channel slices are derived).
- :mod:`.sources`, :mod:`.targets` -- source files; target kinds and :class:`TargetSpec`.
- :mod:`.specfile` -- reading specs from YAML or dicts (:func:`load_spec`,
  :func:`spec_from_dict`, :func:`resolve_spec`) with one-line errors naming the key and file;
  :mod:`.specparts` parses each part.
- :mod:`.presets` -- built-in specs, one module per dataset (``mapinwild``, ``bigearthnet``,
  ``sen1floods11``).
- :mod:`.samples` -- which samples exist: ids, index tables, split files.
- :mod:`.parts` -- folders shipped in parts (``s1_part1``, ``s1_part2``): read in place through
  an index, or merged (``modalens data prepare``, :func:`prepare_dataset`).
- :mod:`.rasters` -- windowed GeoTIFF reads onto a reference grid, atomic GeoTIFF writes.
- :mod:`.remote` -- dataset roots that are URLs (https, s3, gs) read through GDAL's VSI.
- :mod:`.reader` -- :class:`SampleReader`: every modality of a sample on one grid, normalised.
- :mod:`.stats` -- train-split normalisation statistics (streaming, cached JSON).
- :mod:`.dataset` -- :class:`MultimodalDataset` (crops, augmentation seeds), weights, collate.
- :mod:`.sampling` -- seeded per-epoch samplers (resumable, rank-aware for DDP).
- :mod:`.datamodule` -- :class:`RunData`: the datasets and loaders of a run.
- :mod:`.augment` -- kornia augmentations applied identically to image and target; per item
  on a batch (:func:`augment_batch`).
- :mod:`.tiling` -- ``modalens data tile``: scenes cut into tiles, same layout, splits kept.
- :mod:`.checks` -- ``modalens data check``: every sample and modality opened and validated.
- :mod:`.coverage` -- how much of a sample each modality covers; how much of a split is masked.
- :mod:`.leakage` -- ids repeated inside a split or shared by splits; ``fit``'s leakage rule.
- :mod:`.synthetic` -- synthetic MapInWild-layout data with planted modality importances.
"""

from .checks import Problem, check_dataset, format_problems
from .dataset import MultimodalDataset, collate
from .parts import prepare_dataset
from .presets import (
    bigearthnet_spec,
    get_preset,
    mapinwild_spec,
    prepare_mapinwild,
    register_preset,
)
from .reader import SampleReader
from .samples import register_index_builder, sample_ids
from .sources import SourceFile
from .spec import DatasetSpec, Modality, Normalization, SplitSpec
from .specfile import load_spec, resolve_spec, spec_from_dict, spec_to_yaml
from .stats import Statistics, apply_statistics, compute_statistics, load_or_compute
from .synthetic import generate_synthetic
from .targets import TargetSpec

__all__ = [
    "apply_statistics",
    "bigearthnet_spec",
    "check_dataset",
    "collate",
    "compute_statistics",
    "DatasetSpec",
    "format_problems",
    "generate_synthetic",
    "get_preset",
    "load_or_compute",
    "load_spec",
    "mapinwild_spec",
    "Modality",
    "MultimodalDataset",
    "Normalization",
    "prepare_dataset",
    "prepare_mapinwild",
    "Problem",
    "register_index_builder",
    "register_preset",
    "resolve_spec",
    "sample_ids",
    "SampleReader",
    "SourceFile",
    "spec_from_dict",
    "spec_to_yaml",
    "SplitSpec",
    "Statistics",
    "TargetSpec",
]
