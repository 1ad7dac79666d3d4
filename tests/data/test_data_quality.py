"""``data check`` findings: non-finite values per band, coverage, duplicate and leaked ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from modalens.data import SampleReader, checks, presets, spec_from_dict
from modalens.data.coverage import masking_lines, masking_report, modality_coverage
from modalens.data.leakage import check_leakage, split_overlap
from modalens.data.rasters import write_geotiff
from modalens.errors import DataError


def _spec(root, **kw):
    return presets.mapinwild_spec(root, stats="published", **kw)


def _rewrite(path, edit):
    with rasterio.open(path) as ds:
        arr, crs, t = ds.read(), ds.crs, ds.transform
    edit(arr)
    write_geotiff(path, arr, crs, t)


def _split_file(root, train, val, test):
    longest = max(len(train), len(val), len(test))
    pad = lambda v: [*v, *[None] * (longest - len(v))]  # noqa: E731
    pd.DataFrame({"train": pad(train), "validation": pad(val), "test": pad(test)}).to_csv(
        root / "split_IDs.csv", index=False
    )


def test_check_reports_inf_and_nan_per_band(mapinwild_root):
    def bad(a):
        a[1, :4, :4] = np.inf  # VH: 16 of 4096 values
        a[0, 0, :8] = np.nan  # VV: 8 undeclared NaN

    _rewrite(mapinwild_root / "s1" / "3.tif", bad)
    problems = checks.check_dataset(_spec(mapinwild_root), progress=False)
    found = [p for p in problems if p.sample_id == "3" and p.modality == "s1"]
    assert len(found) == 1 and found[0].severity == checks.WARNING
    msg = found[0].message
    assert "VV 8 NaN (0.2%)" in msg and "VH 16 +inf (0.4%)" in msg, msg
    assert not checks.has_errors(problems)


def test_check_reports_partial_coverage(mapinwild_root):
    path = mapinwild_root / "VIIRS" / "2.tif"
    with rasterio.open(path) as ds:
        arr, crs, t = ds.read(), ds.crs, ds.transform
    write_geotiff(path, arr[:, :40, :40], crs, Affine(*t[:6]))  # 40x40 of a 64x64 scene
    problems = checks.check_dataset(_spec(mapinwild_root), progress=False)
    found = [p for p in problems if p.modality == "viirs"]
    assert [p.sample_id for p in found] == ["2"], problems
    assert "cover 39% of the sample (< 90%)" in found[0].message
    reader = SampleReader(_spec(mapinwild_root))
    assert modality_coverage(reader, "2")["viirs"] == pytest.approx(1600 / 4096)
    assert modality_coverage(reader, "2")["s2"] == 1.0
    # a lower threshold accepts it
    problems = checks.check_dataset(_spec(mapinwild_root), progress=False, min_coverage=0.3)
    assert not [p for p in problems if p.modality == "viirs"]


def test_check_reports_duplicates_and_leakage(mapinwild_root):
    _split_file(mapinwild_root, ["1", "2", "3", "3", "4"], ["5", "6", "1"], ["7", "8", "6"])
    spec = _spec(mapinwild_root)
    overlap = split_overlap(spec)
    assert overlap.duplicates == {"train": {"3": 2}}
    assert overlap.shared == {("train", "val"): ["1"], ("val", "test"): ["6"]}
    problems = checks.check_dataset(spec, progress=False)
    by_id = {(p.sample_id, p.severity): p.message for p in problems if p.modality is None}
    assert by_id[("3", "warning")] == "listed 2 times in the train split"
    assert "id is in both train and val (leakage" in by_id[("1", "error")]
    assert by_id[("6", "warning")] == "id is in both val and test"
    allowed = spec_from_dict(
        {"preset": "mapinwild", "root": str(mapinwild_root), "allow_leakage": True}
    )
    problems = checks.check_dataset(allowed, progress=False)
    assert [p.severity for p in problems if p.sample_id == "1"] == ["warning"]


def test_leakage_is_an_error_unless_allowed(mapinwild_root):
    _split_file(mapinwild_root, ["1", "2", "3", "4"], ["5", "6"], ["7", "8", "2"])
    with pytest.raises(DataError) as exc:
        check_leakage(_spec(mapinwild_root))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "1 id(s) are in both the train and test splits (leakage): '2'" in msg
    assert "split_IDs.csv" in msg and "data.allow_leakage: true" in msg
    allowed = spec_from_dict(
        {"preset": "mapinwild", "root": str(mapinwild_root), "allow_leakage": True}
    )
    assert check_leakage(allowed).leaked == {("train", "test"): ["2"]}


def test_masking_report_counts_target_and_inputs(mapinwild_root):
    _rewrite(mapinwild_root / "VIIRS" / "1.tif", lambda a: a.__setitem__((0, slice(0, 8)), np.nan))
    spec = _spec(mapinwild_root)
    table = masking_report(spec, {"train": ["1", "2"], "val": ["7"]})
    row = table.set_index("split").loc["train"]
    with (
        rasterio.open(mapinwild_root / "NI" / "1.tif") as a,
        rasterio.open(mapinwild_root / "NI" / "2.tif") as b,
    ):
        nan = np.isnan(a.read(1)).sum() + np.isnan(b.read(1)).sum()
    assert row["pixels"] == 2 * 64 * 64
    assert row["target_invalid"] == pytest.approx(nan / (2 * 64 * 64))
    assert row["inputs_invalid"] == 0 and row["masked"] == row["target_invalid"]
    assert row["filled_viirs"] == pytest.approx(8 * 64 / (2 * 64 * 64))
    assert row["filled_s1"] == 0
    lines = masking_lines(table)
    assert len(lines) == 2 and lines[0].startswith("train: ") and "viirs 6.2%" in lines[0]


def test_cli_data_check_reports_inf_and_takes_min_coverage(mapinwild_root, capsys):
    from modalens.cli import main

    _rewrite(mapinwild_root / "VIIRS" / "4.tif", lambda a: a.__setitem__((0, 0, 0), np.inf))
    args = ["data", "check", str(mapinwild_root), "--preset", "mapinwild", "--quiet"]
    assert main([*args, "--min-coverage", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "non-finite values read as invalid: avg_rad 1 +inf (0.0%)" in out
    assert "valid values cover" not in out
    assert main([*args, "--min-coverage", "1"]) == 0  # the inf pixel is not covered
    assert "valid values cover 99.9% of the sample (< 100%)" in capsys.readouterr().out
