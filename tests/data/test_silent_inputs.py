"""Inputs that used to pass without a word: a file with an extra band, a crop larger than the
scenes, a split without a valid target pixel, importances that do not sum to 1, and remote
storage errors cut off in the middle."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from modalens.data import checks, presets, remote
from modalens.data.datamodule import RunData
from modalens.data.rasters import write_geotiff
from modalens.data.samples import sample_ids
from modalens.data.synthetic import generate_synthetic
from modalens.errors import DataError, SpecError


def _add_band(path: Path) -> None:
    """Append a copy of band 1 to a GeoTIFF."""
    with rasterio.open(path) as ds:
        arr, crs, transform = ds.read(), ds.crs, ds.transform
    write_geotiff(path, np.concatenate([arr, arr[:1]]), crs=crs, transform=transform)


# ------------------------------------------------------------------------ band counts
def test_a_file_with_an_extra_band_is_a_warning(mapinwild_root: Path) -> None:
    _add_band(mapinwild_root / "s1" / "1.tif")
    spec = presets.mapinwild_spec(mapinwild_root)
    problems = checks.check_dataset(spec, progress=False)
    assert [(p.sample_id, p.modality, p.severity) for p in problems] == [
        ("1", "s1", checks.WARNING)
    ]
    message = problems[0].message
    assert "file has 3 bands, the spec reads 2 (VV=1, VH=2)" in message
    assert "band(s) 3 not used" in message and "'bands' indices" in message
    assert checks.format_problems(problems) != "no problems found"
    lines = checks.band_warnings(spec, "1")  # what fit prints for its first train sample
    assert len(lines) == 1 and lines[0].startswith("modality 's1' (") and "3 bands" in lines[0]
    assert checks.band_warnings(spec, "2") == []


def test_too_few_bands_is_still_an_error(mapinwild_root: Path) -> None:
    path = mapinwild_root / "s1" / "1.tif"
    with rasterio.open(path) as ds:
        arr, crs, transform = ds.read(), ds.crs, ds.transform
    write_geotiff(path, arr[:1], crs=crs, transform=transform)
    problems = checks.check_dataset(presets.mapinwild_spec(mapinwild_root), progress=False)
    assert checks.has_errors(problems)
    assert "file has 1 bands, spec wants band 2" in problems[0].message


# ------------------------------------------------------------------------ crop sizes
def test_a_crop_larger_than_every_scene_is_refused(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root)  # 64 px scenes
    splits = sample_ids(spec)
    with pytest.raises(SpecError, match=r"train\.crop_size 1000 is larger than every train "
                       r"scene \(the largest: 64 px\).*set crop_size: 64 or less"):  # fmt: skip
        RunData(spec, crop_size=1000).check_crops(splits)
    with pytest.raises(SpecError, match=r"train\.eval_crop_size 65 .* every val scene"):
        RunData(spec, crop_size=32, eval_crop_size=65).check_crops(splits)
    assert RunData(spec, crop_size=64, eval_crop_size=0).check_crops(splits) == []
    # the spec's own crop size (not the run config's) is a note: whole scenes are used
    notes = RunData(replace(spec, crop_size=256)).check_crops(splits)
    assert len(notes) == 1 and "crop_size 256" in notes[0] and "whole scenes" in notes[0]


# ------------------------------------------------------------------------ valid targets
def _nan_targets(root: Path, ids: list[str]) -> None:
    for sid in ids:
        with rasterio.open(root / "NI" / f"{sid}.tif", "r+") as ds:
            ds.write(np.full((1, ds.height, ds.width), np.nan, np.float32))


def test_a_split_without_a_valid_target_pixel_is_named(mapinwild_root: Path) -> None:
    from modalens.data.coverage import has_valid_target, require_target

    spec = presets.mapinwild_spec(mapinwild_root)
    splits = sample_ids(spec)
    _nan_targets(mapinwild_root, splits["test"])
    assert has_valid_target(spec, splits["train"])
    assert not has_valid_target(spec, splits["test"])
    require_target(spec, "train", splits["train"])
    with pytest.raises(DataError, match=r"no sample of the test split \(2 samples\) has a "
                       r"valid target pixel.*NI/\{id\}\.tif"):  # fmt: skip
        require_target(spec, "test", splits["test"])


# ------------------------------------------------------------------------ importances
def test_importances_not_summing_to_1_are_noted(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="modalens"):
        generate_synthetic(tmp_path / "syn", samples=3, size=16, importance="s2=2,s1=2",
                           progress=False)  # fmt: skip
    assert "the importances sum to 4, not 1: normalised to s2=0.5,s1=0.5,esa_wc=0,viirs=0" in (
        caplog.text
    )
    from modalens.data.synthetic.planting import normalization_note

    assert normalization_note(None) is None
    assert normalization_note("s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1") is None
    assert normalization_note({"s2": 0.5, "s1": 0.5, "decoy": 0}) is None


# ------------------------------------------------------------------------ remote errors
LONG = (
    "When getting information for key 'data/split_IDs.csv' in bucket 'my-bucket': AWS Error "
    "NETWORK_CONNECTION during HeadObject operation: curlCode: 6, Couldn't resolve host name"
)


class _FailingStore:
    def get_file_info(self, key: str) -> Any:
        raise OSError(LONG)

    def open_input_stream(self, key: str) -> Any:
        raise OSError(LONG)


def test_object_storage_errors_are_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "_arrow", lambda path: (_FailingStore(), "my-bucket/data"))
    path = remote.RemotePath("s3://my-bucket/data/split_IDs.csv")
    for call in (path.exists, path.read_bytes):
        with pytest.raises(DataError) as err:
            call()
        text = str(err.value)
        assert LONG in text and "\n" not in text


def test_server_and_raster_errors_are_complete() -> None:
    url = "https://example.invalid/data/s1/1.tif"
    reason = "CURL error: " + "x" * 150 + " the end"
    exc = OSError(reason)
    for err in (remote.unreachable(url, exc), remote.raster_open_error(url, exc)):
        assert reason in str(err) and "\n" not in str(err)
