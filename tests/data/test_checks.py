from __future__ import annotations

import numpy as np
import rasterio

from modalens.data import checks, presets
from modalens.data.rasters import write_geotiff


def test_clean_dataset_has_no_problems(mapinwild_root):
    spec = presets.mapinwild_spec(mapinwild_root)
    problems = checks.check_dataset(spec, progress=False)
    assert problems == []
    assert checks.format_problems(problems) == "no problems found"
    summary = checks.summarize(spec)
    assert summary["samples"] == {"train": 6, "val": 2, "test": 2}
    assert summary["channels"] == 14
    text = checks.format_summary(summary)
    assert "train 6, val 2, test 2" in text and "esa_wc" in text


def test_broken_dataset_problems_and_table(mapinwild_root):
    root = mapinwild_root
    (root / "s1" / "2.tif").unlink()
    with rasterio.open(root / "ESA_WC" / "3.tif") as ds:
        wc, crs, t = ds.read(), ds.crs, ds.transform
    wc[0, 0, :3] = 15
    write_geotiff(root / "ESA_WC" / "3.tif", wc, crs, t)
    write_geotiff(root / "s1" / "4.tif", np.zeros((1, 64, 64), np.float32), crs, t)
    with rasterio.open(root / "NI" / "5.tif") as ds:
        ni, t5 = ds.read(), ds.transform
    ni[:, :50] = np.nan
    write_geotiff(root / "NI" / "5.tif", ni, crs, t5, nodata=float("nan"))
    (root / "VIIRS" / "6.tif").write_text("not a raster")
    problems = checks.check_dataset(presets.mapinwild_spec(root), progress=False)
    by = {(p.sample_id, p.modality): p for p in problems}
    assert by[("2", "s1")].severity == "error" and "not found" in by[("2", "s1")].message
    assert "15" in by[("3", "esa_wc")].message and by[("3", "esa_wc")].severity == "error"
    assert "file has 1 bands" in by[("4", "s1")].message
    assert by[("5", "target")].severity == "warning" and "no-data" in by[("5", "target")].message
    assert "not a TIFF" in by[("6", "viirs")].message
    assert checks.has_errors(problems)
    table = checks.format_problems(problems, root=root)
    assert table.splitlines()[0].split() == ["severity", "sample", "modality", "file", "message"]
    assert "s1/2.tif" in table and table.splitlines()[-1] == "4 error(s), 1 warning(s)"


def test_split_problem_is_reported_not_raised(mapinwild_root):
    (mapinwild_root / "split_IDs.csv").write_text("train,validation,test\n1,2,\n")
    problems = checks.check_dataset(presets.mapinwild_spec(mapinwild_root), progress=False)
    assert len(problems) == 1 and "split 'test' is empty" in problems[0].message
